"""The analyze stage's results: the size report every data source feeds and every renderer reads, diffs
between two reports, the seed's table rows, and the size summary of a slim run. All serialize to JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ortprune._io import atomic_write_text, json_text

#: Label kinds. Attributed kinds name what the bytes *are*; fallback kinds say where they merely *are*.
KINDS = ("symbol", "op", "shared", "file", "dir", "section", "header", "padding")

MiB = 1024 * 1024

#: What a reader of a size chart wants to tell apart, in stacking order. "op kernels" is what an op-reduced
#: build drops; the rest is shared by every op.
CATEGORIES = ("op kernels", "shared code", "symbol tables", "unwind tables", "data")
_CODE_SECTIONS = (".text", ".init", ".fini", ".plt", ".plt.got", ".plt.sec")
_SYMBOL_SECTIONS = (
    ".symtab",
    ".strtab",
    ".dynsym",
    ".dynstr",
    ".gnu.hash",
    ".hash",
    ".gnu.version",
    ".gnu.version_r",
    ".gnu.version_d",
)
_UNWIND_SECTIONS = (".eh_frame", ".eh_frame_hdr", ".gcc_except_table")


def category(label: Label) -> str:
    """The chart category of one label: op-owned bytes, or the kind of section the bytes are in."""
    if label.kind == "op":
        return "op kernels"
    name = label.name
    if name.startswith("[shared] "):
        section = name[len("[shared] ") :]
    elif name.startswith("[section ") and name.endswith("]"):
        section = name[len("[section ") : -1]
    else:
        section = name if label.kind in ("symbol", "section") else ""
    if section in _CODE_SECTIONS or label.kind == "symbol":
        return "shared code"
    if section in _SYMBOL_SECTIONS:
        return "symbol tables"
    if section in _UNWIND_SECTIONS:
        return "unwind tables"
    return "data"


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

    def categories(self) -> dict[str, int]:
        """Bytes per chart category (:data:`CATEGORIES`); they sum to the file size."""
        out = dict.fromkeys(CATEGORIES, 0)
        for label in self.labels:
            out[category(label)] += label.size
        return out

    def by_name(self) -> dict[str, Label]:
        return {label.name: label for label in self.labels}

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
        return atomic_write_text(path, json_text(self.to_dict(), indent=1))


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
    #: labels left out of ``rows`` because they did not change (a diff read back from JSON keeps only changes)
    unchanged: int = 0

    @property
    def delta(self) -> int:
        return self.new_total - self.old_total

    def changed(self) -> list[DiffRow]:
        """Rows that changed, biggest change first."""
        return sorted((r for r in self.rows if r.delta), key=lambda r: (-abs(r.delta), r.name))

    def counts(self) -> dict[str, int]:
        out = {"grew": 0, "shrank": 0, "appeared": 0, "vanished": 0, "same": self.unchanged}
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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SizeDiff:
        rows = [DiffRow(r["name"], r["kind"], r["old"], r["new"]) for r in d["rows"]]
        return cls(d["old"], d["new"], d["by"], d["old_total"], d["new_total"], rows, d["counts"]["same"])


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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VariantRow:
        return cls(d["name"], d["path"], d["size"], d["baseline"], d["footprint"])


@dataclass(frozen=True)
class LabelSize:
    name: str
    kind: str
    size: int


@dataclass
class SizeSummary:
    """Sizes of a slim run: the seed's table (full first), the full build by op, the savings of each
    variant by label, the analysis notes, and the chart files (relative to the output directory)."""

    table: list[VariantRow]
    full_by_op: list[LabelSize]
    savings_by_op: dict[str, SizeDiff]
    notes: list[str] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    shipped_charts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": [r.to_dict() for r in self.table],
            "full_by_op": [asdict(lb) for lb in self.full_by_op],
            "savings_by_op": {v: d.to_dict() for v, d in self.savings_by_op.items()},
            "notes": self.notes,
            "charts": self.charts,
            "shipped_charts": self.shipped_charts,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SizeSummary:
        return cls(
            [VariantRow.from_dict(r) for r in d["table"]],
            [LabelSize(**lb) for lb in d["full_by_op"]],
            {v: SizeDiff.from_dict(x) for v, x in d["savings_by_op"].items()},
            list(d["notes"]),
            list(d["charts"]),
            list(d.get("shipped_charts", [])),
        )


@dataclass(frozen=True)
class ShippedFile:
    role: str  # "model" or "tokenizer"
    path: str
    bytes: int


@dataclass
class Shipped:
    """One variant's deployment."""

    variant: str
    library: str
    library_bytes: int
    library_stripped_bytes: int
    files: list[ShippedFile] = field(default_factory=list)
    verified: bool = False

    @property
    def model_bytes(self) -> int:
        return sum(f.bytes for f in self.files if f.role == "model")

    @property
    def tokenizer_bytes(self) -> int:
        return sum(f.bytes for f in self.files if f.role == "tokenizer")

    @property
    def total(self) -> int:
        """Shipped bytes: the stripped library, the models and the tokenizer files."""
        return self.library_stripped_bytes + self.model_bytes + self.tokenizer_bytes

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(model_bytes=self.model_bytes, tokenizer_bytes=self.tokenizer_bytes, total=self.total)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Shipped:
        keys = ("variant", "library", "library_bytes", "library_stripped_bytes", "verified")
        return cls(**{k: d[k] for k in keys}, files=[ShippedFile(**f) for f in d["files"]])
