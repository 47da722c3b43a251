"""Diff of two size reports by the same labels: what grew, shrank, appeared or vanished."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ortprune.analyze.model import SizeReport


@dataclass(frozen=True)
class DiffRow:
    name: str
    kind: str
    old: int
    new: int

    @property
    def delta(self) -> int:
        return self.new - self.old

    @property
    def status(self) -> str:
        if self.old == 0 and self.new > 0:
            return "appeared"
        if self.new == 0 and self.old > 0:
            return "vanished"
        if self.delta > 0:
            return "grew"
        if self.delta < 0:
            return "shrank"
        return "same"


@dataclass
class SizeDiff:
    old_path: str
    new_path: str
    by: str
    old_total: int
    new_total: int
    rows: list[DiffRow]

    @property
    def delta(self) -> int:
        return self.new_total - self.old_total

    def changed(self) -> list[DiffRow]:
        """Rows that changed, biggest change first."""
        return sorted((r for r in self.rows if r.delta), key=lambda r: (-abs(r.delta), r.name))

    def counts(self) -> dict[str, int]:
        out = {"grew": 0, "shrank": 0, "appeared": 0, "vanished": 0, "same": 0}
        for r in self.rows:
            out[r.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old_path,
            "new": self.new_path,
            "by": self.by,
            "old_total": self.old_total,
            "new_total": self.new_total,
            "delta": self.delta,
            "counts": self.counts(),
            "rows": [{**asdict(r), "delta": r.delta, "status": r.status} for r in self.changed()],
        }


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
