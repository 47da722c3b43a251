"""Rich progress bars for long work (ORT builds: ninja's [n/N] lines)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ortprune.slim import StageUI


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


class RichStageUI(StageUI):
    """slim's progress view: one line per stage (with its time), and a build bar whose ETA comes from the
    previous build of the same variant (``~/.cache/ortprune/timings.json``) until ninja's own rate takes over."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextlib.contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        import time

        t0 = time.monotonic()
        self.console.print(f"[bold cyan]▶ {name}[/] {detail}")
        yield
        self.console.print(f"[green]✓ {name}[/] ({time.monotonic() - t0:.1f} s)")

    def note(self, text: str) -> None:
        self.console.print(f"  {text}")

    @contextlib.contextmanager
    def build_progress(self, label: str) -> Iterator[Callable[[int, int, str], None]]:
        import json
        import time

        from ortprune._io import atomic_write_text
        from ortprune.cache import cache_dir

        path = cache_dir("timings.json")
        timings = json.loads(path.read_text()) if path.exists() else {}
        prev = timings.get(label)
        with Progress(
            TextColumn(f"[bold]build {label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"), TextColumn("[dim]{task.fields[what]}"),
            console=self.console,
        ) as progress:  # fmt: skip
            task = progress.add_task(label, total=None, eta="?", what="")
            t0 = time.monotonic()
            first: dict[str, int | None] = {"i": None}

            def update(done: int, total: int, what: str) -> None:
                if first["i"] is None:
                    first["i"] = done - 1
                elapsed = time.monotonic() - t0
                ran = done - first["i"]  # type: ignore[operator]
                if prev and prev["steps"]:
                    per_step = prev["seconds"] / prev["steps"]
                elif ran > 20:
                    per_step = elapsed / ran
                else:
                    per_step = None
                eta = "?" if per_step is None else f"{int((total - done) * per_step // 60)} min"
                progress.update(task, completed=done, total=total, eta=eta, what=what.rsplit("/", 1)[-1][-40:])
                if done == total and ran > 50:  # a real (not cached) compile: remember its pace
                    timings[label] = {"steps": ran, "seconds": round(elapsed, 1)}
                    atomic_write_text(path, json.dumps(timings, indent=1))

            yield update
