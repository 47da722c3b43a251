"""The size report model: what every data source feeds and every renderer reads. Serializes to JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ortprune._io import atomic_write_text

#: Label kinds. Attributed kinds name what the bytes *are*; fallback kinds say where they merely *are*.
KINDS = ("symbol", "op", "shared", "file", "dir", "section", "header", "padding")

MiB = 1024 * 1024


@dataclass
class Label:
    """One row: ``size`` file bytes under one label. ``count`` = symbols or ranges merged into it."""

    name: str
    size: int
    kind: str
    count: int = 1


@dataclass
class SectionInfo:
    name: str
    type: int
    alloc: bool
    offset: int
    size: int  #: memory size (sh_size)
    file_size: int  #: bytes in the file (0 for NOBITS)


@dataclass
class FootprintEntry:
    needed: str  #: the DT_NEEDED name (or the library itself)
    path: str | None  #: where the loader would find it; None if not found
    size: int
    system: bool  #: part of the C/C++ runtime every Linux system has (not shipped)


@dataclass
class Footprint:
    """The library plus every non-system library it needs, transitively (what a user ships)."""

    entries: list[FootprintEntry] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(e.size for e in self.entries if not e.system)

    @property
    def missing(self) -> list[str]:
        return [e.needed for e in self.entries if e.path is None and not e.system]


@dataclass
class SizeReport:
    path: str
    file_size: int
    by: str
    labels: list[Label]
    sections: list[SectionInfo]
    symbol_table: str  #: "symtab", "dynsym" or "none"
    debug_info: bool
    notes: list[str] = field(default_factory=list)
    footprint: Footprint | None = None

    @property
    def total(self) -> int:
        return sum(label.size for label in self.labels)

    def sorted_labels(self) -> list[Label]:
        return sorted(self.labels, key=lambda r: (-r.size, r.name))

    def by_name(self) -> dict[str, Label]:
        return {label.name: label for label in self.labels}

    def alloc_size(self) -> int:
        """Bytes of the file that are loaded into memory (SHF_ALLOC sections with file bytes)."""
        return sum(s.file_size for s in self.sections if s.alloc)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["total"] = self.total
        d["labels"] = [asdict(r) for r in self.sorted_labels()]
        if self.footprint is not None:
            d["footprint"]["total"] = self.footprint.total
            d["footprint"]["missing"] = self.footprint.missing
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SizeReport:
        fp = d.get("footprint")
        return cls(
            path=d["path"],
            file_size=d["file_size"],
            by=d["by"],
            labels=[Label(**r) for r in d["labels"]],
            sections=[SectionInfo(**s) for s in d["sections"]],
            symbol_table=d["symbol_table"],
            debug_info=d["debug_info"],
            notes=list(d.get("notes", [])),
            footprint=None if fp is None else Footprint([FootprintEntry(**e) for e in fp["entries"]]),
        )

    def write_json(self, path: str | Path) -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
