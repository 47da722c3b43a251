"""Attribution: every byte of the file gets exactly one label, and the labels sum to the file size.

The file is painted in two levels, like bloaty's range maps. The base level covers the file with the
ELF header, the program and section header tables, each section's file bytes, and ``[padding]`` for the
gaps between them. Inside each section a data source (symbols, compile units, operators) paints its
ranges; the first range to claim a byte wins (ranges are taken in address order, bigger first when two
start together, functions before objects, globals before locals), and the unclaimed rest of the section
falls back to ``[section NAME]``. Aliases (identical code folding, several names at one address) thus
count their bytes once, under the first name.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ortprune.analyze.demangle import demangle, short_name
from ortprune.elf import (
    PT_TLS,
    SHN_LORESERVE,
    SHT_NULL,
    STB_LOCAL,
    STT_FILE,
    STT_FUNC,
    STT_SECTION,
    STT_TLS,
    ElfFile,
    Section,
    Symbol,
)
from ortprune.errors import ElfError
from ortprune.results.size import Label, SectionInfo, SizeReport

BY = ("section", "symbol", "op", "file", "dir")


@dataclass(frozen=True)
class Piece:
    """A file range ``[start, end)`` claimed by ``label`` (of ``kind``)."""

    start: int
    end: int
    label: str
    kind: str


@dataclass(frozen=True)
class SizedSymbol:
    """A defined symbol with its file range and demangled name."""

    sym: Symbol
    section: Section
    start: int  #: file offset
    end: int
    name: str  #: demangled

    @property
    def addr(self) -> int:
        return self.section.addr + (self.start - self.section.offset)


class Painter:
    """Accumulates label sizes; checks that every byte is painted once."""

    def __init__(self) -> None:
        self.sizes: dict[tuple[str, str], list[int]] = {}
        self.painted = 0
        self.shadowed = 0  #: ranges that lost all their bytes to an earlier one (aliases, ICF)

    def add(self, label: str, kind: str, size: int) -> None:
        if size <= 0:
            return
        slot = self.sizes.setdefault((label, kind), [0, 0])
        slot[0] += size
        slot[1] += 1
        self.painted += size

    def paint(self, pieces: Sequence[Piece], lo: int, hi: int, fallback: tuple[str, str]) -> None:
        """Paint ``[lo, hi)`` with ``pieces`` (sorted by start), first wins; the rest gets ``fallback``."""
        cursor = lo
        for p in pieces:
            s, e = max(p.start, cursor), min(p.end, hi)
            if e <= s:
                if p.end > lo and p.start < hi:
                    self.shadowed += 1
                continue
            if s > cursor:
                self.add(*fallback, s - cursor)
            self.add(p.label, p.kind, e - s)
            cursor = e
        if hi > cursor:
            self.add(*fallback, hi - cursor)

    def labels(self) -> list[Label]:
        return [Label(name, size, kind, count) for (name, kind), (size, count) in self.sizes.items()]


def sized_symbols(elf: ElfFile, table: str = "auto", backend: str = "auto") -> list[SizedSymbol]:
    """Defined, sized symbols that occupy file bytes, with file ranges and demangled names."""
    sections = elf.sections
    tls = next((p for p in elf.segments if p.type == PT_TLS), None)
    raw: list[tuple[Symbol, Section, int, int]] = []
    for sym in elf.symbols(table):
        if sym.size == 0 or sym.type in (STT_SECTION, STT_FILE) or sym.shndx >= SHN_LORESERVE:
            continue
        if sym.shndx >= len(sections):
            continue
        sec = sections[sym.shndx]
        if not sec.alloc or sec.file_size == 0:
            continue
        addr = sym.value + (tls.vaddr if sym.type == STT_TLS and tls is not None else 0)
        if not sec.addr <= addr < sec.addr + sec.size:
            continue
        start = sec.offset + (addr - sec.addr)
        raw.append((sym, sec, start, min(start + sym.size, sec.offset + sec.file_size)))
    names = demangle([r[0].name for r in raw], backend)
    return [SizedSymbol(s, sec, a, b, n) for (s, sec, a, b), n in zip(raw, names, strict=True)]


def _order(s: SizedSymbol) -> tuple[int, int, int, int, str]:
    return (s.start, -(s.end - s.start), s.sym.type != STT_FUNC, s.sym.bind == STB_LOCAL, s.name)


def attribute(
    elf: ElfFile,
    section_pieces: Callable[[Section], list[Piece]] | None,
    *,
    section_labels: bool = False,
) -> tuple[list[Label], int]:
    """Paint the whole file. ``section_pieces`` gives the fine ranges inside a section (sorted by start)."""
    painter = Painter()
    base: list[tuple[int, int, int, Section | str]] = [
        (0, elf.ehsize, 0, "[ELF header]"),
        (elf.phoff, elf.phoff + elf.phnum * elf.phentsize, 1, "[program headers]"),
        (elf.shoff, elf.shoff + elf.shnum * elf.shentsize, 1, "[section headers]"),
    ]
    for sec in elf.sections:
        if sec.type != SHT_NULL and sec.file_size:
            base.append((sec.offset, sec.offset + sec.file_size, 2, sec))
    base.sort(key=lambda b: (b[0], b[2], -b[1]))
    cursor = 0
    for start, end, _prio, item in base:
        s, e = max(start, cursor), min(end, elf.file_size)
        if e <= s:
            continue
        if s > cursor:
            painter.add("[padding]", "padding", s - cursor)
        if isinstance(item, str):
            painter.add(item, "header", e - s)
        elif section_labels or section_pieces is None:
            painter.add(item.name, "section", e - s)
        else:
            painter.paint(section_pieces(item), s, e, (f"[section {item.name}]", "section"))
        cursor = e
    if elf.file_size > cursor:
        painter.add("[padding]", "padding", elf.file_size - cursor)
    assert painter.painted == elf.file_size, (painter.painted, elf.file_size)
    return painter.labels(), painter.shadowed


def _pieces_by_section(items: list[Piece], sections: list[Section]) -> Callable[[Section], list[Piece]]:
    by_sec: dict[int, list[Piece]] = {}
    sections = [s for s in sections if s.file_size]
    starts = [s.offset for s in sections]
    order = sorted(range(len(sections)), key=lambda i: starts[i])
    sorted_starts = [starts[i] for i in order]
    for p in items:
        k = bisect.bisect_right(sorted_starts, p.start) - 1
        if k >= 0:
            by_sec.setdefault(sections[order[k]].index, []).append(p)
    for v in by_sec.values():
        v.sort(key=lambda p: p.start)  # stable: keeps the priority order of equal starts
    return lambda sec: by_sec.get(sec.index, [])


def _section_info(elf: ElfFile) -> list[SectionInfo]:
    return [
        SectionInfo(s.name, s.type, s.alloc, s.offset, s.size, s.file_size) for s in elf.sections if s.type != SHT_NULL
    ]


def _relative_cu_paths(paths: set[str]) -> dict[str, str]:
    """CU paths relative to the common root of the project's sources (system paths stay absolute)."""
    project = [p for p in paths if p.startswith("/") and not p.startswith("/usr/")]
    root = os.path.commonpath([os.path.dirname(p) for p in project]) if project else ""
    if root in ("", "/"):
        return {p: p for p in paths}
    return {p: (os.path.relpath(p, root) if p in project else p) for p in paths}


def _cu_pieces(elf: ElfFile, by: str, depth: int | None) -> list[Piece]:
    from ortprune.analyze.dwarf import cu_ranges

    ranges = cu_ranges(elf.path)
    rel = _relative_cu_paths({r.path for r in ranges})
    alloc = sorted((s for s in elf.sections if s.alloc and s.file_size), key=lambda s: s.addr)
    addrs = [s.addr for s in alloc]
    pieces: list[Piece] = []
    for r in ranges:
        name = rel[r.path]
        if by == "dir":
            parts = Path(name).parent.parts
            name = "/".join(parts[:depth] if depth else parts) or "."
            name += "/"
        k = bisect.bisect_right(addrs, r.lo) - 1
        while 0 <= k < len(alloc) and alloc[k].addr < r.hi:
            sec = alloc[k]
            lo, hi = max(r.lo, sec.addr), min(r.hi, sec.addr + sec.file_size)
            if hi > lo:
                off = sec.offset + (lo - sec.addr)
                pieces.append(Piece(off, off + (hi - lo), name, by))
            k += 1
    pieces.sort(key=lambda p: (p.start, -(p.end - p.start), p.label))
    return pieces


def analyze(
    path: str | Path,
    by: str = "section",
    *,
    with_footprint: bool = True,
    demangler: str = "auto",
    short: bool = False,
    depth: int | None = None,
) -> SizeReport:
    """Size report of one ELF file, attributed ``by`` section, symbol, op, file or dir."""
    if by not in BY:
        raise ValueError(f"by must be one of {BY}, got {by!r}")
    try:
        return _analyze(path, by, with_footprint, demangler, short, depth)
    except (OverflowError, struct.error) as e:  # offsets or sizes no linker writes
        raise ElfError(f"malformed ELF ({e})", path) from None


def _analyze(
    path: str | Path, by: str, with_footprint: bool, demangler: str, short: bool, depth: int | None
) -> SizeReport:
    with ElfFile(path) as elf:
        table = "symtab" if elf.has_symtab() else ("dynsym" if elf.has_dynsym() else "none")
        notes: list[str] = []
        if table != "symtab":
            notes.append(
                f"{elf.path.name} has no .symtab (stripped): "
                + ("only .dynsym's exported symbols are named; " if table == "dynsym" else "")
                + "per-symbol and per-op attribution need an unstripped build; section sizes are exact"
            )
        pieces_for: Callable[[Section], list[Piece]] | None = None
        if by in ("symbol", "op"):
            syms = sorted(sized_symbols(elf, "auto", demangler), key=_order)
            if by == "symbol":
                items = [Piece(s.start, s.end, short_name(s.name) if short else s.name, "symbol") for s in syms]
            else:
                from ortprune.analyze.ops import OpMapper

                mapper = OpMapper.from_names(s.name for s in syms)
                if not mapper.regs and table == "symtab":
                    notes.append("no kernel registrations (BuildKernelCreateInfo<...>) found: not an ORT build?")
                items = []
                for s in syms:
                    hit = mapper.map(s.name)
                    if hit is None:
                        items.append(Piece(s.start, s.end, f"[shared] {s.section.name}", "shared"))
                    else:
                        items.append(Piece(s.start, s.end, hit[0], "op"))
                notes.append(
                    "op rows: symbols of an op's kernel registrations and of classes named like the op in its "
                    "domain's namespace; '[shared] X' rows: named code/data no single op owns (MLAS, framework, "
                    "helpers); '[section X]': bytes without a symbol (strings, tables, unwind info, relocations)"
                )
            pieces_for = _pieces_by_section(items, elf.sections)
        elif by in ("file", "dir"):
            if not elf.has_debug_info():
                notes.append(
                    f"{elf.path.name} has no DWARF (.debug_info): per-file and per-dir attribution need a build "
                    "with -g; showing sections"
                )
            else:
                pieces_for = _pieces_by_section(_cu_pieces(elf, by, depth), elf.sections)
                notes.append(
                    "file/dir rows: code ranges of DWARF compile units (the .cc that was compiled, inline and "
                    "template code included); data and unwind sections stay under '[section X]'"
                )
        labels, shadowed = attribute(elf, pieces_for, section_labels=by == "section")
        if shadowed:
            notes.append(f"{shadowed} ranges share all their bytes with an earlier one (aliases, ICF): counted once")
        fp = None
        if with_footprint:
            from ortprune.analyze.footprint import footprint

            fp = footprint(elf)
        return SizeReport(
            path=str(elf.path),
            file_size=elf.file_size,
            by=by,
            labels=labels,
            sections=_section_info(elf),
            symbol_table=table,
            debug_info=elf.has_debug_info(),
            notes=notes,
            footprint=fp,
        )
