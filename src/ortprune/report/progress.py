"""Rich progress bars for long work (ORT builds: ninja's [n/N] lines)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextlib.contextmanager
def build_progress(console: Console, label: str) -> Iterator[Callable[[int, int, str], None]]:
    """A callback ``(done, total, what)`` drawing one bar with an ETA; the current file shows below it."""
    with Progress(
        TextColumn("[bold]{task.fields[label]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("[dim]{task.fields[what]}"),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(label, total=None, label=label, what="")

        def update(done: int, total: int, what: str) -> None:
            name = what.rsplit("/", 1)[-1][-50:]
            progress.update(task, completed=done, total=total, what=name)

        yield update
