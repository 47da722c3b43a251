"""Below ORT's own switches: source transforms applied in a build tree, never to the cached source.

Like ORT's ``reduce_op_kernels.py`` (which writes ``op_reduction.generated/``), every transform writes into
the build directory of one build:

* ``schemas``: onnx's ``_deps/onnx-src/onnx/defs/operator_sets.h`` (extracted per build dir) keeps only the
  ``fn(GetOpSchema<…>())`` lines of the schema versions the config's ops resolve to at their opsets, plus
  those of the ops ORT's layout transformer may insert; ``operator_sets_ml.h`` keeps nothing when no
  ``ai.onnx.ml`` op is used; ORT's contrib ``ms_opset.h`` likewise (a generated copy that a generated copy of
  ``environment.cc`` includes). A schema that is never registered is never referenced, so ``--gc-sections``
  drops it with its inference and function-body code.
* ``optimizers``: a generated copy of ``graph_transformer_utils.cc`` constructs only the graph transformers
  and rewrite rules the models need at load (``used_transformers`` finds them on the full build); the
  others are never constructed and their code goes.
* ``sources``: the kernel sources none of whose kernels the config keeps are taken out of their CMake targets,
  so a cold reduced build does not compile what the linker would drop (every config-built variant uses it;
  a source dropped wrongly fails the link, ORT links with ``--no-undefined``, and is put back: ``restore_for``);
  and the sources of the archive members the release's link never pulls (abseil, re2, flatbuffers, parts of
  protobuf-lite, onnx and ORT's framework: ``ortbuild.members``), which add no byte to the library.
* ``mlas-isa=<ceiling>``: a generated copy of MLAS's ``platform.cpp`` without the kernel-dispatch blocks of
  the ISAs above the ceiling (``ortbuild.mlas``); their kernels are never referenced and go.
* ``mlas-families``: a generated copy of MLAS's ``platform.cpp`` whose table stores ``nullptr`` in the fields
  (kernel families) no MLAS object the link pulls reads (``ortbuild.mlas_families``): decided after the
  build's first link, applied by a recompile of ``platform.cpp`` and a second link.
* ``pch``: not a size lever but a compile-time one: each of ORT's own large targets (graph, framework, optimizer,
  providers, session) precompiles the headers nearly all of its sources include (``PCH_HEADERS``; gcc only),
  which halves the front end of most ORT compiles. The code is the same; only the order of functions inside
  an object changes, so the library's bytes differ from a build without it (outputs do not). ccache keeps
  hitting across build directories with ``sloppiness=pch_defines,time_macros`` (``runner.build_env``).
* ``sgemm-packed-k``: not a size lever but an exactness one: a generated copy of MLAS's ``sgemm.cpp`` whose
  SGEMM on run-time weights walks K in the pre-packed path's slices (``ortbuild.mlas.packed_k_sgemm``), so a
  keep-quantized ``.ort`` (weights dequantized at run time) gives what the folded, pre-packed ``.onnx`` gives.

Generated ORT sources are swapped into their CMake targets by ``overlay.cmake``, included through
``CMAKE_PROJECT_onnxruntime_INCLUDE`` (nothing in the cached source changes). Every other compile command is
unchanged, so a pruned build after a full one recompiles only the files that include a changed file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ortprune._io import atomic_write_text
from ortprune.errors import BuildError
from ortprune.opconfig import OpConfig
from ortprune.ortbuild.capi import (
    C_API_CC,
    CAPI_LEVER,
    ORT_APIS_H,
    CApiCut,
    cut_c_api,
    runtime_functions,
    status_functions,
)
from ortprune.ortbuild.mlas import (
    CEILINGS,
    PLATFORM_CPP,
    SGEMM_CPP,
    SGEMM_LEVER,
    MlasCut,
    absolute_includes,
    check_mlas_lever,
    cut_platform,
    mlas_ceiling,
    packed_k_sgemm,
    read_source,
)
from ortprune.ortbuild.mlas_families import FAMILIES_LEVER, FamilyCut, drop_fields
from ortprune.schemas import SchemaId, resolve_schemas, wanted_schemas

if TYPE_CHECKING:
    pass

#: Precompiled headers for ORT's own targets (a compile-time lever: the code is the same).
PCH_LEVER = "pch"
#: Dead virtual functions: every C++ object full-LTO bitcode with whole-program vtables (clang + --enable_lto).
VTABLES_LEVER = "vtables"
#: Error locations name the function, not its whole signature (ORT_ENFORCE's ``__PRETTY_FUNCTION__``).
WHERE_LEVER = "short-where"
WHERE_FLAG = "-D__PRETTY_FUNCTION__=__FUNCTION__"
#: Levers without a value, and every lever ``ortprune build --prune`` accepts (``mlas-isa=avx2`` takes one).
PLAIN_LEVERS = ("schemas", "optimizers", "sources", FAMILIES_LEVER, SGEMM_LEVER, PCH_LEVER, VTABLES_LEVER,
                WHERE_LEVER, CAPI_LEVER)  # fmt: skip
LEVERS = (*PLAIN_LEVERS, "mlas-isa")
#: The levers keyed by an op config (the others fit every variant).
CONFIG_LEVERS = ("schemas", "optimizers", "sources")

#: Per ORT target, the headers most of its sources include (counted over ORT 1.21.0's sources), precompiled
#: once per target. A source compiled with other flags than its target's gets the headers as text (gcc's
#: -Winvalid-pch fallback), so a misfit costs time, never correctness.
PCH_HEADERS: dict[str, tuple[str, ...]] = {
    "onnxruntime_graph": ("core/graph/graph.h", "core/graph/constants.h", "core/graph/onnx_protobuf.h"),
    "onnxruntime_framework": ("core/framework/op_kernel.h", "core/framework/session_state.h",
                              "core/framework/tensorprotoutils.h", "core/framework/utils.h"),
    "onnxruntime_optimizer": ("core/graph/graph_utils.h", "core/optimizer/initializer.h", "core/optimizer/utils.h",
                              "core/framework/tensorprotoutils.h", "core/optimizer/graph_transformer.h",
                              "core/optimizer/rewrite_rule.h"),
    "onnxruntime_providers": ("core/framework/op_kernel.h", "core/providers/common.h", "core/util/math_cpuonly.h",
                              "core/platform/threadpool.h", "core/mlas/inc/mlas.h", "core/common/safeint.h",
                              "core/common/narrow.h"),
    "onnxruntime_session": ("core/session/inference_session.h", "core/session/ort_apis.h",
                            "core/framework/error_code_helper.h"),
}  # fmt: skip

#: With ``vtables``, every C++ object's flags. Virtual function elimination drops a virtual function when no
#: call in the link can reach it, so it is sound only if the link sees every virtual call: no C++ object may
#: stay native code (ORT compiles its protobuf without IPO), hence the flags go to every target.
VTABLES_FLAGS = (
    "-flto=full", "-fwhole-program-vtables", "-fvirtual-function-elimination",
    "-fvisibility=hidden", "-fvisibility-inlines-hidden",
)  # fmt: skip
#: ... and every C object's: lld refuses to link LTO units split for whole-program vtables with unsplit ones.
VTABLES_C_FLAGS = ("-fsplit-lto-unit",)
#: The C entry points a CPU build exports (ORT's list) and their declarations: hidden visibility would hide
#: them too (``ORT_EXPORT`` is empty off Apple), so ``vtables`` declares them visible in a header every C++
#: source includes first; a later declaration without the attribute keeps it.
EXPORTS_LIST = "onnxruntime/core/providers/cpu/symbols.txt"
EXPORT_DECLARATIONS = {
    "OrtGetApiBase": "const struct OrtApiBase* OrtGetApiBase(void) noexcept;",
    "OrtSessionOptionsAppendExecutionProvider_CPU":
        "struct OrtStatus* OrtSessionOptionsAppendExecutionProvider_CPU(struct OrtSessionOptions*, int) noexcept;",
}  # fmt: skip


def exports_header(source: Path) -> str:
    """The header ``vtables`` force-includes: ORT's exported C entry points declared with default visibility.
    BuildError naming ORT's symbol list if it names a function this lever has no declaration for."""
    path = source / EXPORTS_LIST
    try:
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as e:
        raise BuildError(f"--prune {VTABLES_LEVER} reads ORT's exported symbols: {e.strerror}", path) from None
    unknown = [n for n in names if n not in EXPORT_DECLARATIONS]
    if unknown or not names:
        raise BuildError(
            f"--prune {VTABLES_LEVER} has no declaration for the exported {', '.join(unknown) or '(none listed)'}: "
            "the C entry points of this ORT source changed",
            path,
        )
    decls = "".join(f'__attribute__((visibility("default"))) {EXPORT_DECLARATIONS[n]}\n' for n in names)
    return (
        f"// Written by ortprune (--prune {VTABLES_LEVER}): the library is compiled with -fvisibility=hidden;\n"
        "// these are the C entry points it exports (ORT's own list), declared visible before ORT's headers.\n"
        "#ifdef __cplusplus\nstruct OrtApiBase;\nstruct OrtSessionOptions;\nstruct OrtStatus;\n"
        f'extern "C" {{\n{decls}}}\n#endif\n'
    )


#: Part of a pruned build's key: bumped whenever a transform changes what it keeps, so a build made by an
#: older transform is never reused (2: schemas of the ops transformers create and fuse away are kept).
TRANSFORM_VERSION = 2

#: Where the generated ORT sources and the CMake overlay go, inside the build directory.
GENERATED = "ortprune.generated"

_FN_LINE = re.compile(
    r"^[ \t]*fn\(GetOpSchema<ONNX_OPERATOR_SET_SCHEMA_CLASS_NAME\((\w+),\s*(\d+),\s*(\w+)\)>\(\)\);[ \t]*\n", re.M
)


def check_levers(levers: Iterable[str]) -> tuple[str, ...]:
    """The levers sorted and de-duplicated; BuildError naming the allowed ones for anything else."""
    chosen = tuple(sorted({lv.strip() for lv in levers if lv.strip()}))
    bad = [lv for lv in chosen if lv not in PLAIN_LEVERS and lv.split("=")[0] != "mlas-isa"]
    if bad:
        raise BuildError(
            f"unknown --prune lever(s) {', '.join(bad)}; choose from {', '.join(CONFIG_LEVERS)}, "
            f"mlas-isa={'|'.join(CEILINGS)}, {', '.join(lv for lv in PLAIN_LEVERS if lv not in CONFIG_LEVERS)}"
        )
    check_mlas_lever(chosen)
    return chosen


# -- schemas --------------------------------------------------------------------------------------------
def schema_entries(text: str) -> list[SchemaId]:
    """Every schema a header registers, in order: ``(tag, since_version, op)``."""
    return [(m[1], int(m[2]), m[3]) for m in _FN_LINE.finditer(text)]


@dataclass
class SchemaCut:
    """What a cut kept and dropped in one header."""

    path: str
    kept: list[SchemaId] = field(default_factory=list)
    dropped: list[SchemaId] = field(default_factory=list)


def cut_schemas(text: str, keep: set[SchemaId], path: str | Path = "<header>") -> tuple[str, SchemaCut]:
    """``text`` without the ``fn(GetOpSchema<…>())`` lines not in ``keep`` (declarations stay, so code that
    names a schema class directly, like ORT's NHWC schemas, still compiles)."""
    cut = SchemaCut(str(path))
    if not _FN_LINE.search(text):
        raise BuildError("no fn(GetOpSchema<...>()) registration lines: not an operator set header", path)

    def one(m: re.Match[str]) -> str:
        sid = (m[1], int(m[2]), m[3])
        if sid in keep:
            cut.kept.append(sid)
            return m[0]
        cut.dropped.append(sid)
        return ""

    return _FN_LINE.sub(one, text), cut


# -- optimizers -----------------------------------------------------------------------------------------
_CONSTRUCT = re.compile(r"\b(transformers\.emplace_back|rules\.push_back)\(\s*std::make_unique<(\w+)>\(")


def _close_paren(text: str, i: int) -> int:
    """The index of the ``)`` that closes the ``(`` at or after ``i`` (balanced; the end of ``text`` if none)."""
    depth = 0
    while i < len(text):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return i


@dataclass(frozen=True)
class Construction:
    """One ``transformers.emplace_back(std::make_unique<Cls>(…));`` or ``rules.push_back(…);`` statement."""

    cls: str
    kind: str  # "transformer" | "rule"
    start: int
    end: int  # after the closing ';'


def constructions(text: str) -> list[Construction]:
    """The statements of ``graph_transformer_utils.cc`` that construct a transformer or rule, with their
    extent (balanced parentheses; hand-written because no C++ parser is a dependency here)."""
    found = []
    for m in _CONSTRUCT.finditer(text):
        i = _close_paren(text, m.start(1) + len(m[1]))
        end = text.index(";", i) + 1
        found.append(Construction(m[2], "rule" if m[1].startswith("rules") else "transformer", m.start(), end))
    return found


def cut_transformers(
    text: str, drop: set[str], path: str | Path = "graph_transformer_utils.cc"
) -> tuple[str, list[str]]:
    """``text`` without the construction statements of the classes in ``drop``; returns the dropped classes."""
    found = constructions(text)
    if not found:
        raise BuildError("no transformer constructions found: not ORT's graph_transformer_utils.cc", path)
    out, pos, dropped = [], 0, []
    for c in found:
        if c.cls in drop:
            out.append(text[pos : c.start])
            out.append(f"/* ortprune: {c.cls} not constructed */")
            pos = c.end
            dropped.append(c.cls)
    out.append(text[pos:])
    return "".join(out), sorted(set(dropped))


_NAME_LITERAL = re.compile(r'(?:GraphTransformer|RewriteRule|SelectorActionTransformer)\s*[({]\s*"(\w+)"')
_NAME_CONSTANT = re.compile(r"(?:GraphTransformer|SelectorActionTransformer)\s*[({]\s*(k\w+)\b")
_RETURN_LITERAL = re.compile(r'return\s+"(\w+)"\s*;')
_TERNARY_LITERAL = re.compile(r'GraphTransformer\([^;{]*?\?\s*"(\w+)"\s*:\s*"(\w+)"\s*\+')


def _class_names(cls: str, files: Mapping[Path, str]) -> tuple[str, ...]:
    """The names a transformer/rule class passes to its base: from its in-class constructor (header) or its
    out-of-line one (``Cls::Cls(...)`` in a .cc); () when they cannot be read."""
    decl = re.compile(rf"\bclass\s+{cls}\b[^;]*?\{{")
    ctor = re.compile(rf"\b{cls}::{cls}\(")
    for text in files.values():
        for m in (decl.search(text), ctor.search(text)):
            if not m:
                continue
            body = text[m.end() : m.end() + 4000]
            nxt = re.search(r"\n(?:class|struct)\s+\w+|\n}", body)
            body = body[: nxt.start()] if nxt else body
            tern = _TERNARY_LITERAL.search(body)
            if tern:
                return (tern[1], tern[2])  # "TransposeOptimizer" or "TransposeOptimizer_" + ep
            lits = _NAME_LITERAL.findall(body)
            for const in _NAME_CONSTANT.findall(body):
                lits += re.findall(rf'\b{const}\s*=\s*"(\w+)"', text)
            if not lits and re.search(r"GraphTransformer\(\s*Get\w+Name\(", body):
                lits = _RETURN_LITERAL.findall(text[: m.start()] + body)
            if lits:
                return tuple(dict.fromkeys(lits))
    return ()


def transformer_names(source: Path) -> dict[str, tuple[str, ...]]:
    """``{class: names}``: the names (``Name()``, what ORT logs and what
    ``optimization.disable_specified_optimizers`` takes) each class constructed in
    ``graph_transformer_utils.cc`` runs under. A name ending in ``_`` is a prefix (``TransposeOptimizer_<ep>``).
    A class whose names cannot be read from its source is left out: it is always kept."""
    opt = source / "onnxruntime/core/optimizer"
    utils = opt / "graph_transformer_utils.cc"
    try:
        text = utils.read_text()
    except OSError:
        raise BuildError("not an ONNX Runtime source tree (no graph_transformer_utils.cc)", source) from None
    files = {f: f.read_text(errors="replace") for pat in ("*.h", "*.cc") for f in sorted(opt.rglob(pat))}
    found = constructions(text)
    names = {cls: _class_names(cls, files) for cls in sorted({c.cls for c in found})}
    # A rewrite rule runs inside its level's rule-based transformer, which is what ORT logs: a rule is kept
    # when that transformer changed the graph (or the rule's own name is kept).
    for c in found:
        if c.kind == "rule" and names.get(c.cls):
            level = re.findall(r"TransformerLevel::Level(\d)", text[: c.start])
            if level:
                names[c.cls] += (f"Level{level[-1]}_RuleBasedTransformer",)
    return {cls: ns for cls, ns in names.items() if ns}


def classes_to_drop(names: Mapping[str, tuple[str, ...]], keep: Iterable[str]) -> set[str]:
    """Classes none of whose names is in ``keep`` (a name ``X_`` matches every ``X_…``)."""
    keep = set(keep)

    def used(n: str) -> bool:
        return n in keep or (n.endswith("_") and any(k.startswith(n) for k in keep))

    return {cls for cls, ns in names.items() if not any(used(n) for n in ns)}


# -- sources: compile only the kernels that ship ------------------------------------------------------
#: Where ORT's CPU kernels are defined (the CPU provider and the CPU contrib ops).
KERNEL_DIRS = ("onnxruntime/core/providers/cpu", "onnxruntime/contrib_ops/cpu")
_KERNEL_DEF = re.compile(r"\bONNX_\w*KERNEL\w*\s*\(")  # ONNX_CPU_OPERATOR_KERNEL(, ONNX_OPERATOR_TYPED_KERNEL_EX( ...
_MACRO_CALL = re.compile(r"\b[A-Z][A-Z0-9_]{2,}\s*\(")
_WORD = re.compile(r"\b[A-Z]\w*\b")
_LINE_COMMENT = re.compile(r"//[^\n]*")
#: ``BuildKernelCreateInfo<onnxruntime::kCpuExecutionProvider_Relu_kOnnxDomain_ver6>``: the op of a kernel class
_KERNEL_CLASS = re.compile(r"k\w+?ExecutionProvider_(\w+?)_k\w+?Domain_ver")
#: GNU ld: undefined reference to `sym'; lld: error: undefined symbol: sym
_UNDEFINED = re.compile(r"undefined reference to [`']([^'\n]+)'|undefined symbol: ([^\n]+)")


def kernel_words(text: str) -> set[str] | None:
    """The capitalised words in the arguments of every ALL-CAPS macro call of a kernel source (a superset of
    the op names it defines kernels for, whatever local macro wraps ORT's); None when it defines no kernel."""
    text = _LINE_COMMENT.sub("", text)
    if not any("CLASS_NAME" not in m[0] for m in _KERNEL_DEF.finditer(text)):
        return None
    words: set[str] = set()
    for m in _MACRO_CALL.finditer(text):
        start = m.end() - 1
        words.update(_WORD.findall(text[start : _close_paren(text, start)]))
    return words


def unused_kernel_sources(source: Path, config: OpConfig) -> list[Path]:
    """The kernel sources none of whose kernels ``reduce_op_kernels.py`` keeps for ``config``: no op of the
    config is named in their kernel macros. Over-inclusive by design (a name in any macro call keeps the file);
    a file dropped wrongly is a link error (ORT links with ``--no-undefined``), which :func:`restore_for`
    answers, never a library that loads without a kernel."""
    ops = {i.op for i in config}
    unused = []
    for d in KERNEL_DIRS:
        root = source / d
        if not root.is_dir():
            raise BuildError(f"not an ONNX Runtime source tree (no {d})", source)
        for f in sorted(root.rglob("*.cc")):
            words = kernel_words(f.read_text(errors="replace"))
            if words is not None and not words & ops:
                unused.append(f)
    return unused


def restore_for(link_log: str, dropped: Iterable[Path]) -> list[Path]:
    """The dropped sources a failed link needs back: for each undefined symbol, those that name its kernel's op
    (``BuildKernelCreateInfo<…_Relu_…>``), define its method (``GeluFusion::ApplyImpl``) or name its function
    (the last name before its parameters)."""
    wanted: set[str] = set()
    for gnu, lld in _UNDEFINED.findall(link_log):
        sym = gnu or lld.strip()
        kernel = _KERNEL_CLASS.search(sym)
        if kernel:
            wanted.add(re.escape(kernel[1]))
            continue
        parts = [re.findall(r"[A-Za-z_]\w*", p)[-1:] for p in sym.split("(", 1)[0].split("::")]
        names = [n[0] for n in parts if n]
        if len(names) >= 2 and names[-2][:1].isupper():  # a method: its class's file defines it
            wanted.add(rf"{re.escape(names[-2])}::{re.escape(names[-1])}")
        elif names:
            wanted.add(re.escape(names[-1]))
    if not wanted:
        return []
    pattern = re.compile(r"\b(" + "|".join(sorted(wanted)) + r")\b")

    def text(f: Path) -> str:  # a listed file this tree lacks defines nothing
        try:
            return f.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    return [f for f in dropped if pattern.search(text(f))]


_DEFINES_METHOD = r"\b{cls}::(?:~?{cls}\b|\w+\([^;]*?\)\s*(?:const\s*)?(?:override\s*)?\{{)"


def unconstructed_sources(source: Path, dropped_classes: set[str]) -> list[Path]:
    """With ``--prune optimizers``: the optimizer sources whose every class with a method defined there is a
    transformer or rule that is no longer constructed. Helpers and shared selectors define other classes (or
    none) and stay; what a kept file still calls fails the link and is put back (:func:`restore_for`)."""
    opt = source / "onnxruntime/core/optimizer"
    found = []
    for f in sorted(opt.rglob("*.cc")):
        if f.name == "graph_transformer_utils.cc":
            continue
        text = f.read_text(errors="replace")
        quals = set(re.findall(r"\b([A-Z]\w+)::\w+\s*\(", text))
        defined = {q for q in quals if re.search(_DEFINES_METHOD.format(cls=re.escape(q)), text)}
        if defined and defined <= dropped_classes:
            found.append(f)
    return found


# -- applying to a build tree ---------------------------------------------------------------------------
@dataclass
class PruneReport:
    """What the transforms of one build changed (written as ``prune.json`` in the build dir)."""

    levers: list[str]
    schemas: list[SchemaCut] = field(default_factory=list)
    transformers_dropped: list[str] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)
    mlas: MlasCut | None = None
    mlas_families: FamilyCut | None = None  # None until the first link decided (or without the lever)
    sources_dropped: list[str] = field(default_factory=list)  # kernel sources not compiled (relative paths)
    sources_restored: list[str] = field(default_factory=list)  # dropped ones a link asked back for
    members_dropped: list[str] = field(default_factory=list)  # ``ortbuild.members`` entries not compiled
    members_restored: list[str] = field(default_factory=list)  # dropped ones a link asked back for
    nchwc_probe_dropped: bool = False  # mlas-families: the contrib registration no longer asks MLAS for NCHWc
    c_api: CApiCut | None = None  # c-api: the OrtApi table entries stubbed and kept

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "levers": self.levers,
            "schemas": {c.path: {"kept": len(c.kept), "dropped": len(c.dropped)} for c in self.schemas},
            "transformers_dropped": self.transformers_dropped,
            "generated": self.generated,
        }
        if "sources" in self.levers:
            out["sources"] = {"dropped": self.sources_dropped, "restored": self.sources_restored}
            out["members"] = {"dropped": self.members_dropped, "restored": self.members_restored}
        if self.mlas is not None:
            out["mlas"] = {"ceiling": self.mlas.ceiling, "blocks_dropped": self.mlas.blocks,
                           "symbols_unreferenced": self.mlas.symbols}  # fmt: skip
        if self.mlas_families is not None:
            f = self.mlas_families
            out["mlas_families"] = {"fields_dropped": f.dropped, "fields_kept": f.kept,
                                    "symbols_unreferenced": f.symbols, "mlas_members_linked": f.needed}  # fmt: skip
            out["nchwc_probe_dropped"] = self.nchwc_probe_dropped
        if self.c_api is not None:
            out["c_api"] = {"table": self.c_api.table, "stubbed": self.c_api.stubbed, "kept": self.c_api.kept}
        return out


def _write_if_changed(path: Path, text: str) -> None:
    """Write only when the content differs: an unchanged mtime keeps ninja from recompiling."""
    if not path.exists() or path.read_text() != text:
        atomic_write_text(path, text)


def _pristine(path: Path) -> str:
    """The original text of a build-tree file this module edits in place (kept once as ``*.ortprune-orig``)."""
    orig = path.with_name(path.name + ".ortprune-orig")
    if not orig.exists():
        try:
            atomic_write_text(orig, path.read_text())
        except OSError:
            raise BuildError("expected file is missing from the build tree", path) from None
    return orig.read_text()


def _keep_for(config: OpConfig, added: Iterable[tuple[str, str, int]], texts: Iterable[str]) -> set[SchemaId]:
    entries = [e for t in texts for e in schema_entries(t)]
    return resolve_schemas(entries, wanted_schemas(config, added))


OVERLAY_CMAKE = """# Written by ortprune: swap generated copies of ORT sources into their targets (ortbuild/prune.py).
cmake_language(DEFER CALL _ortprune_overlay)
function(_ortprune_targets _dir _out)  # the targets of a directory and of every directory below it (_deps too)
  get_property(_ts DIRECTORY "${{_dir}}" PROPERTY BUILDSYSTEM_TARGETS)
  get_property(_subs DIRECTORY "${{_dir}}" PROPERTY SUBDIRECTORIES)
  foreach(_sub IN LISTS _subs)
    _ortprune_targets("${{_sub}}" _below)
    list(APPEND _ts ${{_below}})
  endforeach()
  set(${{_out}} ${{_ts}} PARENT_SCOPE)
endfunction()
function(_ortprune_emptied _item _empty _out)  # the emptied library an item names (itself, an alias, LINK_ONLY)
  set(${{_out}} "" PARENT_SCOPE)
  if(NOT _item MATCHES "^(\\\\$<LINK_ONLY:)?([A-Za-z0-9_.+:-]+)>?$")
    return()
  endif()
  set(_name "${{CMAKE_MATCH_2}}")
  if(TARGET "${{_name}}")
    get_target_property(_real "${{_name}}" ALIASED_TARGET)
    if(NOT _real)
      set(_real "${{_name}}")
    endif()
    if(_real IN_LIST _empty)
      set(${{_out}} "${{_real}}" PARENT_SCOPE)
    endif()
  endif()
endfunction()
function(_ortprune_unlink _targets _empty)
  # A library with nothing left to compile is linked by no one: an INTERFACE stand-in carries what it passed
  # on (include dirs, definitions, its own link libraries) and takes its place in every link list, so ninja
  # neither compiles its empty object nor archives it.
  set(_ifaces)
  foreach(_e IN LISTS _empty)
    add_library(_ortprune_iface_${{_e}} INTERFACE)
    foreach(_p IN ITEMS INTERFACE_INCLUDE_DIRECTORIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES INTERFACE_COMPILE_DEFINITIONS
                        INTERFACE_COMPILE_OPTIONS INTERFACE_COMPILE_FEATURES INTERFACE_LINK_OPTIONS
                        INTERFACE_LINK_DIRECTORIES INTERFACE_LINK_LIBRARIES)
      get_target_property(_v ${{_e}} ${{_p}})
      if(_v)
        set_property(TARGET _ortprune_iface_${{_e}} PROPERTY ${{_p}} "${{_v}}")
      endif()
    endforeach()
    list(APPEND _ifaces _ortprune_iface_${{_e}})
  endforeach()
  foreach(_t IN LISTS _targets _ifaces)
    get_target_property(_type ${{_t}} TYPE)
    set(_props INTERFACE_LINK_LIBRARIES)
    if(NOT _type STREQUAL "INTERFACE_LIBRARY")
      list(APPEND _props LINK_LIBRARIES)
    endif()
    foreach(_p IN LISTS _props)
      get_target_property(_libs ${{_t}} ${{_p}})
      if(NOT _libs)
        continue()
      endif()
      set(_new)
      set(_changed FALSE)
      foreach(_l IN LISTS _libs)
        _ortprune_emptied("${{_l}}" "${{_empty}}" _ref)
        if(_ref)
          if(_l MATCHES "^\\\\$<LINK_ONLY:")
            set(_l "$<LINK_ONLY:_ortprune_iface_${{_ref}}>")
          else()
            set(_l "_ortprune_iface_${{_ref}}")
          endif()
          set(_changed TRUE)
        endif()
        list(APPEND _new "${{_l}}")
      endforeach()
      if(_changed)
        set_property(TARGET ${{_t}} PROPERTY ${{_p}} "${{_new}}")
      endif()
    endforeach()
  endforeach()
endfunction()
function(_ortprune_overlay)
  _ortprune_targets("${{CMAKE_CURRENT_SOURCE_DIR}}" _targets)
  set(_done)
  set(_drop {drops})
  set(_members {members})
  set(_empty_targets)
  foreach(_t IN LISTS _targets)
    get_target_property(_srcs ${{_t}} SOURCES)
    get_target_property(_dir ${{_t}} SOURCE_DIR)
    get_target_property(_type ${{_t}} TYPE)
    if(NOT _srcs OR _type STREQUAL "INTERFACE_LIBRARY")
      continue()
    endif()
    set(_new)
    set(_changed FALSE)
    foreach(_s IN LISTS _srcs)
      # ORT globs "cmake/../onnxruntime/..." paths: compare normalized absolute paths
      get_filename_component(_abs "${{_s}}" ABSOLUTE BASE_DIR "${{_dir}}")
      if(_abs IN_LIST _drop OR _abs IN_LIST _members)  # an unused kernel source or an unpulled member
        set(_changed TRUE)
        list(APPEND _done "${{_abs}}")
        continue()
      endif()
{cases}      list(APPEND _new "${{_s}}")
    endforeach()
    if(_changed)
      # a static library whose every member goes still needs one object to archive: an empty one
      set(_compiled ${{_new}})
      list(FILTER _compiled INCLUDE REGEX "[.](c|cc|cpp|cxx|S|s|asm)$")
      if(NOT _compiled)
        list(APPEND _new "{stub}")  # CMake wants a source; the library is unlinked below, so never built
        list(APPEND _empty_targets ${{_t}})
      endif()
      set_property(TARGET ${{_t}} PROPERTY SOURCES ${{_new}})
    endif()
  endforeach()
  foreach(_o IN ITEMS {origs})
    if(NOT _o IN_LIST _done)
      message(FATAL_ERROR "ortprune: no target compiles ${{_o}}: the --prune overlay does not fit this ORT source")
    endif()
  endforeach()
  # kernel sources of features this configuration leaves out (ATen, training...) are in no target: only a
  # list of which none is compiled means the overlay missed its targets
  foreach(_kind IN ITEMS _drop _members)
    set(_dropped 0)
    foreach(_o IN LISTS ${{_kind}})
      if(_o IN_LIST _done)
        math(EXPR _dropped "${{_dropped}} + 1")
      endif()
    endforeach()
    list(LENGTH ${{_kind}} _listed)
    if(_kind STREQUAL "_drop")
      set(_what "kernel sources")
      set(_unused "unused kernel sources")
    else()
      set(_what "sources of archive members the link never pulls")
      set(_unused "${{_what}}")
    endif()
    if(_listed GREATER 0 AND _dropped EQUAL 0)
      message(FATAL_ERROR "ortprune: none of the ${{_listed}} ${{_what}} to drop is in a target: overlay misfit")
    endif()
    if(_listed GREATER 0)
      message(STATUS "ortprune: ${{_dropped}} of ${{_listed}} ${{_unused}} taken out of their targets")
    endif()
  endforeach()
  if(_empty_targets)
    _ortprune_unlink("${{_targets}}" "${{_empty_targets}}")
    list(LENGTH _empty_targets _emptied)
    message(STATUS "ortprune: ${{_emptied}} libraries left with nothing to compile are linked by no target")
  endif()
{pch}{options}endfunction()
"""

_OVERLAY_PCH = """  # gcc only (ccache caches gcc's .gch; clang's .pch needs more flags); never with distcc
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND NOT ORTPRUNE_NO_PCH)
    set(_pch_targets)
{targets}    message(STATUS "ortprune: precompiled headers for ${{_pch_targets}}")
  endif()
"""

_OVERLAY_PCH_TARGET = """    if(TARGET {target})
      target_precompile_headers({target} PRIVATE {headers})
      list(APPEND _pch_targets {target})
    endif()
"""

_OVERLAY_CLANG = """  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ortprune: --prune {lever} needs clang (--toolchain clang), not ${{CMAKE_CXX_COMPILER_ID}}")
  endif()
"""
_OVERLAY_OPTIONS = """  # compile flags of every target that compiles (dependencies' too): {what}
  set(_opt 0)
  foreach(_t IN LISTS _targets)
    get_target_property(_type ${{_t}} TYPE)
    if(_type MATCHES "^((STATIC|SHARED|MODULE|OBJECT)_LIBRARY|EXECUTABLE)$")
      target_compile_options(${{_t}} PRIVATE {options})
      math(EXPR _opt "${{_opt}} + 1")
    endif()
  endforeach()
  message(STATUS "ortprune: {what} in ${{_opt}} targets")
"""

_OVERLAY_CASE = """      if(_abs STREQUAL "{orig}")
        message(STATUS "ortprune: ${{_t}}: {orig} -> {new}")
        set(_s "{new}")
        set(_changed TRUE)
        list(APPEND _done "{orig}")
      endif()
"""


def overlay_cmake(
    swaps: Mapping[Path, Path],
    drops: Iterable[Path] = (),
    members: Iterable[Path] = (),
    stub: Path | None = None,
    pch: Mapping[str, tuple[str, ...]] | None = None,
    vtables_header: Path | None = None,
    short_where: bool = False,
) -> str:
    """The CMake file that replaces each original source with its generated copy in every target (of every
    directory, dependencies' too) and takes ``drops`` (kernel sources) and ``members`` (sources of archive
    members no link pulls, ``ortbuild.members``) out of them; a library left with nothing to compile gets
    ``stub`` (an empty source: CMake wants one) and is replaced by an INTERFACE stand-in in every link list, so
    it is never built. Configure fails if a swapped source is compiled by no target, or if none of a
    non-empty drop list is. ``pch``: per target, the headers it precompiles (gcc; C++ sources only).
    ``vtables_header``: with ``vtables``, the exports header every C++ source of every target includes first,
    beside :data:`VTABLES_FLAGS` (the configure fails unless the compiler is clang). ``short_where``: every
    C++ source gets :data:`WHERE_FLAG`."""

    def quoted(paths: Iterable[Path]) -> str:
        return " ".join(f'"{p.as_posix()}"' for p in sorted(paths))

    cases = "".join(_OVERLAY_CASE.format(orig=o.as_posix(), new=n.as_posix()) for o, n in sorted(swaps.items()))
    stub_path = (stub or Path("ortprune-empty.cc")).as_posix()
    pch_block = ""
    if pch:
        targets = "".join(
            _OVERLAY_PCH_TARGET.format(target=t, headers=" ".join(f'"$<$<COMPILE_LANGUAGE:CXX>:<{h}>>"' for h in hs))
            for t, hs in sorted(pch.items())
        )
        pch_block = _OVERLAY_PCH.format(targets=targets)
    flags: list[str] = []
    c_flags: list[str] = []
    what: list[str] = []
    options_block = ""
    if vtables_header is not None:  # the joined -include form: CMake de-duplicates a repeated "-include"
        options_block = _OVERLAY_CLANG.format(lever=VTABLES_LEVER)
        flags += [*VTABLES_FLAGS, f"-include{vtables_header.as_posix()}"]
        c_flags += VTABLES_C_FLAGS
        what.append("whole-program vtables and virtual function elimination")
    if short_where:
        flags.append(WHERE_FLAG)
        what.append("error locations without signatures")
    if flags:
        options = " ".join([*(f'"$<$<COMPILE_LANGUAGE:CXX>:{f}>"' for f in flags),
                            *(f'"$<$<COMPILE_LANGUAGE:C>:{f}>"' for f in c_flags)])  # fmt: skip
        options_block += _OVERLAY_OPTIONS.format(what=", ".join(what), options=options)
    return OVERLAY_CMAKE.format(cases=cases, origs=quoted(swaps), drops=quoted(drops), members=quoted(members),
                                stub=stub_path, pch=pch_block, options=options_block)  # fmt: skip


def overlay_path(build_dir: Path) -> Path:
    return build_dir / GENERATED / "overlay.cmake"


def prepare_sources(
    source: Path,
    build_dir: Path,
    levers: tuple[str, ...],
    config: OpConfig | None,
    keep_transformers: tuple[str, ...] = (),
    added: Iterable[tuple[str, str, int]] = (),
    restored: Iterable[str] = (),
    members: Iterable[Path] = (),
    mlas_drop: Iterable[str] | None = None,
) -> tuple[list[str], PruneReport]:
    """Before configuring: write the generated ORT sources and ``overlay.cmake`` into the build dir.
    ``restored``: dropped kernel sources (paths relative to ``source``) an earlier link of this build needed.
    ``members``: with the ``sources`` lever, sources of archive members no link pulls (``ortbuild.members``,
    already without those a link of this build asked back).
    ``mlas_drop``: with ``mlas-families``, the platform-table fields an earlier link of this build decided to
    drop (None before that link: platform.cpp is swapped for a copy that drops nothing yet).

    Returns the CMake defines that include the overlay, and what was cut so far.
    """
    report = PruneReport(list(levers))
    gen = build_dir / GENERATED
    exports_text = exports_header(source) if VTABLES_LEVER in levers else None  # refused before any write
    swaps: dict[Path, Path] = {}
    drops: list[Path] = []
    if "sources" in levers:
        if config is None:
            raise BuildError("--prune sources needs --config (the ops whose kernels are compiled)")
        back = set(restored)
        unused = unused_kernel_sources(source, config)
        if "optimizers" in levers:
            unused += unconstructed_sources(source, classes_to_drop(transformer_names(source), keep_transformers))
        drops = [f for f in unused if f.relative_to(source).as_posix() not in back]
        report.sources_dropped = [f.relative_to(source).as_posix() for f in drops]
        report.sources_restored = sorted(back)
    if "schemas" in levers:
        if config is None:
            raise BuildError("--prune schemas needs --config (the ops whose schemas stay)")
        env_cc = source / "onnxruntime/core/session/environment.cc"
        ms_h = source / "onnxruntime/core/graph/contrib_ops/ms_opset.h"
        try:
            env_text, ms_text = env_cc.read_text(), ms_h.read_text()
        except OSError as e:
            raise BuildError(f"not an ONNX Runtime source tree: {e}", source) from None
        include = '#include "core/graph/contrib_ops/ms_opset.h"'
        if include not in env_text:
            raise BuildError(f"environment.cc no longer has {include}: the contrib-schema cut needs updating", env_cc)
        new_ms, cut = cut_schemas(ms_text, _keep_for(config, added, [ms_text]), ms_h)
        gen_ms = gen / "onnxruntime/core/graph/contrib_ops/ms_opset.h"
        gen_env = gen / "onnxruntime/core/session/environment.cc"
        _write_if_changed(gen_ms, new_ms)
        _write_if_changed(gen_env, env_text.replace(include, f'#include "{gen_ms.as_posix()}"'))
        swaps[env_cc] = gen_env
        report.schemas.append(cut)
        report.generated += [str(gen_ms), str(gen_env)]
    if "optimizers" in levers:
        utils = source / "onnxruntime/core/optimizer/graph_transformer_utils.cc"
        drop = classes_to_drop(transformer_names(source), keep_transformers)
        new_text, dropped = cut_transformers(utils.read_text(), drop, utils)
        gen_utils = gen / "onnxruntime/core/optimizer/graph_transformer_utils.cc"
        _write_if_changed(gen_utils, new_text)
        swaps[utils] = gen_utils
        report.transformers_dropped = dropped
        report.generated.append(str(gen_utils))

    def swap(orig: Path, text: str) -> None:  # a generated copy: its quoted includes point at the source
        gen_path = gen / orig.relative_to(source)
        _write_if_changed(gen_path, absolute_includes(text, orig.parent))
        swaps[orig] = gen_path
        report.generated.append(str(gen_path))

    ceiling = mlas_ceiling(levers)
    if ceiling is not None or FAMILIES_LEVER in levers:
        platform, text = read_source(source, PLATFORM_CPP)
        if ceiling is not None:
            text, report.mlas = cut_platform(text, ceiling, platform)
        if FAMILIES_LEVER in levers:
            text, fcut = drop_fields(text, mlas_drop or (), platform)
            report.mlas_families = fcut if mlas_drop is not None else None
        swap(platform, text)
    if SGEMM_LEVER in levers:
        sgemm, text = read_source(source, SGEMM_CPP)
        swap(sgemm, packed_k_sgemm(text, sgemm))
    if CAPI_LEVER in levers:
        capi, text = read_source(source, C_API_CC)
        _, apis = read_source(source, ORT_APIS_H)
        text, report.c_api = cut_c_api(text, status_functions(apis), runtime_functions(), capi)
        swap(capi, text)
    overlay_levers = ("sources", PCH_LEVER, VTABLES_LEVER, WHERE_LEVER)
    if not swaps and not any(lv in levers for lv in overlay_levers):
        return [], report  # with sources always: a list emptied by restores is rewritten
    stub = gen / "ortprune-empty.cc"
    _write_if_changed(stub, "// ortprune: the one object of a library whose every member the link never pulls\n")
    kept_members = list(members) if "sources" in levers else []
    pch = PCH_HEADERS if PCH_LEVER in levers else None
    exports = None
    if exports_text is not None:
        exports = gen / "ortprune-exports.h"
        _write_if_changed(exports, exports_text)
        report.generated.append(str(exports))
    overlay = overlay_cmake(swaps, drops, kept_members, stub, pch, exports, WHERE_LEVER in levers)
    _write_if_changed(overlay_path(build_dir), overlay)
    return [f"CMAKE_PROJECT_onnxruntime_INCLUDE={overlay_path(build_dir)}"], report


def prune_deps(
    config_dir: Path,
    levers: tuple[str, ...],
    config: OpConfig | None,
    added: Iterable[tuple[str, str, int]] = (),
    report: PruneReport | None = None,
) -> PruneReport:
    """After configuring (which extracts onnx into ``_deps/onnx-src`` and writes ``op_reduction.generated``),
    before ninja: cut onnx's operator set headers in this build dir (``schemas``), and the contrib registration's
    NCHWc probe (``mlas-families``, :func:`drop_nchwc_probe`). Idempotent: the headers are always cut from the
    pristine copy, files written only on change."""
    report = report or PruneReport(list(levers))
    if FAMILIES_LEVER in levers and config is not None:
        report.nchwc_probe_dropped = drop_nchwc_probe(config_dir, config)
    if "schemas" not in levers:
        return report
    if config is None:
        raise BuildError("--prune schemas needs --config (the ops whose schemas stay)")
    defs = config_dir / "_deps/onnx-src/onnx/defs"
    for name in ("operator_sets.h", "operator_sets_ml.h"):
        path = defs / name
        text = _pristine(path)
        new_text, cut = cut_schemas(text, _keep_for(config, added, [text]), path)
        _write_if_changed(path, new_text)
        report.schemas.append(cut)
    return report


#: The contrib kernel registration ``reduce_op_kernels.py`` writes for a reduced build, and its NCHWc probe.
CONTRIB_KERNELS = "op_reduction.generated/onnxruntime/contrib_ops/cpu/cpu_contrib_kernels.cc"
NCHWC_PROBE = "if (MlasNchwcGetBlockSize() > 1) {"
NCHWC_DOMAIN = "com.microsoft.nchwc"


def drop_nchwc_probe(config_dir: Path, config: OpConfig) -> bool:
    """With ``mlas-families``, when the config has no ``com.microsoft.nchwc`` op: the generated contrib
    registration stops asking MLAS for its NCHWc block size before registering NCHWc kernels, a table the
    reduction left empty anyway. That call alone pulled MLAS's ``snchwc.cpp``, which reads the platform
    table's NCHWc convolution and pooling fields, so ``mlas-families`` had to keep those kernels (~37 KB).
    Applied after configure (``reduce_op_kernels.py`` writes the file then); True when the file was cut."""
    if any(i.domain == NCHWC_DOMAIN for i in config):
        return False
    path = config_dir / CONTRIB_KERNELS
    if not path.is_file():  # no contrib ops compiled, or not a reduced-ops build
        return False
    text = path.read_text()
    cut = "if (false) {  // ortprune mlas-families: no com.microsoft.nchwc op in the config, none registered"
    if cut in text:
        return True
    if text.count(NCHWC_PROBE) != 1:
        raise BuildError(f"the NCHWc probe ({NCHWC_PROBE}) is not in the contrib registration: update the cut", path)
    atomic_write_text(path, text.replace(NCHWC_PROBE, cut))
    return True


def transient_ops(
    source: Path, levers: tuple[str, ...], keep_transformers: tuple[str, ...] = ()
) -> tuple[tuple[str, str, int], ...]:
    """Ops the transformers that stay constructed may create and fuse away again within one load
    (GeluFusion makes a com.microsoft Gelu that BiasGeluFusion then turns into BiasGelu): the optimized
    graph the scan sees never shows them, but their schemas must be registered or the load fails ("Gelu(-1)
    is not a registered function/op"). Read as the string literals in the files that declare or define each
    constructed class: over-inclusive (ops a pattern only matches stay too), never short of one it makes."""
    opt = source / "onnxruntime/core/optimizer"
    utils = opt / "graph_transformer_utils.cc"
    try:
        constructed = {c.cls for c in constructions(utils.read_text())}
    except OSError:
        raise BuildError("not an ONNX Runtime source tree (no graph_transformer_utils.cc)", source) from None
    if "optimizers" in levers:
        constructed -= classes_to_drop(transformer_names(source), keep_transformers)
    files = [f.read_text(errors="replace") for pat in ("*.h", "*.cc") for f in sorted(opt.rglob(pat))]
    mentioned: set[str] = set()
    for text in files:
        if any(re.search(rf"\bclass\s+{cls}\b|\b{cls}::", text) for cls in constructed):
            mentioned.update(re.findall(r'"([A-Z]\w*)"', text))
    return tuple((domain, op, 1) for op in sorted(mentioned) for domain in ("ai.onnx", "com.microsoft"))
