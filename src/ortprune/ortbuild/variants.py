"""ORT build variants and the exact ``tools/ci_build/build.py`` arguments for each."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ortprune.catalog import DEFAULT_TOOLCHAIN, toolchain, variant
from ortprune.errors import BuildError
from ortprune.opconfig import OpConfig

#: Extra size flags a user may add; recorded in the manifest.
EXTRA_FLAGS = ("--enable_lto", "--disable_ml_ops", "--disable_rtti", "--disable_generation_ops")
#: ``--disable_types=float8,sparsetensor`` (build.py's ``--disable_types`` takes several values; one token here)
DISABLE_TYPES = ("float8", "optional", "sparsetensor")
#: Ops that cannot run without a type ``--disable_types`` leaves out.
_TYPE_OPS = {
    "optional": {"Optional", "OptionalGetElement", "OptionalHasElement"},
    "sparsetensor": {"SparseToDenseMatMul"},
}


def disabled_types(flags: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The data types ``--disable_types=...`` among ``flags`` leaves out, sorted."""
    out: set[str] = set()
    for f in flags:
        if f.startswith("--disable_types="):
            out |= {t for t in f.split("=", 1)[1].split(",") if t}
    return tuple(sorted(out))


def _normalize_extra(flags: tuple[str, ...]) -> tuple[str, ...]:
    """One ``--disable_types=`` token with sorted unique values, so equal builds share one key."""
    types = disabled_types(flags)
    rest = tuple(f for f in flags if not f.startswith("--disable_types="))
    return (*rest, f"--disable_types={','.join(types)}") if types else rest


@dataclass(frozen=True)
class BuildSpec:
    """Everything that decides a build's output bytes: its cache key is a hash of this.

    ``source_id`` is a content hash of the ORT source and its dependency archives, ``toolchain`` the
    compiler's and CMake's versions (``ortbuild.identity``); neither holds a path or a user name, so two
    machines with the same inputs compute the same key.
    """

    ort_version: str
    variant: str
    config_text: str | None = None
    extra_flags: tuple[str, ...] = ()
    wheel: bool = False
    cmake_defines: tuple[str, ...] = field(default_factory=tuple)
    prune: tuple[str, ...] = ()  # source-transform levers (ortbuild.prune.LEVERS), sorted
    keep_transformers: tuple[str, ...] = ()  # with prune "optimizers": the transformer names to keep
    source_id: str = ""
    toolchain: str = ""
    toolchain_name: str = DEFAULT_TOOLCHAIN  # catalog.TOOLCHAINS: the compiler and linker (--toolchain)
    target: str | None = None  # a cross build's target (ortbuild.cross); None: a native build for this machine

    def __post_init__(self) -> None:
        from ortprune.ortbuild.prune import CONFIG_LEVERS, VTABLES_LEVER, check_levers

        v = variant(self.variant)
        toolchain(self.toolchain_name)
        if self.target is not None:
            from ortprune.ortbuild.cross import check_cross

            check_cross(self.target, self.toolchain_name, self.wheel, self.prune)
        object.__setattr__(self, "prune", check_levers((*v.prune, *self.prune)))
        object.__setattr__(self, "keep_transformers", tuple(sorted(set(self.keep_transformers))))
        if VTABLES_LEVER in self.prune and (self.toolchain_name != "clang" or "--enable_lto" not in self.extra_flags):
            raise BuildError(
                f"--prune {VTABLES_LEVER} needs --toolchain clang and --extra=--enable_lto: clang drops the "
                "unreachable virtual functions while optimizing the whole library at link time"
            )
        if not v.needs_config and any(lv in CONFIG_LEVERS for lv in self.prune):
            raise BuildError(
                f"--prune {','.join(lv for lv in self.prune if lv in CONFIG_LEVERS)} needs a config-built variant "
                f"(reduced, reduced-types), not {self.variant!r}"
            )
        schema_levers = [lv for lv in self.prune if lv in ("schemas", "optimizers")]
        if v.model_format == "ort" and schema_levers:
            raise BuildError(
                f"--prune {','.join(schema_levers)} does nothing in a minimal build: "
                "ORT compiles neither the graph transformers nor the ONNX schemas there (ORT format only)"
            )
        if "optimizers" in self.prune and not self.keep_transformers:
            raise BuildError(
                "--prune optimizers needs --keep-transformers NAMES: the transformers the models need "
                "(ortprune transformers --lib FULL_LIB MODEL... prints them)"
            )
        if self.keep_transformers and "optimizers" not in self.prune:
            raise BuildError("--keep-transformers only applies with --prune optimizers")
        if v.needs_config and self.config_text is None:
            raise BuildError(f"variant {self.variant!r} needs --config ops.config")
        if not v.needs_config and self.config_text is not None:
            raise BuildError(f"variant {self.variant!r} takes no --config (use reduced or reduced-types)")
        if v.needs_types and self.config_text is not None and not OpConfig.parse(self.config_text).has_type_info():
            raise BuildError(
                "variant 'reduced-types' needs a config with per-op type info (ortprune scan --types): "
                "without it the library is byte-identical to 'reduced'"
            )
        if "--disable_ml_ops" in (*v.flags, *self.extra_flags) and self.config_text is not None:
            ml = sorted(str(i) for i in OpConfig.parse(self.config_text) if i.domain == "ai.onnx.ml")
            if ml:
                raise BuildError(f"--disable_ml_ops drops the ai.onnx.ml operators this config needs: {', '.join(ml)}")
        bad = [f for f in self.extra_flags if f not in EXTRA_FLAGS and not f.startswith("--disable_types=")]
        if bad:
            raise BuildError(
                f"unsupported extra flag(s) {bad}; allowed: {', '.join(EXTRA_FLAGS)}, "
                f"--disable_types={','.join(DISABLE_TYPES)} (any of them)"
            )
        types = disabled_types(self.extra_flags)
        unknown = [t for t in types if t not in DISABLE_TYPES]
        if unknown or any(f == "--disable_types=" for f in self.extra_flags):
            raise BuildError(
                f"--disable_types takes {', '.join(DISABLE_TYPES)} (comma-separated), not {unknown or '[]'}"
            )
        object.__setattr__(self, "extra_flags", _normalize_extra(self.extra_flags))
        if types and self.config_text is not None:
            ops = {i.op for i in OpConfig.parse(self.config_text)}
            need = sorted(f"{op} (needs {t})" for t in types for op in _TYPE_OPS.get(t, set()) & ops)
            if need:
                raise BuildError(f"--disable_types drops a type this config's operators use: {', '.join(need)}")
        if self.wheel and self.variant == "minimal":
            raise BuildError("ORT cannot build Python bindings in a minimal build (build.py refuses)")

    @property
    def config_hash(self) -> str | None:
        return None if self.config_text is None else hashlib.sha256(self.config_text.encode()).hexdigest()[:16]

    @property
    def config_ops_hash(self) -> str | None:
        """Hash of the config's operator lines only: its comments (scan writes the models' paths there)
        do not change the library."""
        return None if self.config_text is None else config_ops_digest(self.config_text)

    def _options(self, config_hash: str | None) -> list[object]:
        parts: list[object] = [
            self.ort_version,
            self.variant,
            config_hash,
            sorted(self.extra_flags),
            self.wheel,
            sorted(self.cmake_defines),
        ]
        if self.prune:  # only then: legacy keys of builds without pruning stay what they were
            from ortprune.ortbuild.prune import TRANSFORM_VERSION

            parts += [list(self.prune), list(self.keep_transformers), TRANSFORM_VERSION]
            from ortprune.ortbuild.mlas_families import FAMILIES_LEVER, FAMILIES_VERSION

            if FAMILIES_LEVER in self.prune:  # only then: other pruned builds keep their keys
                parts += [["mlas-families", FAMILIES_VERSION]]
        if self.toolchain_name != DEFAULT_TOOLCHAIN:  # only then: gcc builds keep the keys they had
            parts += [["toolchain", self.toolchain_name]]
        if self.target is not None:  # only then: native builds keep the keys they had
            parts += [["target", self.target]]
        return parts

    def key(self) -> str:
        data = json.dumps([*self._options(self.config_ops_hash), self.source_id, self.toolchain])
        return f"{self.ort_version}-{self.variant}-{hashlib.sha256(data.encode()).hexdigest()[:12]}"

    def legacy_key(self) -> str:
        """The key before source and toolchain were part of it (10 hex digits, the whole config text);
        builds made then are found under it (``runner.find_cached``)."""
        data = json.dumps(self._options(self.config_hash))
        return f"{self.ort_version}-{self.variant}-{hashlib.sha256(data.encode()).hexdigest()[:10]}"


def config_ops_digest(config_text: str) -> str:
    """Hash of a config's operator lines only (comments and blank lines left out), 16 hex digits."""
    lines = [line.strip() for line in config_text.splitlines()]
    ops = "\n".join(line for line in lines if line and not line.startswith("#"))
    return hashlib.sha256(ops.encode()).hexdigest()[:16]


BASE_DEFINES = (
    "onnxruntime_BUILD_UNIT_TESTS=OFF",
    "onnxruntime_ENABLE_CPUINFO=OFF",
    "FLATBUFFERS_BUILD_FLATC=OFF",  # a host tool: ORT's flatbuffers headers are generated already
    "CMAKE_C_COMPILER_LAUNCHER=ccache",
    "CMAKE_CXX_COMPILER_LAUNCHER=ccache",
)


def build_py_args(
    spec: BuildSpec,
    build_dir: Path,
    config_path: Path | None = None,
    parallel: int | None = None,
    as_root: bool | None = None,
) -> list[str]:
    """Arguments for ``python tools/ci_build/build.py`` that configure (``--update``) the build.

    The compile itself runs ninja on the ``onnxruntime`` target only, so test tools are never built.
    """
    v = variant(spec.variant)
    if v.needs_config and config_path is None:
        raise BuildError(f"variant {spec.variant!r} needs a config file")
    args = [
        "--build_dir",
        str(build_dir),
        "--config",
        "MinSizeRel",
        "--build_shared_lib",
        "--parallel",
        str(parallel or os.cpu_count() or 2),
        "--skip_tests",
        "--skip_submodule_sync",
        "--compile_no_warning_as_error",
        "--cmake_generator",
        "Ninja",
        "--update",
    ]
    if as_root if as_root is not None else (hasattr(os, "geteuid") and os.geteuid() == 0):
        args.append("--allow_running_as_root")
    args += list(v.flags)
    if v.needs_config:
        args += ["--include_ops_by_config", str(config_path)]
    for flag in spec.extra_flags:
        if flag.startswith("--disable_types="):
            args += ["--disable_types", *disabled_types([flag])]
        elif flag not in args:
            args.append(flag)
    if spec.wheel:
        args.append("--build_wheel")
    args += ["--cmake_extra_defines", *BASE_DEFINES, *spec.cmake_defines]
    return args
