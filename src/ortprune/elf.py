"""A small, exact ELF reader built on ``struct``: headers, sections, segments, symbols, dynamic entries.

pyelftools parses each record through ``construct`` and is too slow for the symbol tables of an
unstripped ORT (hundreds of thousands of entries); this reader unpacks whole tables with
``struct.iter_unpack`` and keeps the exact file byte ranges a size tool needs. DWARF is left to
pyelftools (see :mod:`ortprune.analyze.dwarf`), which is only opened when ``.debug_info`` exists.

The bottom layer's ELF reader: the build stage (DT_NEEDED checks), analyze and the runtime loader use it.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ortprune.errors import ElfError

SHT_NULL, SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA = 0, 1, 2, 3, 4
SHT_DYNAMIC, SHT_NOBITS, SHT_REL, SHT_DYNSYM, SHT_SYMTAB_SHNDX, SHT_RELR = 6, 8, 9, 11, 18, 19
SHF_ALLOC, SHF_EXECINSTR, SHF_TLS = 0x2, 0x4, 0x400
SHN_UNDEF, SHN_LORESERVE, SHN_ABS, SHN_COMMON, SHN_XINDEX = 0, 0xFF00, 0xFFF1, 0xFFF2, 0xFFFF
STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE, STT_TLS = 1, 2, 3, 4, 6
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
PT_LOAD, PT_DYNAMIC, PT_NOTE, PT_TLS = 1, 2, 4, 7
NT_GNU_BUILD_ID = 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 14, 15, 29

_ELF_MAGIC = b"\x7fELF"

#: The C and C++ runtime every Linux system provides; a user never ships these.
_SYSTEM = re.compile(
    r"^(libc|libm|libmvec|libstdc\+\+|libgcc_s|libpthread|libdl|librt|libutil|libresolv|ld-linux[-\w.]*|ld64)\.so(\.|$)"
    r"|^ld-linux"
)


def is_system_library(name: str) -> bool:
    """Part of the C/C++ runtime every Linux system has (libc, libm, libstdc++, libgcc_s, the loader...)."""
    return bool(_SYSTEM.match(Path(name).name))


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int

    @property
    def alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def file_size(self) -> int:
        """Bytes the section occupies in the file (0 for NOBITS such as .bss)."""
        return 0 if self.type in (SHT_NOBITS, SHT_NULL) else self.size


@dataclass(frozen=True)
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int
    index: int = 0  #: position in its table: a stable tie-breaker


class ElfFile:
    """An ELF file mapped read-only. Raises :class:`ElfError` (naming the file) for anything malformed."""

    def __init__(self, path: str | Path, sections: bool = True) -> None:
        """``sections=False``: the section header table is neither checked nor read (a loader needs only
        the program headers; the runtime's pre-dlopen check)."""
        from ortprune._io import input_problem

        self.path = Path(path)
        self._with_sections = sections
        problem = input_problem(self.path)  # checked before opening: a FIFO would block, a device never end
        if problem is not None:
            raise ElfError(problem, self.path)
        try:
            with open(self.path, "rb") as f:
                self.file_size = f.seek(0, 2)
                if self.file_size == 0:
                    raise ElfError("not an ELF file (empty)", self.path)
                try:
                    self._map: mmap.mmap | None = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                except OSError:  # a file system without mmap: read it instead
                    self._map = None
                    f.seek(0)
                    self._bytes = f.read()
        except FileNotFoundError:
            raise ElfError("file does not exist", self.path) from None
        except IsADirectoryError:
            raise ElfError("is a directory, not an ELF file", self.path) from None
        except PermissionError:
            raise ElfError("cannot read the file (permission denied)", self.path) from None
        self.data: bytes | mmap.mmap = self._map if self._map is not None else self._bytes
        self._parse_header()

    # ---- header ---------------------------------------------------------------------------------
    def _parse_header(self) -> None:
        d = self.data
        if self.file_size < 16 or d[:4] != _ELF_MAGIC:
            raise ElfError("not an ELF file (bad magic)", self.path)
        ei_class, ei_data = d[4], d[5]
        if ei_class not in (1, 2) or ei_data not in (1, 2):
            raise ElfError(f"unsupported ELF class/encoding ({ei_class}, {ei_data})", self.path)
        self.is64 = ei_class == 2
        self.endian = "<" if ei_data == 1 else ">"
        fmt = self.endian + ("HHIQQQIHHHHHH" if self.is64 else "HHIIIIIHHHHHH")
        hsize = 16 + struct.calcsize(fmt)
        if self.file_size < hsize:
            raise ElfError(f"truncated ELF header ({self.file_size} bytes)", self.path)
        (
            self.e_type,
            self.machine,
            _,
            _,
            self.phoff,
            self.shoff,
            _,
            self.ehsize,
            self.phentsize,
            self.phnum,
            self.shentsize,
            shnum,
            shstrndx,
        ) = struct.unpack_from(fmt, d, 16)
        self.shnum, self.shstrndx = shnum, shstrndx
        self._check_range(self.phoff, self.phnum * self.phentsize, "program header table")
        if not self._with_sections:
            self.shoff = self.shnum = 0
            return
        if self.shoff and (shnum == 0 or shstrndx == SHN_XINDEX):
            # More sections than fit in 16 bits: the real counts live in section 0.
            first = self._raw_section_headers(1)[0]
            self.shnum = shnum or first[5]
            if shstrndx == SHN_XINDEX:
                self.shstrndx = first[6]
        self._check_range(self.shoff, self.shnum * self.shentsize, "section header table")

    def _check_range(self, off: int, size: int, what: str) -> None:
        if off + size > self.file_size:
            raise ElfError(
                f"truncated ELF: {what} ends at byte {off + size} but the file has {self.file_size} bytes", self.path
            )

    def _raw_section_headers(self, count: int) -> list[tuple[int, ...]]:
        fmt = self.endian + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII")
        size = struct.calcsize(fmt)
        self._check_range(self.shoff, count * size, "section header table")
        return list(struct.iter_unpack(fmt, self.data[self.shoff : self.shoff + count * size]))

    # ---- tables ---------------------------------------------------------------------------------
    @cached_property
    def sections(self) -> list[Section]:
        if not self.shoff:
            return []
        raw = self._raw_section_headers(self.shnum)
        names = raw[self.shstrndx] if self.shstrndx < len(raw) else None
        result = []
        for i, (name, typ, flags, addr, off, size, link, info, _align, entsize) in enumerate(raw):
            if typ not in (SHT_NOBITS, SHT_NULL) and off + size > self.file_size:
                raise ElfError(
                    f"truncated ELF: section {i} ends at byte {off + size} but the file has {self.file_size} bytes",
                    self.path,
                )
            label = self._cstr(names[4] + name) if names is not None else f"#{i}"
            result.append(Section(i, label, typ, flags, addr, off, size, link, info, entsize))
        return result

    @cached_property
    def segments(self) -> list[Segment]:
        fmt = self.endian + ("IIQQQQQQ" if self.is64 else "IIIIIIII")
        out = []
        for i in range(self.phnum):
            vals = struct.unpack_from(fmt, self.data, self.phoff + i * self.phentsize)
            if self.is64:
                typ, flags, off, vaddr, _pa, filesz, memsz, _al = vals
            else:
                typ, off, vaddr, _pa, filesz, memsz, flags, _al = vals
            out.append(Segment(typ, flags, off, vaddr, filesz, memsz))
        return out

    @cached_property
    def build_id(self) -> str | None:
        """The linker's ``NT_GNU_BUILD_ID`` (hex), read from the PT_NOTE segments (a stripped file keeps
        it), or None when the file has none."""
        for seg in self.segments:
            if seg.type != PT_NOTE:
                continue
            off, end = seg.offset, seg.offset + seg.filesz
            self._check_range(seg.offset, seg.filesz, "a PT_NOTE segment")
            while off + 12 <= end:
                namesz, descsz, typ = struct.unpack_from(self.endian + "III", self.data, off)
                name_at = off + 12
                desc_at = name_at + (namesz + 3) // 4 * 4
                if desc_at + descsz > end:
                    break
                if typ == NT_GNU_BUILD_ID and bytes(self.data[name_at : name_at + namesz]) == b"GNU\0":
                    return bytes(self.data[desc_at : desc_at + descsz]).hex()
                off = desc_at + (descsz + 3) // 4 * 4
        return None

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def section_bytes(self, s: Section) -> bytes:
        return bytes(self.data[s.offset : s.offset + s.file_size])

    def _cstr(self, off: int) -> str:
        if not 0 <= off < self.file_size:
            raise ElfError(f"string offset {off} lies outside the file", self.path)
        end = self.data.find(b"\0", off)
        if end < 0:
            raise ElfError(f"unterminated string at byte {off}", self.path)
        return bytes(self.data[off:end]).decode("utf-8", "replace")

    def has_symtab(self) -> bool:
        return any(s.type == SHT_SYMTAB for s in self.sections)

    def has_dynsym(self) -> bool:
        return any(s.type == SHT_DYNSYM for s in self.sections)

    def has_debug_info(self) -> bool:
        return self.section(".debug_info") is not None

    def symbols(self, table: str = "auto") -> list[Symbol]:
        """Defined symbols of ``.symtab`` (``table='symtab'``), ``.dynsym`` or whichever exists."""
        kinds = {"symtab": (SHT_SYMTAB,), "dynsym": (SHT_DYNSYM,), "auto": (SHT_SYMTAB, SHT_DYNSYM)}[table]
        for kind in kinds:
            sec = next((s for s in self.sections if s.type == kind), None)
            if sec is not None:
                return list(self._iter_symbols(sec))
        return []

    def undefined_symbols(self) -> dict[int, str]:
        """``.dynsym`` index → name of each symbol the library imports (undefined, named)."""
        sec = next((s for s in self.sections if s.type == SHT_DYNSYM), None)
        return {} if sec is None else {s.index: s.name for s in self._iter_symbols(sec, undefined=True) if s.name}

    def _iter_symbols(self, sec: Section, undefined: bool = False) -> Iterator[Symbol]:
        """The defined symbols of ``sec`` (or, with ``undefined``, only the undefined ones)."""
        if sec.link >= len(self.sections):
            raise ElfError(f"symbol table {sec.name} links to missing section {sec.link}", self.path)
        strtab = self.sections[sec.link]
        strings = self.data[strtab.offset : strtab.offset + strtab.size]
        xindex: tuple[int, ...] | None = None
        for s in self.sections:
            if s.type == SHT_SYMTAB_SHNDX and s.link == sec.index:
                xindex = struct.unpack(f"{self.endian}{s.size // 4}I", self.section_bytes(s))
        fmt = self.endian + ("IBBHQQ" if self.is64 else "IIIBBH")
        blob = self.section_bytes(sec)
        usable = len(blob) - len(blob) % struct.calcsize(fmt)
        for i, vals in enumerate(struct.iter_unpack(fmt, blob[:usable])):
            if self.is64:
                name, info, _other, shndx, value, size = vals
            else:
                name, value, size, info, _other, shndx = vals
            if (shndx == SHN_UNDEF) != undefined:
                continue
            if shndx == SHN_XINDEX and xindex is not None:
                shndx = xindex[i]
            end = strings.find(b"\0", name)
            label = bytes(strings[name : end if end >= 0 else len(strings)]).decode("utf-8", "replace")
            yield Symbol(label, value, size, info & 0xF, info >> 4, shndx, i)

    # ---- dynamic section ------------------------------------------------------------------------
    @cached_property
    def dynamic(self) -> list[tuple[int, int]]:
        sec = next((s for s in self.sections if s.type == SHT_DYNAMIC), None)
        if sec is not None:
            off, size = sec.offset, sec.size
        else:
            seg = next((p for p in self.segments if p.type == PT_DYNAMIC), None)
            if seg is None:
                return []
            off, size = seg.offset, seg.filesz
        self._check_range(off, size, "dynamic section")
        fmt = self.endian + ("qQ" if self.is64 else "iI")
        entries = []
        for tag, val in struct.iter_unpack(fmt, self.data[off : off + size - size % struct.calcsize(fmt)]):
            if tag == DT_NULL:
                break
            entries.append((tag, val))
        return entries

    def _dynstr(self, value: int) -> str:
        strtab_addr = next((v for t, v in self.dynamic if t == DT_STRTAB), None)
        if strtab_addr is None:
            raise ElfError("dynamic section has no DT_STRTAB", self.path)
        off = self.addr_to_offset(strtab_addr)
        if off is None:
            raise ElfError("DT_STRTAB points outside the file", self.path)
        return self._cstr(off + value)

    @cached_property
    def needed(self) -> list[str]:
        return [self._dynstr(v) for t, v in self.dynamic if t == DT_NEEDED]

    @cached_property
    def soname(self) -> str | None:
        return next((self._dynstr(v) for t, v in self.dynamic if t == DT_SONAME), None)

    @cached_property
    def rpath(self) -> list[str]:
        return [p for t, v in self.dynamic if t == DT_RPATH for p in self._dynstr(v).split(":") if p]

    @cached_property
    def runpath(self) -> list[str]:
        return [p for t, v in self.dynamic if t == DT_RUNPATH for p in self._dynstr(v).split(":") if p]

    def addr_to_offset(self, addr: int) -> int | None:
        for p in self.segments:
            if p.type == PT_LOAD and p.vaddr <= addr < p.vaddr + p.filesz:
                return p.offset + (addr - p.vaddr)
        return None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
