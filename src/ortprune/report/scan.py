"""Terminal rendering of a scan: one table per model, ops coloured by where they came from."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ortprune.report.table import Column, Table
from ortprune.results import OpRow, ScanReport

_STYLE = {"model": "", "optimizer": "bold yellow", "both": ""}


def print_scan(result: ScanReport, console: Console) -> None:
    for m in result.models:
        opsets = ", ".join(f"{d} {v}" for d, v in sorted(m.opsets.items()))
        table = Table[OpRow](
            [
                Column("domain", lambda r: r.domain),
                Column("opset", lambda r: str(r.opset), right=True),
                Column("op", lambda r: r.op),
                Column("nodes in file", lambda r: str(r.nodes_in_model), right=True),
                Column(
                    "after optimizer",
                    lambda r: "-" if r.nodes_after_optimization is None else str(r.nodes_after_optimization),
                    right=True,
                ),
                Column("from", lambda r: r.origin),
            ],
            m.ops,
            title=f"{m.name}  (opsets: {opsets})",
            style=lambda r: _STYLE[r.origin],
        )
        console.print(table.rich())
        if m.optimizer_only:
            names = ", ".join(":".join(i.split(";")[::2]) for i in m.optimizer_only)
            console.print(
                f"  [yellow]{len(m.optimizer_only)} op(s) only after ORT's optimizer at level "
                f"'{escape(result.optimization_level)}':[/] {escape(names)}",
                markup=True,
            )
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, markup=True)
