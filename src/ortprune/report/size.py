"""Renderers for size reports: the seed's variant table, attribution tables, diffs (rich / Markdown / JSON)
and charts (PNG via matplotlib's Agg backend, with the plotted data as JSON beside it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from ortprune._io import atomic_open, atomic_write_text, json_text
from ortprune.report.table import Column, Table
from ortprune.results.size import CATEGORIES, DiffRow, Label, MiB, Shipped, SizeDiff, SizeReport, VariantRow


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


R = TypeVar("R")


def seed_columns(
    name: Callable[[R], str], size: Callable[[R], int], vs: Callable[[R], str], baseline: str = "full"
) -> list[Column[R]]:
    """The seed's table: | Build | Size (bytes) | Size (MiB) | vs Full | (other tables add columns to it);
    the last column names the ``baseline`` ("vs official release" when the official library is the baseline)."""
    return [
        Column("Build", name),
        Column("Size (bytes)", lambda r: _fmt(size(r)), right=True),
        Column("Size (MiB)", lambda r: _mib(size(r)), right=True),
        Column("vs Full" if baseline == "full" else f"vs {baseline}", vs, right=True),
    ]


def variants_table(rows: list[VariantRow], baseline_index: int = 0) -> Table[tuple[bool, VariantRow]]:
    """The seed's table with the footprint; the rows' JSON is ``VariantRow.to_dict``."""
    cols: list[Column[tuple[bool, VariantRow]]] = seed_columns(
        lambda r: r[1].name,
        lambda r: r[1].size,
        lambda r: r[1].vs(r[0]),
        "official release" if rows and rows[baseline_index].name == "official release" else "full",
    )
    cols.append(Column("Footprint (bytes)", lambda r: "—" if r[1].footprint is None else _fmt(r[1].footprint), True))
    return Table(cols, [(i == baseline_index, r) for i, r in enumerate(rows)], title="Library sizes")


# ---- markdown ----------------------------------------------------------------------------------------
def variants_markdown(rows: list[VariantRow], baseline_index: int = 0) -> str:
    return variants_table(rows, baseline_index).markdown()


_BY_TITLE = {"section": "Section", "symbol": "Symbol", "op": "Operator", "file": "Source file", "dir": "Directory"}


def labels_table(report: SizeReport, top: int = 30) -> Table[Label]:
    """The biggest labels of one report (``top``; 0: all), the rest summed, and the total (= file size)."""
    rows = report.sorted_labels()
    shown = rows[:top] if top else rows
    rest = rows[len(shown) :]

    def pct(n: int) -> str:
        return f"{100 * n / report.file_size:.2f}%"

    footer = []
    if rest:
        other = sum(r.size for r in rest)
        footer.append([f"[{len(rest)} other labels]", "", _fmt(other), pct(other)])
    footer.append(["TOTAL (= file size)", "", _fmt(report.total), "100.00%"])
    cols: list[Column[Label]] = [
        Column(_BY_TITLE[report.by], lambda r: r.name),
        Column("Kind", lambda r: r.kind),
        Column("Size (bytes)", lambda r: _fmt(r.size), right=True),
        Column("% of file", lambda r: pct(r.size), right=True),
    ]
    return Table(cols, shown, title=f"{Path(report.path).name} by {report.by}", footer=footer)


def labels_markdown(report: SizeReport, top: int = 30) -> str:
    lines = [f"### `{Path(report.path).name}` by {report.by}", "", labels_table(report, top).markdown(code=(0,))]
    lines += [f"> {n}" for n in report.notes]
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


def diff_table(d: SizeDiff, top: int = 30) -> Table[DiffRow]:
    """Changed labels, biggest change first (``top``; 0: all), and the totals."""
    changed = d.changed()
    pct = f" ({100 * d.delta / d.old_total:+.1f}%)" if d.old_total else ""
    cols: list[Column[DiffRow]] = [
        Column("Label", lambda r: r.name),
        Column("Old (bytes)", lambda r: _fmt(r.old), right=True),
        Column("New (bytes)", lambda r: _fmt(r.new), right=True),
        Column("Change", lambda r: f"{r.delta:+,}", right=True),
        Column("Status", lambda r: r.status),
    ]
    return Table(
        cols,
        changed[:top] if top else changed,
        title=f"{d.old_path} → {d.new_path} by {d.by}",
        footer=[["TOTAL", _fmt(d.old_total), _fmt(d.new_total), f"{d.delta:+,}{pct}", ""]],
        style=lambda r: "red" if r.delta > 0 else "green",
    )


def _diff_counts(d: SizeDiff) -> str:
    c = d.counts()
    return (
        f"{c['grew']} grew, {c['shrank']} shrank, {c['appeared']} appeared, {c['vanished']} vanished, "
        f"{c['same']} unchanged."
    )


def diff_markdown(d: SizeDiff, top: int = 30) -> str:
    head = f"### `{d.old_path}` → `{d.new_path}` by {d.by}\n\n{_diff_counts(d)}\n\n"
    return head + diff_table(d, top).markdown(code=(0,))


# ---- rich tables -------------------------------------------------------------------------------------
def print_variants(rows: list[VariantRow], console: Console, baseline_index: int = 0) -> None:
    console.print(variants_table(rows, baseline_index).rich())


def print_labels(report: SizeReport, console: Console, top: int = 30) -> None:
    console.print(labels_table(report, top).rich())
    for n in report.notes:
        console.print(f"note: {n}", markup=False, highlight=False)


def print_diff(d: SizeDiff, console: Console, top: int = 30) -> None:
    console.print(diff_table(d, top).rich())
    console.print(_diff_counts(d), markup=False, highlight=False)


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
    atomic_write_text(js, json_text(data, indent=1))
    return [png, js]


def write_variant_chart(rows: list[VariantRow], out_dir: str | Path) -> list[Path]:
    """``variants.png`` (library size per build) and ``variants.json``."""
    out = Path(out_dir)
    png, js = out / "variants.png", out / "variants.json"
    _barh(png, [r.name for r in rows], [r.size for r in rows], "Library size per build", "bytes")
    atomic_write_text(js, json_text([r.to_dict() for r in rows], indent=1))
    return [png, js]


def write_category_chart(by_op: dict[str, SizeReport], rows: list[VariantRow], out_dir: str | Path) -> list[Path]:
    """``categories.png``: the full build next to each variant, stacked by category (op kernels the variant
    removes, op kernels kept, shared code, symbol tables, unwind tables, data), with ``categories.json``;
    and ``variants.png``/``.json`` (library size per build). ``by_op``: reports by op, the full build first."""
    out = Path(out_dir)
    (full_name, full), *variants = by_op.items()
    cats = {name: r.categories() for name, r in by_op.items()}
    bars: list[tuple[str, dict[str, int]]] = []
    for name, _ in variants or [(full_name, full)]:
        removed = max(0, cats[full_name]["op kernels"] - cats[name]["op kernels"])
        full_split = {**cats[full_name], "op kernels": cats[full_name]["op kernels"] - removed}
        bars += [(f"{full_name} (vs {name})", {"op kernels removed": removed, **full_split})]
        if name != full_name:
            bars.append((name, {"op kernels removed": 0, **cats[name]}))
    segments = ["op kernels removed", *CATEGORIES]
    colors = ["#dddddd", "#4477aa", "#66ccee", "#ccbb44", "#ee6677", "#aa3377"]
    _stacked(
        out / "categories.png",
        [b[0] for b in bars],
        [(seg, [b[1][seg] for b in bars], color) for seg, color in zip(segments, colors, strict=True)],
        "Full build vs each variant, by category",
    )
    js = out / "categories.json"
    atomic_write_text(js, json_text({"categories": segments, "bars": dict(bars)}, indent=1))
    return [out / "categories.png", js, *write_variant_chart(rows, out)]


def write_shipped_chart(items: list[Shipped], out_dir: str | Path) -> list[Path]:
    """``shipped.png``: library, models and tokenizer stacked per variant (smallest total first), and
    ``shipped.json`` with the same numbers."""
    out = Path(out_dir)
    png, js = out / "shipped.png", out / "shipped.json"
    parts = [
        ("library (stripped)", [s.library_stripped_bytes for s in items], "#4477aa"),
        ("models", [s.model_bytes for s in items], "#ee6677"),
        ("tokenizer", [s.tokenizer_bytes for s in items], "#228833"),
    ]
    names = [s.variant + ("" if s.verified else " (not verified)") for s in items]
    _stacked(png, names, parts, "Shipped bytes per variant: library + models + tokenizer")
    atomic_write_text(js, json_text([s.to_dict() for s in items], indent=1))
    return [png, js]


def _stacked(path: Path, names: list[str], parts: list[tuple[str, list[int], str]], title: str) -> None:
    """Horizontal bars (first name on top), each stacked from ``parts`` (label, bytes per bar, colour), in MiB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.55 * len(names) + 2))
    try:
        left = [0.0] * len(names)
        for label, values, color in parts:
            mib = [v / MiB for v in values][::-1]
            ax.barh(names[::-1], mib, left=left, label=label, color=color, edgecolor="white")
            left = [a + b for a, b in zip(left, mib, strict=True)]
        for i, total in enumerate(left):
            ax.text(total, i, f" {total:.2f} MiB", va="center", fontsize=8)
        ax.set_title(title)
        ax.set_xlabel("MiB")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)
