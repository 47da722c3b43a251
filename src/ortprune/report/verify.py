"""Terminal tables for probe and verify."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ortprune.results.verify import IMPLEMENTED, MISSING, ProbeReport, VerifyReport

_STATUS_STYLE = {IMPLEMENTED: "green", MISSING: "bold red"}


def print_probe(report: ProbeReport, console: Console, show_all: bool = True) -> None:
    table = Table(title=Text(f"probe {report.library} (ONNX Runtime {report.library_version})"), title_justify="left")
    shown = [r for r in report.results if show_all or r.status != IMPLEMENTED]
    # op names are copied into configs: never folded (nor cut), the detail column gives way
    for title, cells in (("op", [r.op for r in shown]), ("type", [r.element_type or "" for r in shown]),
                         ("status", [r.status for r in shown])):  # fmt: skip
        table.add_column(title, no_wrap=True, min_width=max(map(len, [title, *cells])))
    table.add_column("detail", overflow="fold", ratio=1)
    for r in shown:
        table.add_row(
            Text(r.op), r.element_type or "", r.status, Text(r.detail), style=_STATUS_STYLE.get(r.status, "yellow")
        )
    console.print(table)
    console.print(", ".join(f"{v} {k}" for k, v in report.counts().items()))


def print_verify(report: VerifyReport, console: Console) -> None:
    table = Table(
        title=Text(f"verify {report.pruned} against {report.reference} (level {report.optimization_level})"),
        title_justify="left",
    )
    for col in ("model", "status", "max |diff|", "min cosine", "pruned ms", "reference ms", "inputs", "detail"):
        table.add_column(col, overflow="fold")
    for m in report.models:
        mad = max((o.max_abs_diff for o in m.outputs), default=None)
        cos = min((o.min_row_cosine for o in m.outputs), default=None)
        detail = f"missing {m.missing_op}; add: {m.fix}" if m.fix else m.detail[:300]
        status = m.status if m.side is None else f"{m.status} ({m.side})"
        table.add_row(
            Text(m.model.rsplit("/", 1)[-1]),
            status,
            "" if mad is None else f"{mad:.2e}",
            "" if cos is None else f"{cos:.7f}",
            "" if m.pruned_ms is None else f"{m.pruned_ms:.1f}",
            "" if m.reference_ms is None else f"{m.reference_ms:.1f}",
            Text(m.inputs),
            Text(detail),
            style="green" if m.status == "ok" else "bold red",
        )
    console.print(table)
