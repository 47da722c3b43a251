"""Diff of two size reports by the same labels: what grew, shrank, appeared or vanished."""

from __future__ import annotations

from ortprune.results.size import DiffRow, SizeDiff, SizeReport


def diff_reports(old: SizeReport, new: SizeReport) -> SizeDiff:
    """Label-by-label difference; the row deltas sum to the file size difference."""
    if old.by != new.by:
        raise ValueError(f"cannot diff a report by {old.by} with one by {new.by}")
    a, b = old.by_name(), new.by_name()
    rows = []
    for name in sorted(set(a) | set(b)):
        kind = (a.get(name) or b[name]).kind
        rows.append(DiffRow(name, kind, a[name].size if name in a else 0, b[name].size if name in b else 0))
    return SizeDiff(old.path, new.path, old.by, old.total, new.total, rows)
