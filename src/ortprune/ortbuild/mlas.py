"""``--prune mlas-isa=<ceiling>``: MLAS never dispatches to x86-64 kernels above a chosen ISA.

MLAS fills its kernel tables once, in ``MLAS_PLATFORM::MLAS_PLATFORM()`` (``onnxruntime/core/mlas/lib/platform.cpp``):
SSE2 kernels by default, then one ``if (<cpuid bits>) { ... }`` block per ISA that overwrites entries (AVX, AVX2/FMA3,
AVX-VNNI, AVX-512F/Core/VNNI, AVX-VNNI-INT8, AVX-NE-CONVERT, AMX). Only that constructor refers to the per-ISA
kernels and dispatch tables, so a generated copy without the blocks above the ceiling leaves them unreferenced and
``--gc-sections`` drops them (their objects are still compiled: ccache hits, only platform.cpp recompiles).

A ceiling, not a floor: a CPU with more than the ceiling runs the ceiling's kernels (correct, possibly slower); a
CPU with less still falls back to the SSE2/AVX kernels, which stay. Dropping those (a floor) is not offered: the
AVX kernels are still dispatched on AVX2 machines (pooling, softmax, M1 SGEMM), the SSE2 ones are the only
fallback, and the constructor has no error path to refuse a CPU below the floor (a dropped fallback would be an
illegal-instruction crash, not a message).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ortprune.errors import BuildError

PLATFORM_CPP = "onnxruntime/core/mlas/lib/platform.cpp"

#: The constructor's ISA blocks above AVX2, by their cpuid condition (whitespace removed), as ORT 1.21 has them.
ISA_BLOCKS: dict[str, str] = {
    "avx-vnni": "(Cpuid7_1[0]&0x10)!=0",
    "avx512": "((Cpuid7[1]&0x10000)!=0)&&((xcr0&0xE0)==0xE0)",  # AVX512F, with Core and VNNI nested inside
    "avx-vnni-int8": "(Cpuid7_1[3]&0x10)!=0",
    "avx-ne-convert": "(Cpuid7_1[3]&(0b1<<5))!=0",
    "amx": "(Cpuid7[3]&0b1<<24)!=0&&(Cpuid7[3]&0b1<<25)!=0&&(xcr0&XFEATURE_MASK_XTILE)==XFEATURE_MASK_XTILE",
}

#: ``mlas-isa=<ceiling>`` → the blocks it drops.
CEILINGS: dict[str, tuple[str, ...]] = {
    "avx2": ("avx-vnni", "avx512", "avx-vnni-int8", "avx-ne-convert", "amx"),
    "avx512": ("avx-vnni-int8", "avx-ne-convert", "amx"),
}

_MLAS_NAME = re.compile(r"\b(Mlas\w+)\b")


def mlas_ceiling(levers: Iterable[str]) -> str | None:
    """The ceiling of an ``mlas-isa=<ceiling>`` lever among ``levers``, or None."""
    for lv in levers:
        if lv.split("=")[0] == "mlas-isa":
            return lv.partition("=")[2]
    return None


def check_mlas_lever(levers: Iterable[str]) -> None:
    """BuildError unless the levers hold at most one ``mlas-isa=<known ceiling>``."""
    found = [lv for lv in levers if lv.split("=")[0] == "mlas-isa"]
    if len(found) > 1:
        raise BuildError(f"--prune takes one mlas-isa=..., got {', '.join(found)}")
    if found and found[0].partition("=")[2] not in CEILINGS:
        raise BuildError(f"--prune {found[0]}: the MLAS ISA ceiling must be one of {', '.join(CEILINGS)}")


def _close(text: str, i: int, open_c: str, close_c: str) -> int:
    """Index just after the bracket that closes the one at ``text[i]`` (skipping // and /* */ comments);
    hand-written because no C++ parser is a dependency here."""
    depth = 0
    while i < len(text):
        if text.startswith("//", i):
            i = text.find("\n", i)
            if i < 0:
                break
            continue
        if text.startswith("/*", i):
            i = text.find("*/", i) + 2
            if i < 2:
                break
            continue
        c = text[i]
        if c == open_c:
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {open_c}{close_c}")


@dataclass(frozen=True)
class Block:
    isa: str
    start: int  # at "if"
    end: int  # after the closing "}"


def isa_blocks(text: str) -> dict[str, Block]:
    """Where each of ``ISA_BLOCKS`` is in platform.cpp's text (each exactly once, or absent from the result)."""
    wanted = {cond: isa for isa, cond in ISA_BLOCKS.items()}
    found: dict[str, list[Block]] = {}
    for m in re.finditer(r"\bif\s*\(", text):
        open_paren = m.end() - 1
        try:
            close_paren = _close(text, open_paren, "(", ")")
        except ValueError:
            continue
        cond = re.sub(r"\s+", "", text[open_paren + 1 : close_paren - 1])
        isa = wanted.get(cond)
        brace = re.match(r"\s*\{", text[close_paren:])
        if isa is None or brace is None:
            continue
        end = _close(text, close_paren + brace.end() - 1, "{", "}")
        found.setdefault(isa, []).append(Block(isa, m.start(), end))
    return {isa: blocks[0] for isa, blocks in found.items() if len(blocks) == 1}


@dataclass
class MlasCut:
    """What ``mlas-isa`` removed from platform.cpp."""

    ceiling: str
    blocks: list[str] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)  # MLAS kernels/dispatch tables no longer referenced


def cut_platform(text: str, ceiling: str, path: str | Path = PLATFORM_CPP) -> tuple[str, MlasCut]:
    """platform.cpp's text without the ISA blocks above ``ceiling``; BuildError when one of them is not found
    exactly once (another MLAS version: the cut needs updating, never a silent half cut)."""
    if ceiling not in CEILINGS:
        raise BuildError(f"unknown MLAS ISA ceiling {ceiling!r}; choose one of {', '.join(CEILINGS)}")
    blocks = isa_blocks(text)
    missing = [isa for isa in CEILINGS[ceiling] if isa not in blocks]
    if missing:
        raise BuildError(
            f"MLAS's platform.cpp has no single {', '.join(missing)} dispatch block (cpuid condition "
            f"{', '.join(ISA_BLOCKS[i] for i in missing)}): mlas-isa does not fit this ORT source",
            path,
        )
    cut = MlasCut(ceiling)
    drop = sorted((blocks[isa] for isa in CEILINGS[ceiling]), key=lambda b: b.start)
    out, pos, removed = [], 0, []
    for b in drop:
        body = text[b.start : b.end]
        if len(re.findall(r"^\s*#\s*if", body, re.M)) != len(re.findall(r"^\s*#\s*endif", body, re.M)):
            raise BuildError(f"the {b.isa} block of platform.cpp spans a preprocessor conditional", path)
        out += [text[pos : b.start], f"/* ortprune: mlas-isa={ceiling} drops the {b.isa} block */"]
        pos = b.end
        removed.append(body)
        cut.blocks.append(b.isa)
    out.append(text[pos:])
    new_text = "".join(out)
    still = set(_MLAS_NAME.findall(new_text))
    cut.symbols = sorted({n for body in removed for n in _MLAS_NAME.findall(body)} - still)
    return new_text, cut


def absolute_includes(text: str, orig_dir: Path) -> str:
    """A generated copy lives elsewhere: its ``#include "x"`` of files beside the original point at them."""

    def one(m: re.Match[str]) -> str:
        target = orig_dir / m[2]
        return f'{m[1]}"{target.as_posix()}"' if target.is_file() else m[0]

    return re.sub(r'^(\s*#\s*include\s*)"([^"]+)"', one, text, flags=re.M)


def read_source(source: Path, relpath: str) -> tuple[Path, str]:
    """A file of the ORT source tree ``source`` and its text; BuildError when it is not there."""
    path = source / relpath
    try:
        return path, path.read_text()
    except OSError:
        raise BuildError(f"not an ONNX Runtime source tree (no {relpath})", path) from None


def dropped_symbols(source: Path, ceiling: str) -> list[str]:
    """The MLAS kernels and dispatch tables ``mlas-isa=<ceiling>`` leaves unreferenced in ``source``."""
    path, text = read_source(source, PLATFORM_CPP)
    return cut_platform(text, ceiling, path)[1].symbols


# ---- sgemm-packed-k ------------------------------------------------------------------------------------------
SGEMM_CPP = "onnxruntime/core/mlas/lib/sgemm.cpp"
#: ``--prune sgemm-packed-k``: MLAS's SGEMM on run-time B (not pre-packed) walks K in the 256-wide slices of
#: the pre-packed path, so int8 weights dequantized at run time (a keep-quantized ``.ort``) multiply in the
#: same order, and round at the same points, as the folded fp32 weights ORT pre-packs in the ``.onnx``.
SGEMM_LEVER = "sgemm-packed-k"

_SGEMM_EDITS = {
    # MlasSgemmOperation's strides: for A not transposed, the packed path's K slice, with N halved so the
    # B panel (MLAS_SGEMM_STRIDEN * MLAS_SGEMM_STRIDEK floats on the stack) keeps its size; no rebalancing.
    "strides": (
        re.compile(r"size_t StrideN = MLAS_SGEMM_STRIDEN;\s*size_t StrideK = MLAS_SGEMM_STRIDEK;\s*if \(N >= K\) \{"),
        "size_t StrideN = MLAS_SGEMM_STRIDEN;\n    size_t StrideK = MLAS_SGEMM_STRIDEK;\n\n"
        "    if (TransA == CblasNoTrans) {  // ortprune sgemm-packed-k: the pre-packed path's K slices\n"
        "        StrideN = MLAS_SGEMM_STRIDEN * MLAS_SGEMM_STRIDEK / MLAS_SGEMM_PACKED_STRIDEK;\n"
        "        StrideK = MLAS_SGEMM_PACKED_STRIDEK;\n"
        "    } else if (N >= K) {",
    ),
    # the one-row shortcuts multiply all of K at once, which the pre-packed path never does
    "m1": (
        re.compile(r"if \(M == 1 && TransA == CblasNoTrans && alpha == 1\.0f"),
        "if (false /* ortprune sgemm-packed-k */ && M == 1 && TransA == CblasNoTrans && alpha == 1.0f",
    ),
    "n1": (
        re.compile(r"if \(N == 1 && ldb == 1 && ldc == 1 && alpha == 1\.0f"),
        "if (false /* ortprune sgemm-packed-k */ && N == 1 && ldb == 1 && ldc == 1 && alpha == 1.0f",
    ),
}


def packed_k_sgemm(text: str, path: str | Path = SGEMM_CPP) -> str:
    """sgemm.cpp's text with ``sgemm-packed-k``'s three edits; BuildError when one of the places is not found
    exactly once (another MLAS version: the edit needs updating, never a silent half edit)."""
    for name, (pattern, new) in _SGEMM_EDITS.items():
        hits = pattern.findall(text)
        if len(hits) != 1:
            raise BuildError(
                f"MLAS's sgemm.cpp has {len(hits)} places for the {name!r} edit of sgemm-packed-k (expected 1): "
                "the lever does not fit this ORT source",
                path,
            )
        text = pattern.sub(new.replace("\\", "\\\\"), text)
    return text
