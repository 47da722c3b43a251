"""Which real programs can load a given libonnxruntime, and the one line that points each at it.

The facts about each consumer live in :data:`CONSUMERS` (one table); the facts about a library come from
loading it (:func:`library_facts`): the version it reports, the C API level it serves, whether it
accepts graph optimization level 3 (``ORT_ENABLE_LAYOUT``, which ``ort`` >= 2.0.0-rc.11 sends for
``Level3``), its SONAME. Sources: shared/notes/fastembed-and-c-api.md (ort rc.13 ``src/lib.rs`` and
``ort-sys`` version features, fastembed-rs 6.0.0 ``Cargo.toml``), and the onnxruntime-node package
(its binding's DT_NEEDED/RUNPATH, checked by tests/runtime/test_consumers.py on the real npm package).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ortprune.errors import RuntimeLoadError
from ortprune.runtime import _capi
from ortprune.runtime.library import LIBRARY_ENV, Library, parse_version

#: ``GraphOptimizationLevel`` ORT_ENABLE_LAYOUT: newer than ORT 1.21 (which rejects it).
ORT_ENABLE_LAYOUT = 3


@dataclass(frozen=True)
class Consumer:
    """One program that loads libonnxruntime at run time.

    ``min_api``: the C API level it asks for (``GetApi(n)``; a library serves every level up to its
    minor version) and so the oldest library minor it accepts; ``exact_minor``: it must be this release
    (a binding compiled against one version's headers); ``needs_layout_level``: it sets graph
    optimization level 3. ``how`` is the line that points it at a library (``{lib}``: the file,
    ``{version}``: the library's version)."""

    name: str
    loads: str
    how: str
    min_api: int | None = None
    exact_minor: bool = False
    needs_layout_level: bool = False
    separate_artifact: bool = False  # served by another build output, not by this .so
    source: str = ""
    ortprune_runtime: bool = False  # calls only the C API functions ``--prune c-api`` keeps


CONSUMERS: tuple[Consumer, ...] = (
    Consumer(
        "fastembed-rs 6.0.0 (ort 2.0.0-rc.13, features ort-load-dynamic + api-24)",
        "dlopen of $ORT_DYLIB_PATH (else the unversioned libonnxruntime.so on the loader path); "
        "requires version >= 1.24, GetApi(24), and sets optimization level 3",
        f'{LIBRARY_ENV}={{lib}} cargo run  # fastembed = {{{{ version = "6", default-features = false, '
        'features = ["ort-load-dynamic", "hf-hub-native-tls"] }}',
        min_api=24,
        needs_layout_level=True,
        source="fastembed-rs Cargo.toml @6.0.0; ort rc.13 src/lib.rs (version check, GetApi)",
    ),
    Consumer(
        "ort 2.0.0-rc.13 crate, load-dynamic, default features (api-27)",
        "dlopen of $ORT_DYLIB_PATH; requires version >= 1.27",
        f"{LIBRARY_ENV}={{lib}} ./your-app",
        min_api=27,
        needs_layout_level=True,
        source="ort rc.13 Cargo.toml defaults, ort-sys/src/version.rs",
    ),
    Consumer(
        "ort 2.0.0-rc.13 crate, load-dynamic, default-features = false (api-17)",
        "dlopen of $ORT_DYLIB_PATH; requires version >= 1.17 (GraphOptimizationLevel::Level3 also needs "
        "a library that knows level 3)",
        f"{LIBRARY_ENV}={{lib}} ./your-app",
        min_api=17,
        source="ort-sys/src/version.rs: 17 + one per api-N feature",
    ),
    Consumer(
        "ort 2.0.0-rc.10 crate, load-dynamic, default features (api-22, ONNX Runtime 1.22)",
        "dlopen of $ORT_DYLIB_PATH; requires version >= 1.22",
        f"{LIBRARY_ENV}={{lib}} ./your-app",
        min_api=22,
        source="ort rc.10 release (ONNX Runtime 1.22)",
    ),
    Consumer(
        "onnxruntime-node@{version} (npm)",
        "its N-API binding needs libonnxruntime.so.1, found through LD_LIBRARY_PATH before its RUNPATH "
        "($ORIGIN: the copy it ships); compiled against one release's headers, so use the same version",
        "ln -s {lib} DIR/libonnxruntime.so.1 && LD_LIBRARY_PATH=DIR node app.js  # npm i onnxruntime-node@{version}",
        exact_minor=True,
        source="npm onnxruntime-node: bin/napi-v*/linux/x64/onnxruntime_binding.node",
    ),
    Consumer(
        "Python wheel from `ortprune build --wheel`",
        "the wheel carries its own pruned runtime (onnxruntime_pybind11_state); it does not load this file: "
        "build it from the same config with --wheel",
        "pip install <build dir>/onnxruntime-{version}-*.whl  # then import onnxruntime as usual",
        separate_artifact=True,
        source="ORT tools/ci_build/build.py --build_wheel",
    ),
    Consumer(
        "ortprune.runtime / ortprune.embed (this package, ctypes)",
        f"ctypes.CDLL of lib=... or ${LIBRARY_ENV}; requires version >= 1.{_capi.MIN_API_VERSION}",
        f'{LIBRARY_ENV}={{lib}} python app.py  # or TextEmbedding(..., lib="{{lib}}")',
        min_api=_capi.MIN_API_VERSION,
        source="ortprune.runtime._capi.MIN_API_VERSION",
        ortprune_runtime=True,
    ),
)


@dataclass(frozen=True)
class LibraryFacts:
    path: str
    version: str
    api_level: int  # the highest GetApi(n) that answers (ORT serves 1..minor)
    soname: str | None
    accepts_layout_level: bool  # SetSessionGraphOptimizationLevel(3) succeeds
    providers: tuple[str, ...] = ()
    c_api_pruned: bool = False  # built with --prune c-api: only ortprune's runtime's C API functions work


@dataclass(frozen=True)
class Verdict:
    consumer: str
    loads: str
    works: bool | None  # None: not this file's business (a separate build output serves it)
    why: str
    how: str


@dataclass
class ConsumersReport:
    library: LibraryFacts
    verdicts: list[Verdict] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        library = asdict(self.library) | {"providers": list(self.library.providers)}
        return {"library": library, "consumers": [asdict(v) for v in self.verdicts]}


def _soname(path: str) -> str | None:
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as f:
            for section in ELFFile(f).iter_sections():
                if isinstance(section, DynamicSection):
                    for tag in section.iter_tags():
                        if tag.entry.d_tag == "DT_SONAME":
                            return str(getattr(tag, "soname", None) or "") or None
    except (OSError, ELFError):
        return None
    return None


def library_facts(path: str | os.PathLike[str]) -> LibraryFacts:
    """Load ``path`` and ask it: version, C API level, level-3 support, SONAME, providers."""
    lib = Library(path)
    _, minor, _ = parse_version(lib.version)
    base_fn = lib._dll.OrtGetApiBase
    base = base_fn()
    level = minor if base.contents.GetApi(minor) else lib.api_version
    opts = ctypes.c_void_p()
    lib.check(lib.f.CreateSessionOptions(ctypes.byref(opts)), "creating session options")
    try:
        status = lib.f.SetSessionGraphOptimizationLevel(opts, ORT_ENABLE_LAYOUT)
        accepts = not status
        if status:
            lib.f.ReleaseStatus(status)
    finally:
        lib.f.ReleaseSessionOptions(opts)
    return LibraryFacts(lib.path, lib.version, level, _soname(lib.path), accepts, tuple(lib.available_providers()),
                        _capi.c_api_pruned(lib.path))  # fmt: skip


def verdicts(facts: LibraryFacts) -> list[Verdict]:
    """Each consumer of :data:`CONSUMERS` against ``facts``: does it load this library, why, and how."""
    lib = facts.path
    out = []
    for c in CONSUMERS:
        problems = []
        if c.min_api is not None and facts.api_level < c.min_api:
            problems.append(f"needs C API {c.min_api} (ONNX Runtime >= 1.{c.min_api}); this library serves "
                            f"{facts.api_level} (build one: ortprune build --source git:v1.{c.min_api}.x)")  # fmt: skip
        if c.needs_layout_level and not facts.accepts_layout_level:
            problems.append("sets graph optimization level 3 (ORT_ENABLE_LAYOUT), which this library rejects")
        if facts.c_api_pruned and not c.ortprune_runtime and not c.separate_artifact:
            problems.append("calls C API functions this library was built without (--prune c-api keeps only "
                            "those ortprune's runtime calls; the others return ORT_NOT_IMPLEMENTED)")  # fmt: skip
        if c.exact_minor and facts.soname not in (None, "libonnxruntime.so.1"):
            problems.append(f"loads libonnxruntime.so.1, this library's SONAME is {facts.soname}")
        why = "; ".join(problems) or (
            f"same release: onnxruntime-node@{facts.version}" if c.exact_minor else f"C API {facts.api_level} served"
        )
        if c.separate_artifact:
            why = "not loaded from this file"
        name = c.name.format(version=facts.version)
        how = c.how.format(lib=lib, version=facts.version)
        out.append(Verdict(name, c.loads, None if c.separate_artifact else not problems, why, how))
    return out


def check_consumers(path: str | os.PathLike[str]) -> ConsumersReport:
    """The consumers report of the library at ``path`` (RuntimeLoadError if it is not an ONNX Runtime)."""
    if not Path(path).exists():
        raise RuntimeLoadError("no such file", str(path))
    facts = library_facts(path)
    return ConsumersReport(facts, verdicts(facts))
