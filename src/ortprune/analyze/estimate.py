"""Predict the size of a reduced build (``--include_ops_by_config``) from a full build with symbols.

How, step by step (each step is an approximation, named in the result's notes):

1. **Which registrations go.** Every ``BuildKernelCreateInfo<kCpuExecutionProvider_Op_kDomain_verA[_B][_T]>``
   symbol is one kernel registration. ORT's ``reduce_op_kernels.py`` keeps a registration when a config lists
   the op at an opset inside ``[A, B]`` (B open when absent); the others are commented out of the source.
2. **What only they reach.** A reference graph over the library's sized symbols (aliases merged into one
   node): edges from x86-64 code (``call``/``jmp``/``jcc`` rel32 to a symbol start, RIP-relative operands to
   a symbol start or into a data object) and from dynamic relocations (vtables, function tables). Roots are
   the exported symbols and everything referenced from bytes that no symbol owns (init arrays, GOT, PLT).
   The estimate removes what the full graph reaches but the graph without the dropped registrations does
   not — so code the scanner cannot see is never counted as removed.
3. **Bytes that go with them.** Their ``.eh_frame`` FDEs and ``.eh_frame_hdr`` entries (exact, from the
   table), their dynamic relocations (exact), their ``.symtab``/``.strtab`` entries (exact), anonymous data
   (string literals, jump tables: data-section bytes without a symbol, cut at each referenced address) that
   only removed code references, ``.gcc_except_table`` (scaled by the code removed), and each dropped
   registration's table slot and relocation. Page-alignment changes are not estimated.

The test of the estimate is the real reduced build: ``ortprune size diff FULL REDUCED``.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ortprune._io import atomic_write_text
from ortprune.analyze.attribute import SizedSymbol, sized_symbols
from ortprune.analyze.ops import KernelReg, OpMapper, parse_kernel_reg
from ortprune.elf import SHF_EXECINSTR, SHT_RELA, SHT_RELR, STT_FUNC, STT_OBJECT, ElfFile
from ortprune.errors import ElfError, OrtpruneError
from ortprune.opconfig import OpConfig
from ortprune.ortbuild.added_ops import ORT_ADDED_OPS

if TYPE_CHECKING:
    from ortprune.ortbuild.variants import BuildSpec

R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT, R_X86_64_RELATIVE = 1, 6, 7, 8
EM_X86_64 = 62


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
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")


@dataclass
class _Graph:
    starts: np.ndarray  # node start addresses (sorted, unique)
    ends: np.ndarray
    file_sizes: np.ndarray
    is_data: np.ndarray
    names: list[list[SizedSymbol]]
    edges: tuple[np.ndarray, np.ndarray]
    roots: np.ndarray  # bool per node


def _nodes(syms: list[SizedSymbol]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[list[SizedSymbol]]]:
    by_start: dict[int, list[SizedSymbol]] = {}
    for s in syms:
        by_start.setdefault(s.addr, []).append(s)
    keys = sorted(by_start)
    starts = np.array(keys, dtype=np.int64)
    ends = np.array([k + max(s.end - s.start for s in by_start[k]) for k in keys], dtype=np.int64)
    fsz = np.array([max(s.end - s.start for s in by_start[k]) for k in keys], dtype=np.int64)
    # Data objects, and the cold parts of split functions (``foo.cold``), are entered anywhere, not only
    # at their start: references inside them count.
    data = np.array(
        [
            all(s.sym.type == STT_OBJECT or ".cold" in s.sym.name or ".warm" in s.sym.name for s in by_start[k])
            for k in keys
        ],
        dtype=bool,
    )
    return starts, ends, fsz, data, [by_start[k] for k in keys]


def _owner(starts: np.ndarray, ends: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """Node containing each address, or -1."""
    i = np.searchsorted(starts, addrs, side="right") - 1
    ok = (i >= 0) & (addrs < ends[np.maximum(i, 0)])
    return np.where(ok, i, -1)


def _target(starts: np.ndarray, ends: np.ndarray, is_data: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """Node a reference lands on: exactly a node start, or anywhere inside a data object; else -1."""
    j = np.searchsorted(starts, addrs, side="left")
    jc = np.minimum(j, len(starts) - 1)
    exact = (j < len(starts)) & (starts[jc] == addrs)
    inside = _owner(starts, ends, addrs)
    into_data = (inside >= 0) & is_data[np.maximum(inside, 0)]
    return np.where(exact, jc, np.where(into_data, inside, -1))


def _code_refs(elf: ElfFile) -> tuple[np.ndarray, np.ndarray]:
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


def _relr_offsets(blob: bytes, endian: str) -> list[int]:
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


def _reloc_refs(elf: ElfFile) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """(where, target) of dynamic relocations that point into the library, and (r_offset, 24) per RELA entry."""
    dynsym = {s.index: s.value for s in elf.symbols("dynsym")}
    where, target = [], []
    entries: list[tuple[int, int]] = []
    for sec in elf.sections:
        if sec.type == SHT_RELR and sec.alloc:
            for off in _relr_offsets(elf.section_bytes(sec), elf.endian):
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


def _indirections(elf: ElfFile, where: np.ndarray, target: np.ndarray) -> dict[int, int]:
    """GOT slot → what the loader puts there, and PLT stub → the same: so a call through the PLT (or a
    load through the GOT) is an edge to the function itself, not a root."""
    got = [s for s in elf.sections if s.name in (".got", ".got.plt")]
    table: dict[int, int] = {}
    for w, t in zip(where.tolist(), target.tolist(), strict=True):
        if any(s.addr <= w < s.addr + s.size for s in got):
            table[w] = t
    for sec in elf.sections:
        if sec.name not in (".plt", ".plt.sec", ".plt.got") or not sec.file_size:
            continue
        b = elf.section_bytes(sec)
        for entry in range(0, len(b) - 15, 16):
            k = b.find(b"\xff\x25", entry, entry + 16)
            if k < 0:
                continue
            (disp,) = struct.unpack_from("<i", b, k + 2)
            slot = sec.addr + k + 6 + disp
            if slot in table:
                table[sec.addr + entry] = table[slot]
    return table


_DATA_PREFIXES = (".rodata", ".data.rel.ro", ".data", ".lrodata", ".ldata")


def _anonymous_chunks(
    elf: ElfFile, starts: np.ndarray, ends: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pieces of data sections that no symbol covers but code or relocations point at (string literals,
    jump tables, constant pools): each runs from a referenced address to the next reference or symbol."""
    out_lo, out_hi = [], []
    sym_bounds = np.concatenate([starts, ends])
    for sec in elf.sections:
        if not (sec.alloc and sec.file_size and not sec.flags & SHF_EXECINSTR and sec.name.startswith(_DATA_PREFIXES)):
            continue
        lo, hi = sec.addr, sec.addr + sec.file_size
        t = targets[(targets >= lo) & (targets < hi)]
        t = np.unique(t[_owner(starts, ends, t) < 0])
        if not len(t):
            continue
        bounds = np.unique(np.concatenate([t, sym_bounds[(sym_bounds > lo) & (sym_bounds <= hi)], [hi]]))
        nxt = bounds[np.searchsorted(bounds, t, side="right")]
        out_lo.append(t)
        out_hi.append(nxt)
    if not out_lo:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_lo), np.concatenate(out_hi)


def _build_graph(elf: ElfFile, syms: list[SizedSymbol]) -> _Graph:
    starts, ends, fsz, is_data, names = _nodes(syms)
    rel_where, rel_to, _ = _reloc_refs(elf)
    indirect = _indirections(elf, rel_where, rel_to)
    code_where, code_to = _code_refs(elf)
    if indirect:
        keys = np.array(sorted(indirect), dtype=np.int64)
        vals = np.array([indirect[k] for k in keys.tolist()], dtype=np.int64)
        j = np.minimum(np.searchsorted(keys, code_to), len(keys) - 1)
        code_to = np.where(keys[j] == code_to, vals[j], code_to)
        in_got = np.isin(rel_where, keys)
        rel_where, rel_to = rel_where[~in_got], rel_to[~in_got]
    # Anonymous data becomes nodes too, so a string only a removed kernel uses goes with it.
    chunk_lo, chunk_hi = _anonymous_chunks(elf, starts, ends, np.concatenate([code_to, rel_to]))
    if len(chunk_lo):
        order = np.argsort(np.concatenate([starts, chunk_lo]), kind="stable")
        starts = np.concatenate([starts, chunk_lo])[order]
        ends = np.concatenate([ends, chunk_hi])[order]
        fsz = np.concatenate([fsz, chunk_hi - chunk_lo])[order]
        is_data = np.concatenate([is_data, np.ones(len(chunk_lo), dtype=bool)])[order]
        all_names: list[list[SizedSymbol]] = names + [[] for _ in range(len(chunk_lo))]
        names = [all_names[i] for i in order.tolist()]
    roots = np.zeros(len(starts), dtype=bool)
    exported = {s.value for s in elf.symbols("dynsym") if s.size and s.type in (STT_FUNC, STT_OBJECT)}
    roots[np.isin(starts, np.array(sorted(exported), dtype=np.int64))] = True
    src_parts, dst_parts = [], []
    for where, to in ((code_where, code_to), (rel_where, rel_to)):
        if not len(where):
            continue
        src = _owner(starts, ends, where)
        dst = _target(starts, ends, is_data, to)
        keep = dst >= 0
        src, dst = src[keep], dst[keep]
        roots[dst[src < 0]] = True  # referenced from bytes no symbol owns: init arrays, anonymous tables, crt code
        inner = src >= 0
        src_parts.append(src[inner])
        dst_parts.append(dst[inner])
    src_all = np.concatenate(src_parts) if src_parts else np.zeros(0, np.int64)
    dst_all = np.concatenate(dst_parts) if dst_parts else np.zeros(0, np.int64)
    return _Graph(starts, ends, fsz, is_data, names, (src_all, dst_all), roots)


def _reach(g: _Graph, deleted: np.ndarray, cut: np.ndarray | None = None) -> np.ndarray:
    """Nodes the roots reach when the registration tables no longer point at ``deleted`` nodes and the
    edges marked in ``cut`` (a mask over ``g.edges``: references a source transform removes) are gone.

    Only references *from data* (the tables) into a deleted node are cut: code that jumps into it (a
    kept registration folded onto a dropped one by identical-code folding) still reaches it.
    """
    n = len(g.starts)
    src, dst = g.edges
    keep = ~(deleted[dst] & g.is_data[src])
    if cut is not None:
        keep &= ~cut
    src, dst = src[keep], dst[keep]
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    offsets = np.searchsorted(src, np.arange(n + 1))
    seen = np.zeros(n, dtype=bool)
    stack = [int(i) for i in np.flatnonzero(g.roots & ~deleted)]
    seen[stack] = True
    while stack:
        i = stack.pop()
        for j in dst[offsets[i] : offsets[i + 1]]:
            if not seen[j]:
                seen[j] = True
                stack.append(int(j))
    return seen


def _eh_frame_sizes(elf: ElfFile) -> dict[int, int]:
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


@dataclass(frozen=True)
class PruneLevers:
    """Levers below ORT's switches, estimated on top of the config's kernel reduction (``ortbuild.prune``
    and stock build.py flags). Each is modelled as the references it removes from the full build's graph."""

    schemas: bool = False  # registrations of schemas the config's ops do not resolve to
    drop_transformers: frozenset[str] = frozenset()  # C++ classes never constructed (ortbuild.prune)
    disable_rtti: bool = False  # vtables stop pointing at typeinfo
    disable_ml_ops: bool = False  # ai.onnx.ml schemas and onnxruntime::ml code

    def describe(self) -> str:
        parts = ["schemas"] if self.schemas else []
        if self.drop_transformers:
            parts.append(f"optimizers (-{len(self.drop_transformers)} transformer classes)")
        parts += [
            f for f, on in (("--disable_rtti", self.disable_rtti), ("--disable_ml_ops", self.disable_ml_ops)) if on
        ]
        return ", ".join(parts) or "none"


_SCHEMA_FN = re.compile(r"GetOpSchema<(?:[\w:]+::)?(Onnx|OnnxML|Microsoft)_ver(\d+)_(\w+)>\(\)")
_REGISTERS_SCHEMAS = (
    "ForEachSchema",
    "RegisterOpSetSchema",
    "RegisterOnnxOperatorSetSchema",
    "RegisterOnnxMLOperatorSetSchema",
    "Environment::Initialize",
)


_CONSTRUCTED = re.compile(r"^(?:vtable for (?:\w+::)*\w+$|(?:\w+::)*(\w+)::\1\()")


def _shrink(g: _Graph, kind: np.ndarray, lost: np.ndarray) -> int:
    """Bytes the code that keeps running loses with the cut references: each function that made ``kind``
    references (edge mask) shrinks by its size times the share of them that is ``lost`` (one call sequence
    per cut source line)."""
    src = g.edges[0]
    total = np.bincount(src[kind], minlength=len(g.names))
    gone = np.bincount(src[lost], minlength=len(g.names))
    has = (total > 0) & (gone > 0)
    return int((g.file_sizes[has] * gone[has] / total[has]).sum())


def _lever_cut(
    g: _Graph, config: OpConfig, added_ops: tuple[tuple[str, str, int], ...], levers: PruneLevers
) -> tuple[np.ndarray, int, list[str]]:
    """The edges the levers remove (mask over ``g.edges``), the bytes the registration functions that lose
    calls shrink by, and a note per lever."""
    from ortprune.schemas import resolve_schemas, wanted_schemas

    src, dst = g.edges
    first = [n[0].name if n else "" for n in g.names]
    cut = np.zeros(len(src), dtype=bool)
    shrink = 0
    notes = []
    if levers.schemas or levers.disable_ml_ops:
        schema_of: dict[int, tuple[str, int, str]] = {}
        for i, node in enumerate(g.names):
            for s in node:
                m = _SCHEMA_FN.search(s.name)
                if m:
                    schema_of[i] = (m[1], int(m[2]), m[3])
        if levers.schemas:
            keep = resolve_schemas(schema_of.values(), wanted_schemas(config, added_ops))
        else:  # --disable_ml_ops alone: every ai.onnx.ml schema goes
            keep = {sid for sid in schema_of.values() if sid[0] != "OnnxML"}
        dropped = np.zeros(len(g.names), dtype=bool)
        dropped[[i for i, sid in schema_of.items() if sid not in keep]] = True
        registers = np.array([any(k in n for k in _REGISTERS_SCHEMAS) for n in first], dtype=bool)
        calls = registers[src] & np.isin(dst, np.array(sorted(schema_of), dtype=np.int64))
        cut |= dropped[dst] & registers[src]
        shrink += _shrink(g, calls, calls & cut)
        notes.append(
            f"schemas: {int(dropped.sum())} of {len(schema_of)} GetOpSchema<...> functions lose their registration "
            "call (only calls from the opset registration code are cut; direct uses such as ORT's NHWC schemas stay)"
        )
    if levers.drop_transformers:
        pat = re.compile(
            r"^(?:vtable for |)onnxruntime::(?:\w+::)*(" + "|".join(sorted(levers.drop_transformers)) + r")(?:::\1\(|$)"
        )
        gone = np.array([bool(pat.match(n)) for n in first], dtype=bool)
        cut |= gone[dst]
        constructs = np.array([bool(_CONSTRUCTED.match(n)) for n in first], dtype=bool)
        code = np.array([bool(n) and bool(n[0].section.flags & SHF_EXECINSTR) for n in g.names], dtype=bool)
        shrink += _shrink(g, code[src] & constructs[dst], code[src] & gone[dst])
        notes.append(
            f"optimizers: every reference to the vtables and constructors of {len(levers.drop_transformers)} "
            f"transformer classes is cut ({int(gone.sum())} symbols)"
        )
    if levers.disable_rtti:
        vt = np.array([n.startswith("vtable for ") for n in first], dtype=bool)
        ti = np.array([n.startswith("typeinfo for ") for n in first], dtype=bool)
        cut |= vt[src] & ti[dst]
        notes.append(
            "--disable_rtti: vtables no longer point at typeinfo; typeinfo that exception handling or code still "
            "uses stays (dynamic_cast/typeid rewrites ORT makes under -fno-rtti are not modelled)"
        )
    if levers.disable_ml_ops:
        ml = np.array(["onnxruntime::ml::" in n for n in first], dtype=bool)
        cut |= ml[dst]
        notes.append("--disable_ml_ops: ai.onnx.ml schemas and every onnxruntime::ml:: symbol are cut")
    return cut, shrink, notes


def _is_registration(name: str) -> bool:
    """``BuildKernelCreateInfo<...>()`` itself: what a registration table points at (not its lambdas)."""
    return "BuildKernelCreateInfo<" in name and "{lambda" not in name and ")::" not in name


def _dropped(node: list[SizedSymbol], removed: set[KernelReg]) -> bool:
    """A registration function whose every name belongs to a dropped registration."""
    if not node or not all(_is_registration(s.name) for s in node):
        return False
    regs = [parse_kernel_reg(s.name) for s in node]
    return all(r is not None and r in removed for r in regs)


def estimate(
    full: str | Path,
    config: OpConfig,
    config_name: str = "<config>",
    added_ops: tuple[tuple[str, str, int], ...] = ORT_ADDED_OPS,
    levers: PruneLevers | None = None,
) -> Estimate:
    """Estimate the file size of the build of ``full``'s sources with ``--include_ops_by_config config``.

    ``added_ops`` are the ops ORT's build adds to every config (``ORT_ADDED_OPS``; ``()`` for none);
    ``levers`` the pruning levers on top (``PruneLevers``).
    """
    try:
        return _estimate(full, config, config_name, added_ops, levers or PruneLevers())
    except (OverflowError, struct.error) as e:  # addresses or sizes no linker writes
        raise ElfError(f"malformed ELF ({e})", full) from None


def _check_full_build(elf: ElfFile, full: str | Path, what: str) -> None:
    """Estimates read x86-64 code references and need the full build's symbol table."""
    if elf.machine != EM_X86_64 or not elf.is64:
        raise OrtpruneError(f"{what} needs x86-64 code; this library is for another machine", full)
    if not elf.has_symtab():
        raise OrtpruneError(f"{what} needs a full build with symbols (.symtab); this library is stripped", full)


def _estimate(
    full: str | Path,
    config: OpConfig,
    config_name: str,
    added_ops: tuple[tuple[str, str, int], ...],
    levers: PruneLevers,
) -> Estimate:
    with ElfFile(full) as elf:
        _check_full_build(elf, full, "estimate")
        syms = sized_symbols(elf, "symtab")
        mapper = OpMapper.from_names(s.name for s in syms)
        regs: dict[KernelReg, None] = {}
        for s in syms:
            r = parse_kernel_reg(s.name)
            if r is not None:
                regs[r] = None
        if not regs:
            raise OrtpruneError("no kernel registrations (BuildKernelCreateInfo<...>) found: not an ORT build", full)
        opsets: dict[tuple[str, str], list[int]] = {}
        for i in config:
            opsets.setdefault((i.domain, i.op), []).append(i.opset)
        for domain, op, opset in added_ops:
            opsets.setdefault((domain, op), []).append(opset)
        removed_regs = {r for r in regs if not r.kept_by(opsets.get((r.domain, r.op), []))}
        g = _build_graph(elf, syms)
        deleted = np.array([_dropped(node, removed_regs) for node in g.names], dtype=bool)
        before = _reach(g, np.zeros_like(deleted))
        cut, shrink, lever_notes = _lever_cut(g, config, added_ops, levers)
        after = _reach(g, deleted, cut)
        gone = before & ~after
        named = np.array([bool(n) for n in g.names], dtype=bool)
        removed: dict[str, int] = {
            "code and data (symbols)": int(g.file_sizes[gone & named].sum()),
            "anonymous data (strings, tables)": int(g.file_sizes[gone & ~named].sum()),
        }
        gone_idx = np.flatnonzero(gone)
        fde = _eh_frame_sizes(elf)
        removed[".eh_frame + .eh_frame_hdr"] = sum(fde.get(int(g.starts[i]), 0) for i in gone_idx)
        _, _, rela = _reloc_refs(elf)
        if rela:
            where = np.array([w for w, _ in rela], np.int64)
            owner = _owner(g.starts, g.ends, where)
            removed[".rela.dyn"] = int(24 * np.count_nonzero((owner >= 0) & gone[np.maximum(owner, 0)]))
        gone_syms = [s for i in gone_idx for s in g.names[i]]
        if elf.has_symtab():
            removed[".symtab + .strtab"] = sum(24 + len(s.sym.name) + 1 for s in gone_syms)
        text = sum(s.file_size for s in elf.sections if s.alloc and s.flags & SHF_EXECINSTR)
        is_code = np.array([bool(n) and bool(n[0].section.flags & SHF_EXECINSTR) for n in g.names], dtype=bool)
        code_gone = int(g.file_sizes[gone & is_code].sum())
        except_table = elf.section(".gcc_except_table")
        if except_table is not None and text:
            removed[".gcc_except_table (scaled)"] = int(except_table.file_size * code_gone / text)
        removed["registration table slots"] = 32 * len(removed_regs)
        if shrink:
            removed["registration/construction code of cut lines (scaled)"] = shrink
        total_bytes = int(g.file_sizes[named].sum())
        reach_frac = float(g.file_sizes[before & named].sum() / total_bytes) if total_bytes else 0.0
        per_op: dict[str, set[KernelReg]] = {}
        for r in regs:
            per_op.setdefault(r.key, set()).add(r)
        ops_removed = sorted(k for k, rs in per_op.items() if rs <= removed_regs)
        ops_kept = sorted(k for k in per_op if k not in ops_removed)
        by_name: dict[str, int] = {}
        for node in gone_idx.tolist():
            hit = mapper.map(g.names[node][0].name) if g.names[node] else None
            if hit is not None:
                key = hit[0]
            elif g.names[node]:
                key = "[shared, reached only by removed kernels]"
            else:
                key = "[anonymous data, reached only by removed kernels]"
            by_name[key] = by_name.get(key, 0) + int(g.file_sizes[node])
        top = sorted(by_name.items(), key=lambda kv: -kv[1])[:40]
        notes = [
            f"{len(removed_regs)} of {len(regs)} kernel registrations removed by the opset rule "
            "(kept when a listed opset lies in [since, until])"
            + (
                f"; {len(added_ops)} op versions ORT's build adds to every config (layout transformation) kept too"
                if added_ops
                else ""
            ),
            f"the reference graph reaches {100 * reach_frac:.1f}% of the symbol bytes of the full build; "
            "bytes it cannot reach are never counted as removed (so the estimate errs towards too big)",
            "anonymous data (strings, jump tables) referenced only by removed code is counted as removed; ld keeps "
            "a source file's merged strings while any of them is used, so that part is an upper bound",
            "not estimated: page-alignment padding, per-type reduction (--enable_reduced_operator_type_support)",
        ]
        notes += lever_notes
        missing = [
            str(i) for i in config if not any(r.kept_by([i.opset]) for r in per_op.get(f"{i.domain};{i.op}", ()))
        ]
        if missing:
            notes.append(f"config ops for which no kernel of this library is kept: {', '.join(missing)}")
        est_size = elf.file_size - sum(removed.values())
        return Estimate(
            full=str(elf.path),
            config=config_name,
            levers=levers.describe(),
            full_size=elf.file_size,
            estimated_size=est_size,
            removed=removed,
            kernels_total=len(regs),
            kernels_removed=len(removed_regs),
            ops_removed=ops_removed,
            ops_kept=ops_kept,
            reachable_fraction=round(reach_frac, 4),
            top_removed=top,
            notes=notes,
        )


def estimate_markdown(e: Estimate) -> str:
    lines = [
        f"Estimate for `{Path(e.full).name}` with `{e.config}`"
        + (f", levers: {e.levers}" if e.levers != "none" else "")
        + ":",
        "",
        "| Part removed | Bytes |",
        "|---|---:|",
        *[f"| {k} | {v:,} |" for k, v in e.removed.items()],
        f"| **total removed** | **{e.removed_total:,}** |",
        "",
        "| Build | Size (bytes) | Size (MiB) | vs Full |",
        "|-------|-------------|------------|---------|",
        f"| full | {e.full_size:,} | {e.full_size / 2**20:.2f} | baseline |",
        f"| reduced (estimated) | {e.estimated_size:,} | {e.estimated_size / 2**20:.2f} | "
        f"{100 * (e.estimated_size - e.full_size) / e.full_size:+.1f}% |",
        "",
        f"Kernels: {e.kernels_removed} of {e.kernels_total} registrations removed; "
        f"{len(e.ops_kept)} ops keep a kernel, {len(e.ops_removed)} lose all.",
        "",
        "| Removed, by op | Bytes |",
        "|---|---:|",
        *[f"| `{k}` | {v:,} |" for k, v in e.top_removed],
        "",
        *[f"> {n}" for n in e.notes],
    ]
    return "\n".join(lines) + "\n"


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


def op_costs(full: str | Path) -> OpCosts:
    """For each op, the bytes that go when only that op's kernel registrations go.

    One pass: ``core`` is what the roots reach with every registration deleted; then each op's
    registrations flood the rest, and a node reached by two ops becomes ``kernel_shared`` (and so,
    transitively, everything below it).
    """
    try:
        return _op_costs(full)
    except (OverflowError, struct.error) as e:
        raise ElfError(f"malformed ELF ({e})", full) from None


def _op_costs(full: str | Path) -> OpCosts:
    with ElfFile(full) as elf:
        _check_full_build(elf, full, "the per-op cost table")
        syms = sized_symbols(elf, "symtab")
        g = _build_graph(elf, syms)
        mapper = OpMapper.from_names(s.name for s in syms)
        if not mapper.regs:
            raise OrtpruneError("no kernel registrations (BuildKernelCreateInfo<...>) found: not an ORT build", full)
        reg_op: list[str | None] = []
        for node in g.names:
            regs = [parse_kernel_reg(s.name) if _is_registration(s.name) else None for s in node]
            keys = {r.key for r in regs if r is not None}
            reg_op.append(keys.pop() if node and all(regs) and len(keys) == 1 else None)
        is_reg = np.array([k is not None for k in reg_op], dtype=bool)
        core = _reach(g, is_reg)
        src, dst = g.edges
        order = np.argsort(src, kind="stable")
        src, dst = src[order], dst[order]
        offsets = np.searchsorted(src, np.arange(len(g.starts) + 1))
        ops = sorted({k for k in reg_op if k is not None})
        op_index = {k: i for i, k in enumerate(ops)}
        shared = len(ops)
        owner = np.full(len(g.starts), -1, dtype=np.int64)
        for start in np.flatnonzero(is_reg).tolist():
            me = op_index[reg_op[start]]  # type: ignore[index]
            stack = [start]
            while stack:
                i = stack.pop()
                o = int(owner[i])
                if core[i] or o in (me, shared):
                    continue
                owner[i] = me if o < 0 else shared
                stack.extend(dst[offsets[i] : offsets[i + 1]].tolist())
        named = np.array([bool(n) for n in g.names], dtype=bool)
        by_named: dict[str, int] = {}
        for i, node in enumerate(g.names):
            hit = mapper.map(node[0].name) if node else None
            if hit is not None:
                by_named[hit[0]] = by_named.get(hit[0], 0) + int(g.file_sizes[i])
        counts: dict[str, int] = {}
        for r in mapper.regs:
            counts[r.key] = counts.get(r.key, 0) + 1
        exclusive = np.bincount(owner[owner >= 0], weights=g.file_sizes[owner >= 0], minlength=shared + 1)
        result = [OpCost(k, counts.get(k, 0), int(exclusive[i]), by_named.get(k, 0)) for k, i in op_index.items()]
        result.sort(key=lambda c: (-c.exclusive, c.op))
        reached = core | (owner >= 0)
        all_bytes = int(g.file_sizes.sum())
        return OpCosts(
            full=str(elf.path),
            file_size=elf.file_size,
            ops=result,
            core=int(g.file_sizes[core].sum()),
            kernel_shared=int(exclusive[shared]),
            unreached=all_bytes - int(g.file_sizes[reached].sum()),
            notes=[
                "bytes are code and data of symbols and of anonymous data pieces (not unwind tables, "
                "relocations or symbol-table entries, which follow the code they describe)",
                f"{int(named.sum())} named nodes; 'exclusive' is what dropping only that op removes; "
                "'kernel_shared' goes only when every op reaching it goes",
            ],
        )


def op_costs_markdown(c: OpCosts, top: int = 0) -> str:
    rows = c.ops[:top] if top else c.ops
    total_excl = sum(o.exclusive for o in c.ops)
    lines = [
        f"Per-op cost in `{Path(c.full).name}` ({c.file_size:,} bytes):",
        "",
        "| Operator | Kernels | Exclusive bytes (removable alone) | Named bytes (`size --by op`) |",
        "|---|---:|---:|---:|",
        *[f"| `{o.op}` | {o.registrations} | {o.exclusive:,} | {o.named:,} |" for o in rows],
        f"| **all ops, exclusive** | {sum(o.registrations for o in c.ops)} | **{total_excl:,}** | |",
        f"| shared by several ops' kernels only | | {c.kernel_shared:,} | |",
        f"| core (reached without any kernel) | | {c.core:,} | |",
        f"| not reached by the reference graph | | {c.unreached:,} | |",
        "",
        *[f"> {n}" for n in c.notes],
    ]
    return "\n".join(lines) + "\n"


def estimate_levers(spec: BuildSpec, source: Path) -> PruneLevers:
    """What ``ortprune estimate`` models for a build spec: its prune levers and the stock flags it sets."""
    from ortprune.catalog import variant
    from ortprune.ortbuild.prune import classes_to_drop, transformer_names

    flags = (*variant(spec.variant).flags, *spec.extra_flags)
    drop = classes_to_drop(transformer_names(source), spec.keep_transformers) if "optimizers" in spec.prune else set()
    return PruneLevers(
        schemas="schemas" in spec.prune,
        drop_transformers=frozenset(drop),
        disable_rtti="--disable_rtti" in flags,
        disable_ml_ops="--disable_ml_ops" in flags,
    )
