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

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ortprune.analyze.attribute import SizedSymbol, sized_symbols
from ortprune.analyze.decode import EM_X86_64, eh_frame_sizes, reloc_refs
from ortprune.analyze.graph import RefGraph, build_graph, flood, node_at, reach
from ortprune.analyze.ops import KernelReg, OpMapper, parse_kernel_reg
from ortprune.elf import SHF_EXECINSTR, ElfFile
from ortprune.errors import ElfError, OrtpruneError
from ortprune.opconfig import OpConfig
from ortprune.ortbuild.added_ops import ORT_ADDED_OPS
from ortprune.results.estimate import Estimate, OpCost, OpCosts

if TYPE_CHECKING:
    from ortprune.ortbuild.variants import BuildSpec

__all__ = ["Estimate", "OpCost", "OpCosts", "PruneLevers", "estimate", "estimate_levers", "op_costs"]


@dataclass(frozen=True)
class PruneLevers:
    """Levers below ORT's switches, estimated on top of the config's kernel reduction (``ortbuild.prune``
    and stock build.py flags). Each is modelled as the references it removes from the full build's graph."""

    schemas: bool = False  # registrations of schemas the config's ops do not resolve to
    drop_transformers: frozenset[str] = frozenset()  # C++ classes never constructed (ortbuild.prune)
    disable_rtti: bool = False  # vtables stop pointing at typeinfo
    disable_ml_ops: bool = False  # ai.onnx.ml schemas and onnxruntime::ml code
    disable_types: frozenset[str] = frozenset()  # --disable_types: code named after the type goes
    mlas_ceiling: str | None = None  # mlas-isa=<ceiling> (ortbuild.mlas)
    mlas_dropped: frozenset[str] = frozenset()  # the MLAS kernels/tables MLAS_PLATFORM's constructor stops naming
    #: Ops whose schemas the schemas lever keeps registered but whose kernels the config does not keep
    #: (``ortbuild.prune.transient_ops``: the build adds them to the schema list only, never to the kernel config).
    schema_ops: tuple[tuple[str, str, int], ...] = ()

    def describe(self) -> str:
        parts = ["schemas"] if self.schemas else []
        if self.drop_transformers:
            parts.append(f"optimizers (-{len(self.drop_transformers)} transformer classes)")
        if self.mlas_ceiling:
            parts.append(f"mlas-isa={self.mlas_ceiling}")
        parts += [
            f for f, on in (("--disable_rtti", self.disable_rtti), ("--disable_ml_ops", self.disable_ml_ops)) if on
        ]
        if self.disable_types:
            parts.append(f"--disable_types={','.join(sorted(self.disable_types))}")
        return ", ".join(parts) or "none"


#: What ``--disable_types`` compiles out (``DISABLE_FLOAT8_TYPES`` etc.), by the names ORT gives that code.
_TYPE_SYMBOLS = {
    "float8": re.compile(r"Float8E\dM\d"),
    "sparsetensor": re.compile(r"SparseTensor"),
    "optional": re.compile(r"Optional(?:Type|GetElement|HasElement)"),
}

#: What ``--disable_ml_ops`` (``DISABLE_ML_OPS``) compiles out, by name: the ai.onnx.ml kernels, the ML opset
#: registration ORT's environment stops calling, and the map types of ``data_types.cc``,
#: ``onnxruntime_typeinfo.cc`` and the C API (``#if !defined(DISABLE_ML_OPS)`` blocks).
_ML_SYMBOLS = re.compile(
    r"onnxruntime::ml::|onnx::OpSet_OnnxML_ver\d+::|RegisterOnnxMLOperatorSetSchema|MapType<"
    r"|(?:NonTensorType|IsContainerOfType|OrtValue::Get)<std::(?:vector<)?std::map<|SequenceType<std::vector<std::map<"
    r"|Ort(?:Create|Get)ValueImpl\w*Map|OrtMapTypeInfo::FromTypeProto|IsMapCompatible|MapTypeHelper"
    r"|CopyMutableMapValue|IsCompatible\(onnx::TypeProto_Map"
)

#: ``ONNX_OPERATOR_SET_SCHEMA_CLASS_NAME(Tag, ver, Op)`` is the class ``Op_Tag_ver<ver>``.
_SCHEMA_FN = re.compile(r"GetOpSchema<(?:[\w:]+::)?(\w+?)_(Onnx|OnnxML|Microsoft)_ver(\d+)>\(\)")
#: The registration lists the schemas lever cuts (ORT's deprecated and NHWC lists stay whole).
_REGISTERS_SCHEMAS = re.compile(r"\b(?:onnx::OpSet_Onnx_ver|onnx::OpSet_OnnxML_ver|contrib::OpSet_Microsoft_ver)\d+::")


_CONSTRUCTED = re.compile(r"^(?:vtable for (?:\w+::)*\w+$|(?:\w+::)*(\w+)::\1\()")


def _shrink(g: RefGraph, kind: np.ndarray, lost: np.ndarray) -> int:
    """Bytes the code that keeps running loses with the cut references: each function that made ``kind``
    references (edge mask) shrinks by its size times the share of them that is ``lost`` (one call sequence
    per cut source line)."""
    src = g.edges[0]
    total = np.bincount(src[kind], minlength=len(g.names))
    gone = np.bincount(src[lost], minlength=len(g.names))
    has = (total > 0) & (gone > 0)
    return int((g.file_sizes[has] * gone[has] / total[has]).sum())


def _lever_cut(
    g: RefGraph, config: OpConfig, added_ops: tuple[tuple[str, str, int], ...], levers: PruneLevers
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
                    schema_of[i] = (m[2], int(m[3]), m[1])
        if levers.schemas:
            keep = resolve_schemas(schema_of.values(), wanted_schemas(config, added_ops + levers.schema_ops))
        else:  # --disable_ml_ops alone: every ai.onnx.ml schema goes
            keep = {sid for sid in schema_of.values() if sid[0] != "OnnxML"}
        dropped = np.zeros(len(g.names), dtype=bool)
        dropped[[i for i, sid in schema_of.items() if sid not in keep]] = True
        registers = np.array([bool(_REGISTERS_SCHEMAS.search(n)) for n in first], dtype=bool)
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
    if levers.mlas_dropped:
        ctor = np.array([n.startswith("MLAS_PLATFORM::MLAS_PLATFORM(") for n in first], dtype=bool)
        pat = re.compile(r"^(?:" + "|".join(sorted(levers.mlas_dropped)) + r")(?:\(|<|$)")
        kernel = np.array([bool(pat.match(n)) for n in first], dtype=bool)
        lost = ctor[src] & kernel[dst]
        cut |= lost
        shrink += _shrink(g, ctor[src], lost)
        notes.append(
            f"mlas-isa={levers.mlas_ceiling}: MLAS_PLATFORM's constructor stops referencing "
            f"{int(kernel.sum())} of the {len(levers.mlas_dropped)} kernels and dispatch tables the cut leaves "
            "unreferenced (the others have no sized symbol of their own, e.g. a second entry point inside an "
            "assembly kernel's section, which the linker keeps while the section is used)"
            + ("" if ctor.any() else "; NO MLAS_PLATFORM constructor found in this library: nothing is cut")
        )
    if levers.disable_rtti:
        ti = np.array([n.startswith(("typeinfo for ", "typeinfo name for ")) for n in first], dtype=bool)
        throws = g.calls("__cxa_throw")
        cut |= ti[dst] & ~ti[src] & ~throws[src]
        notes.append(
            "--disable_rtti: under -fno-rtti only a throw needs typeinfo, so every reference to typeinfo is cut "
            f"except from the {int(throws.sum())} functions that call __cxa_throw (vtable slots, std::function "
            "and shared_ptr type queries, typeid); typeinfo a catch clause names is not in the reference graph"
        )
    if levers.disable_ml_ops:
        ml = np.array([bool(_ML_SYMBOLS.search(n)) for n in first], dtype=bool)
        cut |= ml[dst]
        notes.append(
            "--disable_ml_ops: ai.onnx.ml schemas, their opset registration, every onnxruntime::ml:: symbol and "
            f"the map types are cut ({int(ml.sum())} symbols)"
        )
    for t in sorted(levers.disable_types):
        named = np.array([bool(_TYPE_SYMBOLS[t].search(n)) for n in first], dtype=bool)
        cut |= named[dst]
        notes.append(
            f"--disable_types {t}: every symbol named after the type is cut ({int(named.sum())}); the branches "
            "inside shared functions (type switches, Cast's dispatch) that go with it are not modelled"
        )
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
    config.require_ops(config_name)
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
        g = build_graph(elf, syms)
        deleted = np.array([_dropped(node, removed_regs) for node in g.names], dtype=bool)
        before = reach(g, np.zeros_like(deleted))
        cut, shrink, lever_notes = _lever_cut(g, config, added_ops, levers)
        after = reach(g, deleted, cut)
        gone = before & ~after
        named = np.array([bool(n) for n in g.names], dtype=bool)
        removed: dict[str, int] = {
            "code and data (symbols)": int(g.file_sizes[gone & named].sum()),
            "anonymous data (strings, tables)": int(g.file_sizes[gone & ~named].sum()),
        }
        gone_idx = np.flatnonzero(gone)
        fde = eh_frame_sizes(elf)
        removed[".eh_frame + .eh_frame_hdr"] = sum(fde.get(int(g.starts[i]), 0) for i in gone_idx)
        _, _, rela = reloc_refs(elf)
        if rela:
            where = np.array([w for w, _ in rela], np.int64)
            at = node_at(g.starts, g.ends, where)
            removed[".rela.dyn"] = int(24 * np.count_nonzero((at >= 0) & gone[np.maximum(at, 0)]))
        kept_slots = int(np.count_nonzero(cut & g.rela & after[g.edges[0]]))
        if kept_slots:  # a pointer the levers cut out of data that stays (a vtable's typeinfo slot)
            removed[".rela.dyn of cut pointers in kept data"] = 24 * kept_slots
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
        if levers.mlas_dropped:
            unsized = sorted({s.name for s in elf.symbols("symtab") if s.name in levers.mlas_dropped and not s.size})
            if unsized:
                notes.append(
                    f"mlas-isa: {len(unsized)} of the kernels it drops are assembly entry points without a symbol size "
                    f"({', '.join(unsized[:4])}, ...): the reference graph cannot see their code, so their bytes are "
                    "NOT counted as removed (the prediction for this lever errs towards too big)"
                )
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
        g = build_graph(elf, syms)
        mapper = OpMapper.from_names(s.name for s in syms)
        if not mapper.regs:
            raise OrtpruneError("no kernel registrations (BuildKernelCreateInfo<...>) found: not an ORT build", full)
        reg_op: list[str | None] = []
        for node in g.names:
            regs = [parse_kernel_reg(s.name) if _is_registration(s.name) else None for s in node]
            keys = {r.key for r in regs if r is not None}
            reg_op.append(keys.pop() if node and all(regs) and len(keys) == 1 else None)
        is_reg = np.array([k is not None for k in reg_op], dtype=bool)
        core = reach(g, is_reg)
        adjacency = g.adjacency()
        ops = sorted({k for k in reg_op if k is not None})
        op_index = {k: i for i, k in enumerate(ops)}
        shared = len(ops)
        owner = np.full(len(g.starts), -1, dtype=np.int64)
        for start in np.flatnonzero(is_reg).tolist():
            me = op_index[reg_op[start]]  # type: ignore[index]

            def enter(i: int, me: int = me) -> bool:
                o = int(owner[i])
                if core[i] or o in (me, shared):
                    return False
                owner[i] = me if o < 0 else shared
                return True

            flood(adjacency, [start], enter)
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


#: Build options whose effect cannot be read off the full (gcc -Os) build's reference graph: they change
#: every function's code, not which code is referenced.
UNPREDICTABLE_FLAGS = ("--enable_lto",)


def check_predictable(toolchain: str, extra_flags: tuple[str, ...]) -> None:
    """OrtpruneError when the build asked about has a lever the estimate cannot predict (it never guesses)."""
    from ortprune.catalog import DEFAULT_TOOLCHAIN

    why = [f for f in extra_flags if f in UNPREDICTABLE_FLAGS]
    if toolchain != DEFAULT_TOOLCHAIN:
        why.insert(0, f"--toolchain {toolchain}")
    if why:
        raise OrtpruneError(
            f"estimate cannot predict {' and '.join(why)}: another compiler, optimization level or link-time "
            "optimization changes the code of every function, and the estimate only removes what the full "
            f"{DEFAULT_TOOLCHAIN} build's reference graph stops reaching. Estimate without "
            f"{' and '.join(why)} (the {DEFAULT_TOOLCHAIN} build of the same levers) and measure the toolchain "
            "by building it"
        )


def estimate_levers(spec: BuildSpec, source: Path) -> PruneLevers:
    """What ``ortprune estimate`` models for a build spec: its prune levers and the stock flags it sets."""
    from ortprune.catalog import variant
    from ortprune.ortbuild.mlas import dropped_symbols, mlas_ceiling
    from ortprune.ortbuild.prune import classes_to_drop, transformer_names, transient_ops
    from ortprune.ortbuild.variants import disabled_types

    flags = (*variant(spec.variant).flags, *spec.extra_flags)
    check_predictable(spec.toolchain_name, tuple(flags))
    drop = classes_to_drop(transformer_names(source), spec.keep_transformers) if "optimizers" in spec.prune else set()
    ceiling = mlas_ceiling(spec.prune)
    schemas = "schemas" in spec.prune
    return PruneLevers(
        schemas=schemas,
        schema_ops=transient_ops(source, spec.prune, spec.keep_transformers) if schemas else (),
        drop_transformers=frozenset(drop),
        disable_rtti="--disable_rtti" in flags,
        disable_ml_ops="--disable_ml_ops" in flags,
        disable_types=frozenset(disabled_types(flags)),
        mlas_ceiling=ceiling,
        mlas_dropped=frozenset(dropped_symbols(source, ceiling)) if ceiling else frozenset(),
    )
