"""Markdown for the estimate (a reduced build's predicted size) and the per-op cost table."""

from __future__ import annotations

from pathlib import Path

from ortprune.report.size import seed_columns
from ortprune.report.table import Column, Table
from ortprune.results.estimate import Estimate, OpCost, OpCosts


def _amounts(first: str, rows: list[tuple[str, int]], total: str, code: bool = False) -> str:
    cols: list[Column[tuple[str, int]]] = [Column(first, lambda r: r[0]), Column("Bytes", lambda r: f"{r[1]:,}", True)]
    footer = [[total, f"{sum(v for _, v in rows):,}"]] if total else []
    return Table(cols, rows, footer=footer).markdown(code=(0,) if code else ())


def estimate_markdown(e: Estimate) -> str:
    builds = [("full", e.full_size), ("reduced (estimated)", e.estimated_size)]

    def vs(r: tuple[str, int]) -> str:
        return (
            "baseline"
            if r[1] == e.full_size and r[0] == "full"
            else f"{100 * (r[1] - e.full_size) / e.full_size:+.1f}%"
        )

    seed = Table(seed_columns(lambda r: r[0], lambda r: r[1], vs), builds)
    lines = [
        f"Estimate for `{Path(e.full).name}` with `{e.config}`"
        + (f", levers: {e.levers}" if e.levers != "none" else "")
        + ":",
        "",
        _amounts("Part removed", list(e.removed.items()), "total removed"),
        seed.markdown(),
        f"Kernels: {e.kernels_removed} of {e.kernels_total} registrations removed; "
        f"{len(e.ops_kept)} ops keep a kernel, {len(e.ops_removed)} lose all.",
        "",
        _amounts("Removed, by op", [(k, v) for k, v in e.top_removed], "", code=True),
        *[f"> {n}" for n in e.notes],
    ]
    return "\n".join(lines) + "\n"


def op_costs_markdown(c: OpCosts, top: int = 0) -> str:
    rows = c.ops[:top] if top else c.ops
    cols: list[Column[OpCost]] = [
        Column("Operator", lambda o: o.op),
        Column("Kernels", lambda o: str(o.registrations), True),
        Column("Exclusive bytes (removable alone)", lambda o: f"{o.exclusive:,}", True),
        Column("Named bytes (`size --by op`)", lambda o: f"{o.named:,}", True),
    ]
    footer = [
        ["all ops, exclusive", str(sum(o.registrations for o in c.ops)), f"{sum(o.exclusive for o in c.ops):,}", ""],
        ["shared by several ops' kernels only", "", f"{c.kernel_shared:,}", ""],
        ["core (reached without any kernel)", "", f"{c.core:,}", ""],
        ["not reached by the reference graph", "", f"{c.unreached:,}", ""],
    ]
    lines = [
        f"Per-op cost in `{Path(c.full).name}` ({c.file_size:,} bytes):",
        "",
        Table(cols, rows, footer=footer).markdown(code=(0,)),
        *[f"> {n}" for n in c.notes],
    ]
    return "\n".join(lines) + "\n"
