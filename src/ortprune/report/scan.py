"""Terminal rendering of a scan: one table per model, ops coloured by where they came from."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ortprune.scan import ScanResult

_STYLE = {"model": "", "optimizer": "bold yellow", "both": ""}


def print_scan(result: ScanResult, console: Console) -> None:
    for m in result.models:
        table = Table(title=f"{m.path.name}  (opsets: "
                      + ", ".join(f"{d} {v}" for d, v in sorted(m.raw.opsets.items())) + ")",
                      title_justify="left")  # fmt: skip
        table.add_column("domain")
        table.add_column("opset", justify="right")
        table.add_column("op")
        table.add_column("nodes in file", justify="right")
        table.add_column("after optimizer", justify="right")
        table.add_column("from")
        for op in m.config:
            origin = m.origin(op)
            after = "-" if m.optimized is None else str(m.optimized.node_counts.get(op, 0))
            table.add_row(op.domain, str(op.opset), op.op, str(m.raw.node_counts.get(op, 0)), after, origin,
                          style=_STYLE[origin])  # fmt: skip
        console.print(table)
        if m.optimizer_only:
            console.print(
                f"  [yellow]{len(m.optimizer_only)} op(s) only after ORT's optimizer at level "
                f"'{m.level}':[/] " + ", ".join(f"{i.domain}:{i.op}" for i in m.optimizer_only)
            )
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
