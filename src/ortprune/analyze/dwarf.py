"""Compile-unit address ranges from DWARF (pyelftools, opened only when ``.debug_info`` exists)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ortprune.errors import ElfError

_TOMBSTONES = (0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFE)


@dataclass(frozen=True)
class CuRange:
    lo: int
    hi: int
    path: str


def _cu_path(cu: Any) -> str:
    try:
        return str(cu.get_top_DIE().get_full_path())
    except Exception:  # a CU without DW_AT_name (rare; LTO partitions)
        return "<unnamed>"


def cu_ranges(path: str | Path) -> list[CuRange]:
    """Address ranges ``[lo, hi)`` of every compile unit, tombstoned (GC'd) ranges dropped.

    ``.debug_aranges`` first (GCC writes it); CUs it does not cover fall back to the CU DIE's
    ``DW_AT_low_pc``/``DW_AT_high_pc`` or ``DW_AT_ranges``, as bloaty does.
    """
    from elftools.common.exceptions import ELFError as PyElfError
    from elftools.elf.elffile import ELFFile

    out: list[CuRange] = []
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            if not elf.has_dwarf_info():
                return []
            info = elf.get_dwarf_info()
            names: dict[int, str] = {}
            covered: set[int] = set()
            aranges = info.get_aranges()
            if aranges is not None:
                for e in aranges.entries:
                    if e.length == 0 or e.begin_addr == 0 or e.begin_addr in _TOMBSTONES:
                        continue
                    if e.info_offset not in names:
                        names[e.info_offset] = _cu_path(info.get_CU_at(e.info_offset))
                    covered.add(e.info_offset)
                    out.append(CuRange(e.begin_addr, e.begin_addr + e.length, names[e.info_offset]))
            for cu in info.iter_CUs():
                if cu.cu_offset in covered:
                    continue
                out.extend(_die_ranges(info, cu))
    except (PyElfError, OSError, ValueError, KeyError) as e:
        raise ElfError(f"cannot read DWARF: {e}", path) from None
    return out


def _die_ranges(info: Any, cu: Any) -> list[CuRange]:
    top = cu.get_top_DIE()
    attrs = top.attributes
    name = _cu_path(cu)
    result: list[CuRange] = []
    if "DW_AT_ranges" in attrs:
        rl = info.range_lists()
        if rl is None:
            return []
        try:
            entries = rl.get_range_list_at_offset(attrs["DW_AT_ranges"].value, cu=cu)
        except TypeError:  # older pyelftools without the cu argument
            entries = rl.get_range_list_at_offset(attrs["DW_AT_ranges"].value)
        base = attrs["DW_AT_low_pc"].value if "DW_AT_low_pc" in attrs else 0
        for r in entries:
            if hasattr(r, "begin_offset"):
                lo, hi = r.begin_offset, r.end_offset
                if not getattr(r, "is_absolute", False):
                    lo, hi = lo + base, hi + base
            elif hasattr(r, "base_address"):
                base = r.base_address
                continue
            else:
                continue
            if hi > lo and lo != 0 and lo not in _TOMBSTONES:
                result.append(CuRange(lo, hi, name))
    elif "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
        lo = attrs["DW_AT_low_pc"].value
        high = attrs["DW_AT_high_pc"]
        hi = high.value if high.form == "DW_FORM_addr" else lo + high.value
        if hi > lo and lo != 0 and lo not in _TOMBSTONES:
            result.append(CuRange(lo, hi, name))
    return result
