"""A deploy bundle: a pruned library with its models already optimized for it, so a first start is a warm one.

Made by :func:`ortprune.deploy.make_bundle` (``ortprune bundle``, ``ortprune slim --bundle``). Layout::

    bundle.json                      the manifest (:class:`Bundle`)
    lib/libonnxruntime.so.<version>  the library, with its soname and ``libonnxruntime.so`` as symlinks
    <model>/model.onnx | model.ort   optimized by the reference library (see below)
    <model>/tokenizer.json ...       the tokenizer files

What "optimized for the runtime that loads it" means, from ORT 1.21.0's ``graph_transformer_utils.cc``:
levels ``basic`` and ``extended`` rewrite the graph the same way on every x86-64 CPU (their only CPU-dependent
switch, ``avx2_precision_mode``, is off unless a session config asks for it); level ``all`` adds the NCHWc and
NHWC layout transformers, whose rewrites depend on the CPU MLAS finds (NCHWc block size 8 on AVX2, 16 on
AVX-512). So a bundle is optimized at ``extended`` (portable) unless its target CPU is stated
(``target_cpu="host"``: level ``all``, and the manifest records this CPU's features; another machine without
one of them is refused). A library that loads ONNX gets an optimized ``model.onnx`` (any client that loads
``model.onnx`` by name profits); a minimal build gets ``model.ort`` (it loads nothing else). Every model is
loaded at level ``disable``: nothing is left to optimize, and the optimizer's cost, which a MinSizeRel
build pays twice over, is gone from the first start.

``Session`` and ``TextEmbedding`` open a bundle (its directory, a model directory in it, or a model file in
it) in one call: the bundle's library by default, level ``disable``, pooling and normalization from the
manifest. They refuse, in one line, a bundle made for CPU features this machine lacks, and a library that
is not the one the bundle was made for (compared by GNU build id, or SHA-256 without one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ortprune.errors import OrtpruneError

MANIFEST = "bundle.json"
#: The manifest's format; a reader refuses another one.
BUNDLE_FORMAT = 1
#: The level whose rewrites are the same on every CPU of the architecture (see the module docstring).
PORTABLE_LEVEL = "extended"
#: The level used when the target CPU is stated (this host): its layout rewrites are CPU-specific.
HOST_LEVEL = "all"
#: Where the library goes inside a bundle.
LIB_DIR = "lib"
MODEL_FORMATS = ("onnx", "ort")


class BundleError(OrtpruneError):
    """A bundle that cannot be made, read or used here (other CPU features, another library, damaged)."""


@dataclass(frozen=True)
class BundleModel:
    """One model of a bundle; paths are relative to the bundle's root."""

    name: str
    file: str
    format: str  # "onnx" | "ort"
    sha256: str
    bytes: int
    source_sha256: str
    pooling: str
    normalize: bool
    tokenizer: tuple[str, ...] = ()
    max_abs_diff: float | None = None  # against the source model on the reference library at level all


@dataclass(frozen=True)
class Bundle:
    """A bundle's manifest (``bundle.json``), with the directory it was read from."""

    root: Path
    library: str  # relative path of the library file
    library_id: str  # "gnu-build-id:<hex>" or "sha256:<hex>"
    library_sha256: str
    library_version: str
    library_bytes: int
    soname: str | None
    level: str  # the level the models were optimized at
    cpu_features: tuple[str, ...]  # the CPU features that level's rewrites assumed; () = any CPU of the arch
    machine: str
    made_by: dict[str, str]  # the reference library that optimized the models: version, library_id
    models: tuple[BundleModel, ...]
    consumers: dict[str, str] = field(default_factory=dict)
    load_level: str = "disable"

    @property
    def library_path(self) -> Path:
        return self.root / self.library

    def model(self, name: str | None = None) -> BundleModel:
        """The model called ``name``, or the only one."""
        if name is None:
            if len(self.models) == 1:
                return self.models[0]
            names = ", ".join(m.name for m in self.models)
            raise BundleError(f"the bundle holds several models ({names}): open <bundle>/<name>", self.root)
        for m in self.models:
            if m.name == name:
                return m
        raise BundleError(f"no model {name!r} in the bundle (it has {', '.join(m.name for m in self.models)})",
                          self.root)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["root"]
        return {"ortprune_bundle": BUNDLE_FORMAT, **d}

    @classmethod
    def read(cls, root: str | Path) -> Bundle:
        """The manifest of the bundle at ``root``; BundleError naming the file for anything wrong with it."""
        root = Path(root)
        path = root / MANIFEST
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BundleError(f"cannot read the bundle manifest: {e}", path) from None
        if not isinstance(d, dict) or d.get("ortprune_bundle") != BUNDLE_FORMAT:
            raise BundleError(f"not an ortprune bundle manifest of format {BUNDLE_FORMAT}", path)
        try:
            d.pop("ortprune_bundle")
            models = tuple(BundleModel(**{**m, "tokenizer": tuple(m.get("tokenizer", ()))}) for m in d.pop("models"))
            return cls(root=root, models=models, cpu_features=tuple(d.pop("cpu_features")), **d)
        except (TypeError, KeyError, AttributeError) as e:
            raise BundleError(f"damaged bundle manifest ({e})", path) from None

    # -- using it -------------------------------------------------------------------------------------
    def check_cpu(self, have: Sequence[str] | None = None) -> None:
        """BundleError unless this CPU has every feature the models' rewrites assumed."""
        import platform as _platform

        from ortprune.platform import cpu_flags

        if self.machine and self.machine != _platform.machine():
            raise BundleError(f"made for {self.machine}, not this {_platform.machine()} machine", self.root)
        have = tuple(cpu_flags() if have is None else have)
        missing = [f for f in self.cpu_features if f not in have]
        if missing:
            raise BundleError(
                f"its models were optimized for CPU features this CPU lacks ({', '.join(missing)}; it has "
                f"{', '.join(have) or 'none of note'}): make the bundle on this kind of CPU, or portable "
                f"(without --target-cpu)",
                self.root,
            )

    def check_library(self, lib: str | os.PathLike[str] | None = None) -> Path:
        """The library to load: ``lib`` or the bundle's own, checked to be the library the bundle was made
        for (same GNU build id, or same SHA-256 without one)."""
        path = self.library_path if lib is None else Path(lib)
        got = library_id(path)
        if got != self.library_id:
            what = "its library was replaced" if lib is None else "another library was given"
            raise BundleError(
                f"{what}: the bundle was made for ONNX Runtime {self.library_version} with {self.library_id}, "
                f"{path} has {got}",
                self.root,
            )
        return path

    def open(self, model: BundleModel, lib: Any = None) -> tuple[Path, Any]:
        """(model file, library) checked for this machine: ``lib`` (a path or a ``Library``) or the bundle's."""
        self.check_cpu()
        given = getattr(lib, "path", lib)  # a runtime.Library has .path
        path = self.check_library(given)
        file = self.root / model.file
        try:
            size = file.stat().st_size
        except OSError as e:
            raise BundleError(f"the bundle's model is missing: {e.strerror}", file) from None
        if size != model.bytes:  # a stat, not a 90 MB hash: the file is used in place (see Session)
            raise BundleError(f"the bundle's model was changed ({size:,} B, the manifest says {model.bytes:,} B)", file)
        return file, (lib if lib is not None else path)


def library_id(path: str | Path) -> str:
    """The library's GNU build id (program headers only: no 20 MB read), else its SHA-256."""
    from ortprune.cache import file_digest
    from ortprune.elf import ElfFile
    from ortprune.errors import ElfError

    try:
        with ElfFile(path, sections=False) as elf:
            build_id = elf.build_id
    except (ElfError, OSError) as e:
        raise BundleError(f"not a usable library: {e}", path) from None
    if build_id:
        return f"gnu-build-id:{build_id}"
    return f"sha256:{file_digest(path, 64)}"


def find(path: str | os.PathLike[str]) -> tuple[Bundle, BundleModel] | None:
    """The bundle and model ``path`` names (the bundle directory with one model, a model directory in it,
    or a model file in it), or None when ``path`` is none of a bundle's models. Costs a few ``stat`` calls
    for a path outside a bundle."""
    p = Path(path)
    if (p / MANIFEST).is_file():
        b = Bundle.read(p)
        return b, b.model()
    for root in (p.parent, p.parent.parent):
        if (root / MANIFEST).is_file():
            b = Bundle.read(root)
            rel = os.path.relpath(os.path.abspath(p), os.path.abspath(root))
            for m in b.models:
                if rel in (m.file, m.name, str(Path(m.file).parent)):
                    return b, m
            return None  # another file beside a bundle: loaded as any file
    return None
