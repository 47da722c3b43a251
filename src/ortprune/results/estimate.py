"""The estimate's results: a reduced build's predicted size, and what each op costs in a full build."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ortprune._io import atomic_write_text, json_text


@dataclass
class Estimate:
    full: str
    config: str
    full_size: int
    estimated_size: int
    removed: dict[str, int]  #: bytes removed per part (symbols, .eh_frame, ...)
    kernels_total: int
    kernels_removed: int
    ops_removed: list[str]  #: domain;op whose every registration goes
    ops_kept: list[str]
    reachable_fraction: float  #: share of symbol bytes the full graph reaches (scanner coverage)
    top_removed: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    levers: str = "none"  #: PruneLevers.describe() of the levers estimated on top of the config

    @property
    def removed_total(self) -> int:
        return sum(self.removed.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["removed_total"] = self.removed_total
        d["change_percent"] = round(100 * (self.estimated_size - self.full_size) / self.full_size, 2)
        return d

    def write_json(self, path: str | Path) -> Path:
        return atomic_write_text(path, json_text(self.to_dict(), indent=1))


@dataclass(frozen=True)
class OpCost:
    """What one operator costs in a full build (code and data bytes of symbols and anonymous data)."""

    op: str  #: domain;op
    registrations: int
    exclusive: int  #: bytes only this op's kernels reach: what dropping just this op removes
    named: int  #: bytes of the symbols named after the op (``ortprune size --by op``)


@dataclass
class OpCosts:
    full: str
    file_size: int
    ops: list[OpCost]
    core: int  #: bytes reached without any kernel registration: never removed by op pruning
    kernel_shared: int  #: bytes reached by the kernels of several ops only: removed when all of them go
    unreached: int  #: bytes the reference graph does not reach at all (not counted anywhere else)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
