"""Decode what x86-64 ELF code and tables say about references: rel32 branches and RIP-relative operands,
dynamic relocations (RELA and packed RELR), GOT/PLT indirections, and ``.eh_frame`` FDE sizes.

Hand-written on numpy and ``struct``: pyelftools has no x86 decoder and reads relocations one record at a
time, too slow for the hundreds of thousands in a full ORT build.
"""

from __future__ import annotations

import struct

import numpy as np

from ortprune.elf import SHF_EXECINSTR, SHT_RELA, SHT_RELR, ElfFile

R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT, R_X86_64_RELATIVE = 1, 6, 7, 8
EM_X86_64 = 62


def code_refs(elf: ElfFile) -> tuple[np.ndarray, np.ndarray]:
    """(source address, target address) of rel32 branches and RIP-relative operands in executable sections."""
    srcs, tgts = [], []
    for sec in elf.sections:
        if not (sec.alloc and sec.flags & SHF_EXECINSTR and sec.file_size >= 8):
            continue
        b = np.frombuffer(elf.data, dtype=np.uint8, count=sec.file_size, offset=sec.offset)
        chunk = 1 << 22
        for lo in range(2, len(b) - 3, chunk):
            p = np.arange(lo, min(lo + chunk, len(b) - 3), dtype=np.int64)
            prev, prev2 = b[p - 1], b[p - 2]
            mask = (
                (prev == 0xE8) | (prev == 0xE9) | ((prev & 0xC7) == 0x05) | ((prev2 == 0x0F) & ((prev & 0xF0) == 0x80))
            )
            p = p[mask]
            disp = (
                b[p].astype(np.int64)
                | (b[p + 1].astype(np.int64) << 8)
                | (b[p + 2].astype(np.int64) << 16)
                | (b[p + 3].astype(np.int64) << 24)
            )
            disp = np.where(disp >= 1 << 31, disp - (1 << 32), disp)
            srcs.append(sec.addr + p)
            tgts.append(sec.addr + p + 4 + disp)
    if not srcs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(srcs), np.concatenate(tgts)


def relr_offsets(blob: bytes, endian: str) -> list[int]:
    """Addresses a packed-relative (DT_RELR) table relocates; the addend is the word already there."""
    out: list[int] = []
    base = 0
    for (entry,) in struct.iter_unpack(endian + "Q", blob[: len(blob) - len(blob) % 8]):
        if entry & 1 == 0:
            out.append(entry)
            base = entry + 8
        else:
            bits = entry >> 1
            for i in range(63):
                if bits >> i & 1:
                    out.append(base + 8 * i)
            base += 8 * 63
    return out


def reloc_refs(elf: ElfFile) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """(where, target) of dynamic relocations that point into the library, and (r_offset, 24) per RELA entry."""
    dynsym = {s.index: s.value for s in elf.symbols("dynsym")}
    where, target = [], []
    entries: list[tuple[int, int]] = []
    for sec in elf.sections:
        if sec.type == SHT_RELR and sec.alloc:
            for off in relr_offsets(elf.section_bytes(sec), elf.endian):
                pos = elf.addr_to_offset(off)
                if pos is not None:
                    where.append(off)
                    target.append(struct.unpack_from(elf.endian + "Q", elf.data, pos)[0])
            continue
        if sec.type != SHT_RELA or not sec.alloc:
            continue
        blob = elf.section_bytes(sec)
        for off, info, addend in struct.iter_unpack(elf.endian + "QQq", blob[: len(blob) - len(blob) % 24]):
            typ, sym = info & 0xFFFFFFFF, info >> 32
            entries.append((off, 24))
            if typ == R_X86_64_RELATIVE:
                where.append(off)
                target.append(addend)
            elif typ in (R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT) and sym in dynsym:
                where.append(off)
                target.append(dynsym[sym] + (addend if typ == R_X86_64_64 else 0))
    return np.array(where, np.int64), np.array(target, np.int64), entries


def indirections(elf: ElfFile, where: np.ndarray, target: np.ndarray) -> dict[int, int]:
    """GOT slot → what the loader puts there, and PLT stub → the same: so a call through the PLT (or a
    load through the GOT) is an edge to the function itself, not a root."""
    got = [s for s in elf.sections if s.name in (".got", ".got.plt")]
    table: dict[int, int] = {}
    for w, t in zip(where.tolist(), target.tolist(), strict=True):
        if any(s.addr <= w < s.addr + s.size for s in got):
            table[w] = t
    for stub, slot in plt_stubs(elf).items():
        if slot in table:
            table[stub] = table[slot]
    return table


def plt_stubs(elf: ElfFile) -> dict[int, int]:
    """PLT stub address → the GOT slot its ``jmp *slot(%rip)`` goes through."""
    stubs: dict[int, int] = {}
    for sec in elf.sections:
        if sec.name not in (".plt", ".plt.sec", ".plt.got") or not sec.file_size:
            continue
        b = elf.section_bytes(sec)
        for entry in range(0, len(b) - 15, 16):
            k = b.find(b"\xff\x25", entry, entry + 16)
            if k < 0:
                continue
            (disp,) = struct.unpack_from("<i", b, k + 2)
            stubs[sec.addr + entry] = sec.addr + k + 6 + disp
    return stubs


def imported_functions(elf: ElfFile) -> dict[int, str]:
    """Address → name of each function the library imports, by both ways code reaches one: its PLT stub
    (``call foo@plt``) and its GOT slot (``call *foo@GOTPCREL(%rip)``)."""
    undefined = elf.undefined_symbols()
    slots: dict[int, str] = {}
    for sec in elf.sections:
        if sec.type != SHT_RELA or not sec.alloc:
            continue
        blob = elf.section_bytes(sec)
        for off, info, _ in struct.iter_unpack(elf.endian + "QQq", blob[: len(blob) - len(blob) % 24]):
            if info & 0xFFFFFFFF in (R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT) and info >> 32 in undefined:
                slots[off] = undefined[info >> 32]
    out = dict(slots)
    for stub, slot in plt_stubs(elf).items():
        if slot in slots:
            out[stub] = slots[slot]
    return out


def eh_frame_sizes(elf: ElfFile) -> dict[int, int]:
    """Function start address → bytes of its FDE (from the .eh_frame_hdr search table)."""
    hdr = elf.section(".eh_frame_hdr")
    if hdr is None or hdr.file_size < 12:
        return {}
    b = elf.section_bytes(hdr)
    version, ptr_enc, count_enc, table_enc = b[0], b[1], b[2], b[3]
    if version != 1 or ptr_enc != 0x1B or count_enc != 0x03 or table_enc != 0x3B:
        return {}
    (count,) = struct.unpack_from(elf.endian + "I", b, 8)
    table = np.frombuffer(b, dtype=np.dtype(elf.endian + "i4"), count=2 * count, offset=12).reshape(-1, 2)
    result = {}
    for loc, fde in table.astype(np.int64):
        off = elf.addr_to_offset(hdr.addr + int(fde))
        if off is None or off + 4 > elf.file_size:
            continue
        (length,) = struct.unpack_from(elf.endian + "I", elf.data, off)
        result[hdr.addr + int(loc)] = length + 4 + 8  # the FDE and its 8-byte search-table entry
    return result
