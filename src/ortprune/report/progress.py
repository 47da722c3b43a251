"""Rich progress for long work: one build bar (ninja's [n/N] lines) and slim's per-stage lines."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ortprune._io import atomic_write_text
from ortprune.cache import cache_dir


@contextlib.contextmanager
def build_progress(console: Console, label: str) -> Iterator[Callable[[int, int, str], None]]:
    """A callback ``(done, total, what)`` drawing one bar; the current file shows beside it. The ETA comes
    from the previous build of the same label (``~/.cache/ortprune/timings.json``) until ninja's own rate
    (after 20 steps) takes over; a real (not cached) compile's pace is remembered for the next one."""
    path = cache_dir("timings.json")
    timings = json.loads(path.read_text()) if path.exists() else {}
    prev = timings.get(label)
    columns = (
        TextColumn(f"build {label}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        TextColumn("{task.fields[what]}", style="dim", markup=False),
    )
    # a log or a pipe gets no bar (and an early error stays one line)
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(label, total=None, eta="?", what="")
        t0 = time.monotonic()
        first: int | None = None

        def update(done: int, total: int, what: str) -> None:
            nonlocal first
            if first is None:
                first = done - 1
            elapsed = time.monotonic() - t0
            ran = done - first
            if prev and prev["steps"]:
                per_step: float | None = prev["seconds"] / prev["steps"]
            elif ran > 20:
                per_step = elapsed / ran
            else:
                per_step = None
            eta = "?" if per_step is None else f"{int((total - done) * per_step // 60)} min"
            progress.update(task, completed=done, total=total, eta=eta, what=what.rsplit("/", 1)[-1][-40:])
            if done == total and ran > 50:
                timings[label] = {"steps": ran, "seconds": round(elapsed, 1)}
                atomic_write_text(path, json.dumps(timings, indent=1))

        yield update


#: ``(done, total, what)``: how far a long run is (ops probed, models scanned, verified, converted).
Advance = Callable[[int, int, str], None]


@contextlib.contextmanager
def count_progress(console: Console, label: str) -> Iterator[Advance]:
    """A bar for work counted in items, drawn on ``console`` (stderr) when it is a terminal and removed
    when done; a log or a pipe gets the command's header line and its result, no bar."""
    columns = (
        TextColumn(label, markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[what]}", style="dim", markup=False),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(label, total=None, what="")

        def advance(done: int, total: int, what: str = "") -> None:
            progress.update(task, completed=done, total=total, what=what[-50:])

        yield advance


class RichStageUI:
    """slim's progress view (a ``slim.StageUI``): one line per stage with its time, and the build bar."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextlib.contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        t0 = time.monotonic()
        self.console.print(f"[bold cyan]▶ {escape(name)}[/] {escape(detail)}", markup=True)
        yield
        self.console.print(f"[green]✓ {escape(name)}[/] ({time.monotonic() - t0:.1f} s)", markup=True)

    def note(self, text: str) -> None:
        self.console.print(f"  {text}", markup=False)

    def build_progress(self, label: str) -> contextlib.AbstractContextManager[Callable[[int, int, str], None]]:
        return build_progress(self.console, label)
