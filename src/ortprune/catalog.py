"""The catalogues every layer reads: ORT build variants and graph optimization levels (each defined once)."""

from __future__ import annotations

from dataclasses import dataclass

from ortprune.errors import ArgumentTypeError, ArgumentValueError, BuildError


@dataclass(frozen=True)
class Variant:
    """One way of building ORT: the ``build.py`` flags it adds and what it needs from the user."""

    name: str
    description: str
    flags: tuple[str, ...] = ()
    needs_config: bool = False
    needs_types: bool = False
    #: the model files it runs: "onnx", or "ort" (ORT-format models made by the full build; minimal builds)
    model_format: str = "onnx"
    prune: tuple[str, ...] = ()  # source-transform levers (ortbuild.prune) every build of this variant uses


MINIMAL_FLAGS = (
    "--minimal_build",
    "--disable_exceptions",
    "--disable_ml_ops",
    "--disable_rtti",
    "--enable_reduced_operator_type_support",
)

#: Every variant, in the order tables list them (the baseline first).
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("full", "every operator (the baseline)"),
        Variant("no-contrib", "no com.microsoft contrib operators", ("--disable_contrib_ops",)),
        Variant("reduced", "only the operators in the config", needs_config=True, prune=("pch", "sources")),
        Variant(
            "reduced-types",
            "only the operators and element types in the config",
            ("--enable_reduced_operator_type_support",),
            needs_config=True,
            needs_types=True,
            prune=("pch", "sources"),
        ),
        Variant(
            "reduced-pruned",
            "the config's operators, only their ONNX/contrib schemas and only the graph transformers the models use",
            needs_config=True,
            prune=("optimizers", "pch", "schemas", "sources"),
        ),
        Variant(
            "reduced-max",
            "reduced-pruned + every stock switch that fits an ONNX-loading build (no ML ops, no RTTI)",
            ("--disable_ml_ops", "--disable_rtti"),
            needs_config=True,
            prune=("optimizers", "pch", "schemas", "sources"),
        ),
        Variant(
            "minimal",
            "ORT-format models only, no exceptions/RTTI/ML ops, operators and types from the config",
            MINIMAL_FLAGS,
            needs_config=True,
            model_format="ort",
            prune=("sources",),
        ),
    )
}
BASELINE = "full"


@dataclass(frozen=True)
class Toolchain:
    """A compiler and linker ORT is built with (``ortprune build --toolchain``); ``ortbuild.toolchain`` turns
    it into CMake defines. The default (gcc) adds nothing: ORT's own MinSizeRel flags, as every build so far."""

    name: str
    description: str
    cc: str  # executables looked up on PATH
    cxx: str
    packages: tuple[str, ...]  # the Debian packages that provide them (``make toolchain-deps`` installs them)
    opt: str = ""  # replaces MinSizeRel's -Os (empty: CMake's default)
    link_flags: tuple[str, ...] = ()  # added to every shared-library link
    exe_link_flags: tuple[str, ...] = ()  # added to executable links (protoc and friends)
    relr: bool = False  # pack relative relocations (DT_RELR) when the C library loads them (glibc >= 2.36)
    ar: str = ""  # archiver and ranlib that read the compiler's LTO objects
    ranlib: str = ""


#: Every toolchain, the default first.
TOOLCHAINS: dict[str, Toolchain] = {
    t.name: t
    for t in (
        Toolchain("gcc", "the system's gcc/g++ and GNU ld with ORT's MinSizeRel flags (-Os)", "cc", "c++", ("g++",)),
        Toolchain(
            "clang",
            "Debian's clang-16 and lld-16: -Oz, identical code folding (--icf=all), packed relative relocations",
            "clang-16",
            "clang++-16",
            ("clang-16", "lld-16", "llvm-16"),
            opt="-Oz",
            link_flags=("-fuse-ld=lld", "-Wl,--icf=all"),
            exe_link_flags=("-fuse-ld=lld",),
            relr=True,
            ar="llvm-ar-16",
            ranlib="llvm-ranlib-16",
        ),
    )
}
DEFAULT_TOOLCHAIN = "gcc"


def toolchain(name: str) -> Toolchain:
    try:
        return TOOLCHAINS[name]
    except KeyError:
        raise BuildError(f"unknown toolchain {name!r}; choose one of {', '.join(TOOLCHAINS)}") from None


def variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise BuildError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}") from None


def variant_rank(name: str) -> int:
    """Sort key: catalogue order, unknown names last."""
    return list(VARIANTS).index(name) if name in VARIANTS else len(VARIANTS)


#: ORT's GraphOptimizationLevel values (C API numbers) by our names, lowest first. ``layout`` (3) exists
#: only in ORT >= 1.2x and is not offered to users (older libraries reject it).
OPTIMIZATION_LEVELS: dict[str, int] = {"disable": 0, "basic": 1, "extended": 2, "layout": 3, "all": 99}
#: The levels a user chooses from (scan, verify, slim).
LEVELS: tuple[str, ...] = ("disable", "basic", "extended", "all")
DEFAULT_LEVEL = "all"


def check_level(level: str) -> int:
    """The ORT number of a user-facing level; OrtpruneError naming the choices otherwise."""
    if not isinstance(level, str):
        raise ArgumentTypeError(f"optimization level must be one of {', '.join(LEVELS)}, got {type(level).__name__}")
    if level not in LEVELS:
        raise ArgumentValueError(f"unknown optimization level {level!r}; choose one of {', '.join(LEVELS)}")
    return OPTIMIZATION_LEVELS[level]
