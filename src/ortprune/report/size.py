"""Renderers for size reports: the seed's variant table, attribution tables, diffs (rich / Markdown / JSON)
and charts (PNG via matplotlib's Agg backend, with the plotted data as JSON beside it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ortprune._io import atomic_open, atomic_write_text
from ortprune.analyze.diff import SizeDiff
from ortprune.analyze.model import MiB, SizeReport


@dataclass(frozen=True)
class VariantRow:
    """One line of the seed's table: | Build | Size (bytes) | Size (MiB) | vs Full |, plus the footprint."""

    name: str
    path: str
    size: int
    baseline: int
    footprint: int | None

    @property
    def change(self) -> float:
        return (self.size - self.baseline) / self.baseline * 100 if self.baseline else 0.0

    def vs(self, is_baseline: bool) -> str:
        return "baseline" if is_baseline else f"{self.change:+.1f}%"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "size": self.size,
            "size_mib": round(self.size / MiB, 2),
            "baseline": self.baseline,
            "change_percent": round(self.change, 2),
            "footprint": self.footprint,
        }


def build_names(paths: list[str]) -> list[str]:
    """Short names that tell the libraries apart: file names, else the first path component that differs
    (``builds/full/MinSizeRel/lib.so`` and ``builds/reduced/MinSizeRel/lib.so`` → ``full``, ``reduced``)."""
    names = [Path(p).name for p in paths]
    if len(set(names)) == len(names):
        return names
    parts = [Path(p).resolve().parts for p in paths]
    width = min(len(p) for p in parts)
    for i in range(width):
        column = [p[i] for p in parts]
        if len(set(column)) > 1:
            return [p[i] if len(set(column)) == len(column) else str(Path(*p[i:])) for p in parts]
    return [str(p) for p in paths]


def variant_rows(reports: list[SizeReport], baseline: SizeReport, names: list[str] | None = None) -> list[VariantRow]:
    names = names or build_names([r.path for r in reports])
    return [
        VariantRow(n, r.path, r.file_size, baseline.file_size, None if r.footprint is None else r.footprint.total)
        for n, r in zip(names, reports, strict=True)
    ]


def _fmt(n: int) -> str:
    return f"{n:,}"


def _mib(n: int) -> str:
    return f"{n / MiB:.2f}"


# ---- markdown ----------------------------------------------------------------------------------------
def variants_markdown(rows: list[VariantRow], baseline_index: int = 0) -> str:
    lines = [
        "| Build | Size (bytes) | Size (MiB) | vs Full | Footprint (bytes) |",
        "|-------|-------------|------------|---------|-------------------|",
    ]
    for i, r in enumerate(rows):
        fp = _fmt(r.footprint) if r.footprint is not None else "—"
        lines.append(f"| {r.name} | {_fmt(r.size)} | {_mib(r.size)} | {r.vs(i == baseline_index)} | {fp} |")
    return "\n".join(lines) + "\n"


def labels_markdown(report: SizeReport, top: int = 30) -> str:
    head = {"section": "Section", "symbol": "Symbol", "op": "Operator", "file": "Source file", "dir": "Directory"}
    rows = report.sorted_labels()
    lines = [
        f"### `{Path(report.path).name}` by {report.by}",
        "",
        f"| {head[report.by]} | Kind | Size (bytes) | % of file |",
        "|---|---|---:|---:|",
    ]
    shown = rows[:top] if top else rows
    for r in shown:
        name = r.name.replace("|", "\\|")
        lines.append(f"| `{name}` | {r.kind} | {_fmt(r.size)} | {100 * r.size / report.file_size:.2f}% |")
    rest = rows[len(shown) :]
    if rest:
        lines.append(
            f"| [{len(rest)} other labels] | — | {_fmt(sum(r.size for r in rest))} | "
            f"{100 * sum(r.size for r in rest) / report.file_size:.2f}% |"
        )
    lines.append(f"| **TOTAL** (= file size) | | **{_fmt(report.total)}** | 100.00% |")
    lines += ["", *[f"> {n}" for n in report.notes]]
    return "\n".join(lines) + "\n"


def footprint_markdown(report: SizeReport) -> str:
    if report.footprint is None:
        return ""
    lines = [f"Footprint of `{Path(report.path).name}` (what you ship):", "", "| Library | Path | Size (bytes) |"]
    lines.append("|---|---|---:|")
    for e in report.footprint.entries:
        if not e.system:
            lines.append(f"| {e.needed} | {e.path or 'NOT FOUND'} | {_fmt(e.size)} |")
    lines.append(f"| **total** | | **{_fmt(report.footprint.total)}** |")
    system = [e.needed for e in report.footprint.entries if e.system]
    if system:
        lines += ["", "System libraries (not shipped): " + ", ".join(system)]
    return "\n".join(lines) + "\n"


def diff_markdown(d: SizeDiff, top: int = 30) -> str:
    c = d.counts()
    lines = [
        f"### `{d.old_path}` → `{d.new_path}` by {d.by}",
        "",
        f"{c['grew']} grew, {c['shrank']} shrank, {c['appeared']} appeared, {c['vanished']} vanished, "
        f"{c['same']} unchanged.",
        "",
        "| Label | Old (bytes) | New (bytes) | Change | Status |",
        "|---|---:|---:|---:|---|",
    ]
    changed = d.changed()
    for r in changed[:top] if top else changed:
        lines.append(
            f"| `{r.name.replace('|', chr(92) + '|')}` | {_fmt(r.old)} | {_fmt(r.new)} | {r.delta:+,} | {r.status} |"
        )
    pct = f" ({100 * d.delta / d.old_total:+.1f}%)" if d.old_total else ""
    lines.append(f"| **TOTAL** | {_fmt(d.old_total)} | {_fmt(d.new_total)} | {d.delta:+,}{pct} | |")
    return "\n".join(lines) + "\n"


# ---- rich tables -------------------------------------------------------------------------------------
def print_variants(rows: list[VariantRow], console: Console, baseline_index: int = 0) -> None:
    t = Table(title="Library sizes")
    for col in ("Build", "Size (bytes)", "Size (MiB)", "vs Full", "Footprint (bytes)"):
        t.add_column(col, justify="left" if col == "Build" else "right", overflow="fold")
    for i, r in enumerate(rows):
        fp = _fmt(r.footprint) if r.footprint is not None else "—"
        t.add_row(escape(r.name), _fmt(r.size), _mib(r.size), r.vs(i == baseline_index), fp)
    console.print(t)


def print_labels(report: SizeReport, console: Console, top: int = 30) -> None:
    t = Table(title=escape(f"{Path(report.path).name} by {report.by}"))
    t.add_column(report.by.capitalize(), overflow="fold")
    t.add_column("Kind")
    t.add_column("Size (bytes)", justify="right")
    t.add_column("%", justify="right")
    rows = report.sorted_labels()
    shown = rows[:top] if top else rows
    for r in shown:
        t.add_row(escape(r.name), r.kind, _fmt(r.size), f"{100 * r.size / report.file_size:.2f}")
    rest = rows[len(shown) :]
    if rest:
        size = sum(r.size for r in rest)
        t.add_row(escape(f"[{len(rest)} other labels]"), "", _fmt(size), f"{100 * size / report.file_size:.2f}")
    t.add_row("TOTAL (= file size)", "", _fmt(report.total), "100.00", style="bold")
    console.print(t)
    for n in report.notes:
        console.print(f"note: {n}", markup=False, highlight=False)


def print_diff(d: SizeDiff, console: Console, top: int = 30) -> None:
    t = Table(title=escape(f"{d.old_path} → {d.new_path} by {d.by}"))
    for col in ("Label", "Old", "New", "Change", "Status"):
        t.add_column(col, justify="left" if col in ("Label", "Status") else "right", overflow="fold")
    changed = d.changed()
    for r in changed[:top] if top else changed:
        style = "red" if r.delta > 0 else "green"
        t.add_row(escape(r.name), _fmt(r.old), _fmt(r.new), f"[{style}]{r.delta:+,}[/]", r.status)
    t.add_row("TOTAL", _fmt(d.old_total), _fmt(d.new_total), f"{d.delta:+,}", "", style="bold")
    console.print(t)
    c = d.counts()
    console.print(f"{c['grew']} grew, {c['shrank']} shrank, {c['appeared']} appeared, {c['vanished']} vanished")


# ---- charts ------------------------------------------------------------------------------------------
def _barh(path: Path, names: list[str], values: list[int], title: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.35 * len(names) + 1.5))
    try:
        ax.barh([n if len(n) <= 70 else n[:67] + "..." for n in names][::-1], values[::-1], color="#4477aa")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        for i, v in enumerate(values[::-1]):
            ax.text(v, i, f" {v / MiB:.2f} MiB" if v >= MiB else f" {v:,}", va="center", fontsize=8)
        fig.tight_layout()
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)


def write_label_chart(report: SizeReport, out_dir: str | Path, top: int = 20) -> list[Path]:
    """``<lib>-by-<by>.png`` (biggest labels) and the same data as ``.json``."""
    out = Path(out_dir)
    stem = f"{Path(report.path).name}-by-{report.by}"
    rows = report.sorted_labels()[:top]
    data = {
        "library": report.path,
        "by": report.by,
        "file_size": report.file_size,
        "labels": [{"name": r.name, "kind": r.kind, "size": r.size} for r in rows],
    }
    png, js = out / f"{stem}.png", out / f"{stem}.json"
    title = f"{Path(report.path).name}: biggest {report.by} labels"
    _barh(png, [r.name for r in rows], [r.size for r in rows], title, "bytes")
    atomic_write_text(js, json.dumps(data, indent=1) + "\n")
    return [png, js]


def write_variant_chart(rows: list[VariantRow], out_dir: str | Path) -> list[Path]:
    """``variants.png`` (library size per build) and ``variants.json``."""
    out = Path(out_dir)
    png, js = out / "variants.png", out / "variants.json"
    _barh(png, [r.name for r in rows], [r.size for r in rows], "Library size per build", "bytes")
    atomic_write_text(js, json.dumps([r.to_dict() for r in rows], indent=1) + "\n")
    return [png, js]


def write_shipped_chart(items: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """``shipped.png``: library, models and tokenizer stacked per variant (smallest total first), and
    ``shipped.json`` with the same numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    png, js = out / "shipped.png", out / "shipped.json"
    names = [s["variant"] + ("" if s["verified"] else " (not verified)") for s in items][::-1]
    parts = [("library (stripped)", "library_stripped_bytes", "#4477aa"), ("models", "model_bytes", "#ee6677"),
             ("tokenizer", "tokenizer_bytes", "#228833")]  # fmt: skip
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(items) + 1.8))
    try:
        left = [0.0] * len(items)
        for label, key, color in parts:
            vals = [s[key] / MiB for s in items][::-1]
            ax.barh(names, vals, left=left, label=label, color=color)
            left = [a + b for a, b in zip(left, vals, strict=True)]
        for i, total in enumerate(left):
            ax.text(total, i, f" {total:.2f} MiB", va="center", fontsize=8)
        ax.set_title("Shipped bytes per variant: library + models + tokenizer")
        ax.set_xlabel("MiB")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        with atomic_open(png, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)
    atomic_write_text(js, json.dumps(items, indent=1) + "\n")
    return [png, js]
