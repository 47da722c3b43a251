"""Run ORT's own build (``tools/ci_build/build.py`` + ninja): cached, resumable, with progress and a manifest."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from ortprune._io import atomic_write_text, commit_staged, staged_outputs
from ortprune.cache import cache_dir
from ortprune.elf import is_system_library
from ortprune.errors import BuildError
from ortprune.opconfig import OpConfig
from ortprune.ortbuild import distcc as distcc_mod
from ortprune.ortbuild.cross import ResolvedCross
from ortprune.ortbuild.cross import resolve_for as resolve_cross
from ortprune.ortbuild.deps import DepsDir, apply_deps, check_wheel_headers, missing_system_headers
from ortprune.ortbuild.identity import first_line, toolchain_id
from ortprune.ortbuild.mlas import PLATFORM_CPP
from ortprune.ortbuild.mlas_families import FAMILIES_LEVER
from ortprune.ortbuild.prune import (
    CONFIG_LEVERS,
    PCH_LEVER,
    PruneReport,
    prepare_sources,
    prune_deps,
    restore_for,
    transient_ops,
)
from ortprune.ortbuild.toolchain import ResolvedToolchain
from ortprune.ortbuild.toolchain import resolve as resolve_toolchain
from ortprune.ortbuild.variants import BuildSpec, build_py_args
from ortprune.platform import host_target
from ortprune.results import BuildResult

TAIL_LINES = 40
#: How many times a link that misses a dropped kernel source gets sources back before the build fails.
MAX_LINK_RESTORES = 3
_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")


def _load_state(path: Path) -> dict[str, Any]:
    """The build dir's resume state; a corrupt one is named with the fix rather than trusted."""
    if not path.exists():
        return {"runs": []}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BuildError(f"corrupt build state ({e}); delete it to configure this build again", path) from None
    if not isinstance(state, dict) or not isinstance(state.get("runs", []), list):
        raise BuildError("corrupt build state (not a JSON object with a runs list); delete it to start over", path)
    state.setdefault("runs", [])
    return state


def ort_version_of(source: Path) -> str:
    try:
        return (source / "VERSION_NUMBER").read_text().strip()
    except FileNotFoundError:
        raise BuildError("not an ONNX Runtime source tree (no VERSION_NUMBER)", source) from None


#: URL schemes ccache's remote_storage speaks (ccache >= 4.4; redis needs a ccache built with hiredis).
CCACHE_REMOTE_SCHEMES = ("redis://", "redis+unix:", "http://", "https://", "file:")


def build_env(ccache_remote: str | None = None, distcc: str | None = None) -> dict[str, str]:
    """PATH with this interpreter's bin first (cmake<4 and ninja from PyPI), and one shared ccache,
    backed by ccache's own remote storage when ``ccache_remote`` is given (teammates share objects), whose
    misses compile on the ``distcc`` hosts when given (``ortbuild.distcc``; checked here, before any build)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("CCACHE_DIR", str(cache_dir("ccache")))
    # Paths under the cache root are hashed relative to the build dir, so variants (and machines whose
    # cache root differs) share hits.
    env.setdefault("CCACHE_BASEDIR", str(cache_dir()))
    env.setdefault("CCACHE_NOHASHDIR", "true")
    env.setdefault("CCACHE_MAXSIZE", "20G")
    # the ``pch`` lever: ccache caches gcc's precompiled headers and the objects that use them only when told
    # that __DATE__/__TIME__ and defines ahead of the header do not matter, and that a .gch made a moment
    # ago may be hashed (ccache manual, "Precompiled headers")
    wanted = ("pch_defines", "time_macros", "include_file_mtime", "include_file_ctime")
    have = [s for s in env.get("CCACHE_SLOPPINESS", "").split(",") if s]
    env["CCACHE_SLOPPINESS"] = ",".join([*have, *(s for s in wanted if s not in have)])
    # every hit hashes the target's .gch (up to 340 MB): the inode cache hashes it once per build, not per
    # object (a second config's build: 121 -> 28 CPU-s, measured)
    env.setdefault("CCACHE_INODECACHE", "true")
    if ccache_remote:
        if not ccache_remote.startswith(CCACHE_REMOTE_SCHEMES):
            raise BuildError(
                f"--ccache-remote must be a ccache remote_storage URL ({', '.join(CCACHE_REMOTE_SCHEMES)}...), "
                f"got {ccache_remote!r}"
            )
        env["CCACHE_REMOTE_STORAGE"] = ccache_remote
    if distcc is not None:
        env.update(distcc_mod.distcc_env(distcc, env["PATH"]))
    return env


def check_tools(env: dict[str, str], cxx: str = "c++") -> tuple[str, str]:
    """The compiler's (``cxx``) and CMake's versions; BuildError with the fix when a tool is missing or unusable."""
    problems = []
    cmake = first_line([shutil.which("cmake", path=env["PATH"]) or "cmake", "--version"])
    m = re.search(r"(\d+)\.(\d+)", cmake)
    if not m or not ((3, 28) <= (int(m[1]), int(m[2])) < (4, 0)):
        problems.append(f"CMake >=3.28,<4 is needed (found: {cmake or 'none'}): pip install 'cmake<4'")
    if not shutil.which("ninja", path=env["PATH"]):
        problems.append("ninja is needed: pip install ninja")
    if not shutil.which("ccache", path=env["PATH"]):
        problems.append("ccache is needed: apt-get install ccache")
    compiler = first_line([cxx, "--version"])
    if not compiler:
        problems.append(f"a C++ compiler is needed ({cxx}): apt-get install g++")
    missing = missing_system_headers()
    if missing:
        problems.append(f"headers ORT finds on the system are missing: apt-get install {' '.join(missing)}")
    if problems:
        raise BuildError("cannot build ONNX Runtime here:\n  " + "\n  ".join(problems))
    return compiler, cmake


def host_protoc(source: Path, path: str) -> str | None:
    """A ``protoc`` on ``path`` of the protobuf release ``source`` pins (Debian 12's protobuf-compiler is 3.21.12
    = ORT 1.21's v21.12; ``ortbuild.cross`` reads both): ORT then builds no protoc, 86 objects of a host tool
    that never ships. None when there is none of that release (ORT builds its own, as before)."""
    from ortprune.ortbuild.cross import pinned_protobuf, protoc_release
    from ortprune.ortbuild.depsmap import read_deps_txt

    want, exe = pinned_protobuf(read_deps_txt(source)[0]), shutil.which("protoc", path=path)
    if not want or exe is None:
        return None
    try:
        return exe if protoc_release(exe)[0] == want else None
    except BuildError:
        return None


ProgressFn = Callable[[int, int, str], None]


def run_logged(cmd: list[str], log: Path, env: dict[str, str], cwd: Path, on_line: ProgressFn | None = None) -> None:
    """Run ``cmd`` appending all output to ``log``; on failure raise BuildError with the last lines."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with log.open("a", encoding="utf-8", errors="replace") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                f.write(line)
                tail.append(line.rstrip("\n"))
                m = _PROGRESS.match(line)
                if m and on_line:
                    on_line(int(m[1]), int(m[2]), line[m.end() :].strip())
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise
        code = proc.wait()
    if code != 0:
        raise BuildError(
            f"{Path(cmd[1] if cmd[0] == sys.executable else cmd[0]).name} failed (exit {code}); full log: {log}\n"
            + "\n".join(tail)
        )


def ensure_wheel_datasets(source: Path) -> None:
    """Debian's dfsg tarball drops ORT's example models (onnxruntime/python/datasets/*.onnx); the wheel's
    data-copy step then has no files and fails. Write the documented ``mul_1.onnx`` (Y = X * [1,2,3,4,5,6])."""
    datasets = source / "onnxruntime" / "python" / "datasets"
    if not datasets.is_dir() or any(datasets.glob("*.onnx")) or any(datasets.glob("*.pb")):
        return
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(1, 7, dtype=np.float32).reshape(3, 2), "W")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["X", "W"], ["Y"])],
        "mul_1",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, 2])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)])
    model.ir_version = 3
    onnx.save(model, datasets / "mul_1.onnx")


def pybind11_cmake_dir() -> str:
    """pybind11's CMake package from the PyPI wheel: ORT's CMake finds it instead of downloading from GitHub."""
    try:
        import pybind11
    except ImportError:
        raise BuildError(
            "--wheel needs pybind11 >= 2.13 for the Python bindings: pip install 'pybind11>=2.13'"
        ) from None
    return str(pybind11.get_cmake_dir())


def dt_needed(lib: Path) -> list[str]:
    from ortprune.elf import ElfFile

    with ElfFile(lib) as elf:
        return list(elf.needed)


def _usable(manifest_path: Path) -> BuildResult | None:
    if not manifest_path.is_file():
        return None
    cached = BuildResult.load(manifest_path)
    lib = Path(cached.library)
    return cached if lib.is_file() and lib.stat().st_size == cached.library_bytes else None


def spec_of(result: BuildResult) -> BuildSpec:
    """The spec a manifest records (its key is recomputed from it: a manifest cannot claim another key)."""
    return BuildSpec(result.ort_version, result.variant, result.config, tuple(result.extra_flags),
                     "--build_wheel" in result.build_py_args, prune=tuple(result.prune),
                     keep_transformers=tuple(result.keep_transformers), source_id=result.source_id,
                     toolchain=result.toolchain, toolchain_name=result.toolchain_name,
                     target=result.target)  # fmt: skip


def find_cached(spec: BuildSpec, source: Path | None = None) -> BuildResult | None:
    """The finished build of ``spec`` in the local cache, or None.

    Builds made before the key held the source and toolchain (manifests without ``source_id``) are used
    when their recorded inputs, completed with this spec's source identity (if made from the same source
    tree) and their own compiler and CMake versions, give this key: first the one under
    ``spec.legacy_key()``, else any (the old key hashed the config's comments too). Such a build is not
    moved or rewritten (another process may be using it); the result carries the new key.
    """
    found = _usable(cache_dir("builds", spec.key(), "manifest.json"))
    if found is not None or not spec.toolchain:
        return found
    try:
        machine = str(json.loads(spec.toolchain)[1])
    except (ValueError, IndexError, TypeError):
        return None  # not a toolchain_id: no legacy build can match it
    exact = cache_dir("builds", spec.legacy_key(), "manifest.json")
    pattern = f"{spec.ort_version}-{spec.variant}-*/manifest.json"
    others = sorted(p for p in cache_dir("builds").glob(pattern) if p != exact)
    for manifest in [exact, *others]:
        try:
            old = _usable(manifest)
        except BuildError:
            continue
        if old is None or old.source_id or (source is not None and Path(old.source) != source):
            continue
        old.source_id, old.toolchain = spec.source_id, toolchain_id(old.compiler, old.cmake, machine)
        if spec_of(old).key() == spec.key():
            old.key = spec.key()
            return old
    return None


@dataclasses.dataclass
class _Tree:
    """A build directory made ready for configuring: its build.py arguments and resume state."""

    bdir: Path
    args: list[str]
    state: dict[str, Any]
    prune_report: PruneReport | None
    prune_config: OpConfig | None
    added: tuple[tuple[str, str, int], ...]
    source: Path

    @property
    def config_dir(self) -> Path:
        return self.bdir / "MinSizeRel"

    @property
    def logfile(self) -> Path:
        return self.bdir / "build.log"

    @property
    def state_path(self) -> Path:
        return self.bdir / "state.json"


def _prepare(
    spec: BuildSpec,
    source: Path,
    deps: DepsDir | None,
    jobs: int | None,
    tools: ResolvedToolchain,
    cross: ResolvedCross | None = None,
    distcc: bool = False,
) -> _Tree:
    """The build directory of ``spec`` with its config copy and generated sources, and the build.py arguments.
    ``distcc``: the compiles go to distcc helpers, so the ``pch`` lever's headers are not precompiled: a
    helper builds a ``.gch`` from preprocessed text, which keeps no macro (include guards included), and every
    object using it then fails with redefinitions -- and ccache, which does not hash the prefix, would hand
    that ``.gch`` to later local builds."""
    bdir = cache_dir("builds", spec.key())
    bdir.mkdir(parents=True, exist_ok=True)
    state = _load_state(bdir / "state.json")
    if deps is not None:
        apply_deps(source, deps)
    cfg_copy = None
    if spec.config_text is not None:
        cfg_copy = bdir / "ops.config"
        if not cfg_copy.exists() or cfg_copy.read_text() != spec.config_text:
            atomic_write_text(cfg_copy, spec.config_text)
    defines = tuple(spec.cmake_defines) + (tuple(deps.cmake_defines()) if deps else ()) + tuple(tools.cmake_defines())
    if spec.wheel:
        ensure_wheel_datasets(source)
        defines += (f"pybind11_project_DIR={pybind11_cmake_dir()}",)  # FetchContent names it pybind11_project
    prune_report, prune_config = None, None
    added: tuple[tuple[str, str, int], ...] = ()
    if spec.prune:
        from ortprune.ortbuild.added_ops import ort_added_ops

        if any(lv in CONFIG_LEVERS for lv in spec.prune):
            prune_config = OpConfig.parse(spec.config_text or "", cfg_copy)
        if "schemas" in spec.prune:  # the schemas of ops ORT itself may insert stay registered
            added = ort_added_ops(source) + transient_ops(source, spec.prune, spec.keep_transformers)
        prune_defines, prune_report = _prepare_sources(spec, source, bdir, state, prune_config, added)
        defines += tuple(prune_defines)
    if distcc and PCH_LEVER in spec.prune:
        defines += ("ORTPRUNE_NO_PCH=ON",)  # part of the configure arguments: switching distcc reconfigures
    if cross is not None:  # a cross build: the toolchain file, and a host protoc (the target's cannot run here)
        from ortprune.ortbuild.cross import check_protoc
        from ortprune.ortbuild.depsmap import read_deps_txt

        check_protoc(cross.protoc, *read_deps_txt(source))
        toolchain_file = bdir / "cross.toolchain.cmake"
        if not toolchain_file.exists() or toolchain_file.read_text() != cross.toolchain_file():
            atomic_write_text(toolchain_file, cross.toolchain_file())
        defines += (f"CMAKE_TOOLCHAIN_FILE={toolchain_file}",)
    protoc = cross.protoc if cross is not None else host_protoc(source, build_env()["PATH"])
    if protoc:  # the same protoc release writes the same .pb.cc: the library does not change
        defines += (f"ONNX_CUSTOM_PROTOC_EXECUTABLE={protoc}",)
    full_spec = dataclasses.replace(spec, cmake_defines=defines)
    args = build_py_args(full_spec, bdir, cfg_copy, parallel=jobs)
    return _Tree(bdir, args, state, prune_report, prune_config, added, source)


def _prepare_sources(
    spec: BuildSpec,
    source: Path,
    bdir: Path,
    state: dict[str, Any],
    config: OpConfig | None,
    added: tuple[tuple[str, str, int], ...],
) -> tuple[list[str], PruneReport]:
    """``prune.prepare_sources`` for ``spec`` in ``bdir``, with what the build's earlier links asked back (its
    state) and, with the ``sources`` lever, the release's unpulled archive members (``ortbuild.members``)."""
    from ortprune.ortbuild import members  # lazily: ``python -m ortprune.ortbuild.members`` imports this package

    entries: list[str] = []
    if "sources" in spec.prune:
        back = set(state.get("restored_members", []))
        listed = members.load(spec.ort_version, spec.target or host_target(), spec.toolchain_name)
        entries = [e for e in listed if e not in back]
    config_dir = bdir / "MinSizeRel"
    defines, report = prepare_sources(source, bdir, spec.prune, config, spec.keep_transformers, added,
                                      state.get("restored_sources", []),
                                      [members.resolve(e, source, config_dir) for e in entries],
                                      state.get("mlas_families_drop"))  # fmt: skip
    report.members_dropped, report.members_restored = entries, sorted(state.get("restored_members", []))
    return defines, report


def _restore_sources(tree: _Tree, spec: BuildSpec, log: Callable[[str], None], everything: bool = False) -> bool:
    """After a failed ninja run: when the link misses symbols of dropped kernel sources or unpulled archive
    members, put those back (recorded in the build's state, so a resumed build keeps them) and rewrite the
    overlay; ninja re-runs CMake for it. When no dropped file can be named for a missing symbol, or
    ``everything`` (the last try), every dropped member comes back at once. False when the failure is anything
    else (nothing dropped, or no undefined reference)."""
    from ortprune.ortbuild import members

    report = tree.prune_report
    if report is None or not (report.sources_dropped or report.members_dropped):
        return False
    with tree.logfile.open("rb") as f:
        f.seek(max(0, tree.logfile.stat().st_size - (1 << 20)))
        tail = f.read().decode("utf-8", "replace").rsplit("\n$ ", 1)[-1]
    if "undefined reference to" not in tail and "undefined symbol: " not in tail:  # GNU ld, lld
        return False
    kernels = {tree.source / r: r for r in report.sources_dropped}
    entries = {members.resolve(e, tree.source, tree.config_dir): e for e in report.members_dropped}
    back = restore_for(tail, [*kernels, *entries])
    if entries and (everything or not back):  # a symbol of no file restore_for can name: every member back
        back += [f for f in entries if f not in back]
    if not back:
        return False
    state = tree.state
    for key, dropped in (("restored_sources", kernels), ("restored_members", entries)):
        state[key] = sorted({*state.get(key, []), *(dropped[f] for f in back if f in dropped)})
    atomic_write_text(tree.state_path, json.dumps(state))
    names = [f.name for f in back if f in kernels]
    n_members = sum(f in entries for f in back)
    log("the link needs " + "; ".join(
        ([f"{len(names)} dropped kernel source(s) back: {', '.join(names)}"] if names else [])
        + ([f"{n_members} source(s) of unpulled archive members back"] if n_members else [])))  # fmt: skip
    _, tree.prune_report = _prepare_sources(spec, tree.source, tree.bdir, state, tree.prune_config, tree.added)
    atomic_write_text(tree.bdir / "prune.json", json.dumps(tree.prune_report.summary(), indent=2) + "\n")
    return True


def _apply_mlas_families(
    tree: _Tree, spec: BuildSpec, env: dict[str, str], ar: str, log: Callable[[str], None], ninja: Callable[[], None]
) -> None:
    """``--prune mlas-families`` after a successful link: decide from that link which platform-table fields
    no linked MLAS object reads (``ortbuild.mlas_families``), rewrite the generated platform.cpp without them
    and build again (one recompile, one link); repeat on the new link until the decision holds (dropping
    only takes kernels away, so it settles at once). The decision is kept in the build's state."""
    from ortprune.ortbuild.mlas import cut_platform, mlas_ceiling, read_source
    from ortprune.ortbuild.mlas_families import decide_in_build

    for _ in range(4):
        path, base = read_source(tree.source, PLATFORM_CPP)
        ceiling = mlas_ceiling(spec.prune)
        if ceiling is not None:
            base = cut_platform(base, ceiling, path)[0]
        decision, cut = decide_in_build(tree.source, tree.config_dir, base, env, ar)
        drop = sorted(decision.drop)
        settled = tree.state.get("mlas_families_drop") == drop
        tree.state["mlas_families_drop"] = drop
        atomic_write_text(tree.state_path, json.dumps(tree.state))
        _, tree.prune_report = _prepare_sources(spec, tree.source, tree.bdir, tree.state, tree.prune_config,
                                                tree.added)  # fmt: skip
        if tree.prune_report.mlas_families is not None:
            tree.prune_report.mlas_families.needed = cut.needed
        atomic_write_text(tree.bdir / "prune.json", json.dumps(tree.prune_report.summary(), indent=2) + "\n")
        if settled:
            return
        log(f"mlas-families: {len(drop)} platform-table field(s) no linked MLAS object reads are dropped; relinking")
        ninja()
    raise BuildError("mlas-families: the platform-table fields to drop changed on every link", tree.bdir)


def _configure(tree: _Tree, spec: BuildSpec, source: Path, env: dict[str, str], log: Callable[[str], None]) -> None:
    """``build.py --update`` unless this tree is configured with the same arguments; then the transforms
    that work on what configure extracted."""
    args_hash = hashlib.sha256(json.dumps(tree.args).encode()).hexdigest()
    if tree.state.get("configured") != args_hash or not (tree.config_dir / "build.ninja").exists():
        log(f"configuring {tree.bdir.name} (build.py --update) ...")
        run_logged([sys.executable, str(source / "tools/ci_build/build.py"), *tree.args], tree.logfile, env, source)
        tree.state["configured"] = args_hash
        atomic_write_text(tree.state_path, json.dumps(tree.state))
    if tree.prune_report is not None:  # configure extracted onnx into _deps/: cut its schema headers there
        report = prune_deps(tree.config_dir, spec.prune, tree.prune_config, tree.added, tree.prune_report)
        atomic_write_text(tree.bdir / "prune.json", json.dumps(report.summary(), indent=2) + "\n")


def _configured(
    spec: BuildSpec,
    source: Path,
    deps: DepsDir | None,
    jobs: int | None,
    log: Callable[[str], None],
    distcc: str | None = None,
) -> tuple[_Tree, dict[str, str]]:
    """``spec``'s own build directory, configured as ``build`` would (which later reuses all of it)."""
    env = build_env(None, distcc)
    tools = resolve_toolchain(spec.toolchain_name, env["PATH"])
    cross = resolve_cross(spec.target, env["PATH"])
    check_tools(env, cross.cxx if cross else tools.cxx)
    distcc_mod.check_helpers(env, cross.cxx if cross else tools.cxx, log)
    tree = _prepare(spec, source, deps, jobs, tools, cross, distcc_mod.uses_distcc(env))
    _configure(tree, spec, source, env, log)
    return tree, env


class ColdSteps(NamedTuple):
    """What a cold build of one spec runs: the sources it compiles and how many commands in all."""

    compiles: list[str]  # relative to the ORT tree or to ``_deps/``
    commands: int  # every ninja command of the ``onnxruntime`` target: compiles, archives, links


def compile_steps(
    spec: BuildSpec, source: Path, deps: DepsDir | None = None, log: Callable[[str], None] = print
) -> ColdSteps:
    """The commands a cold build of ``spec`` runs for ninja's ``onnxruntime`` target, and the sources it
    compiles, from its configured build directory: no compile runs."""
    tree, env = _configured(spec, source, deps, None, log)
    # an overlay rewritten since the last configure: ninja re-runs CMake for build.ninja itself first
    subprocess.run(["ninja", "-C", str(tree.config_dir), "build.ninja"], env=env, capture_output=True, check=True)
    commands = subprocess.run(["ninja", "-C", str(tree.config_dir), "-t", "commands", "onnxruntime"], env=env,
                              capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    found = []
    for line in commands:
        m = re.search(r" -c (\S+)", line)
        if m:
            path = m[1]
            for root in (str(source) + "/", str(tree.config_dir / "_deps") + "/"):
                path = path.split(root, 1)[-1]
            found.append(path)
    return ColdSteps(found, len(commands))


def compile_check(
    spec: BuildSpec,
    source: Path,
    objects: list[str],
    deps: DepsDir | None = None,
    jobs: int | None = None,
    log: Callable[[str], None] = print,
    distcc: str | None = None,
) -> list[Path]:
    """Configure ``spec``'s build directory (as ``build`` would) and compile only ``objects`` (source paths
    relative to the ORT tree, e.g. ``onnxruntime/core/mlas/lib/platform.cpp``): whether a long build gets past
    its first files, in seconds. The directory is the build's own, so ``build`` later reuses all of it.
    Returns the object files; BuildError when one fails (with the compiler's last lines). ``distcc``: as for
    ``build`` (the objects compile on those hosts unless ccache has them)."""
    tree, env = _configured(spec, source, deps, jobs, log, distcc)
    listed = subprocess.run(
        ["ninja", "-C", str(tree.config_dir), "-t", "targets", "all"], env=env, capture_output=True, text=True
    ).stdout
    targets = [line.split(":")[0] for line in listed.splitlines() if line.split(":")[0].endswith(".o")]
    chosen = []
    for obj in objects:
        hits = [t for t in targets if t.endswith(f"{obj}.o")]
        if not hits:
            raise BuildError(f"no object of the configured build compiles {obj}", tree.config_dir)
        chosen.append(hits[0])
    log(f"compiling {len(chosen)} object(s) of {tree.bdir.name} ...")
    n = jobs or distcc_mod.default_jobs(env) or 1
    run_logged(["ninja", "-C", str(tree.config_dir), "-j", str(n), *chosen], tree.logfile, env, tree.config_dir)
    return [tree.config_dir / t for t in chosen]


def build(
    spec: BuildSpec,
    source: Path,
    deps: DepsDir | None = None,
    config_path: Path | None = None,
    jobs: int | None = None,
    progress: ProgressFn | None = None,
    log: Callable[[str], None] = print,
    ccache_remote: str | None = None,
    distcc: str | None = None,
) -> BuildResult:
    """Build ``spec`` from ``source`` into ``~/.cache/ortprune/builds/<key>``; a finished build is reused,
    an interrupted one continues where ninja stopped. ``build_variant`` gives ``spec`` its source and
    toolchain identity (``spec_for``); a spec without them is keyed by its options alone. ``distcc``: hosts
    that compile what ccache misses (``ortbuild.distcc``); never part of the key, ``-j`` defaults to theirs."""
    if spec.wheel:
        check_wheel_headers()
    env = build_env(ccache_remote, distcc)
    tools = resolve_toolchain(spec.toolchain_name, env["PATH"])
    cross = resolve_cross(spec.target, env["PATH"])
    compiler, cmake = check_tools(env, cross.cxx if cross else tools.cxx)
    key = spec.key()
    cached = find_cached(spec, source)
    if cached is not None:
        log(f"cached: {cached.library} ({cached.library_bytes:,} bytes)")
        return cached
    distcc_mod.check_helpers(env, cross.cxx if cross else tools.cxx, log)
    tree = _prepare(spec, source, deps, jobs, tools, cross, distcc_mod.uses_distcc(env))
    bdir, config_dir, args, state = tree.bdir, tree.config_dir, tree.args, tree.state
    manifest_path, logfile, state_path = bdir / "manifest.json", tree.logfile, tree.state_path
    started = time.monotonic()
    run: dict[str, object] = {"started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if distcc_mod.uses_distcc(env):
        run["distcc"] = env["DISTCC_HOSTS"]
    ninja_jobs = jobs or distcc_mod.default_jobs(env) or os.cpu_count() or 2
    try:
        _configure(tree, spec, source, env, log)
        log(f"compiling {key} (ninja -j{ninja_jobs} onnxruntime) ...")
        target = ["onnxruntime"] + (["onnxruntime_pybind11_state"] if spec.wheel else [])
        steps = {"n": 0}

        def on_line(i: int, n: int, what: str) -> None:
            # a resumed ninja counts only what is left: keep the largest total any run saw
            steps["n"] = max(n, int(state.get("steps", 0)))
            state["steps"] = steps["n"]
            if progress:
                progress(i, n, what)

        for attempt in range(MAX_LINK_RESTORES + 1):
            try:
                run_logged(
                    ["ninja", "-C", str(config_dir), f"-j{ninja_jobs}", *target],
                    logfile,
                    env,
                    config_dir,
                    on_line,
                )
                break
            except BuildError:
                last = attempt == MAX_LINK_RESTORES - 1  # the last restore brings every dropped member back
                if attempt == MAX_LINK_RESTORES or not _restore_sources(tree, spec, log, everything=last):
                    raise
        if FAMILIES_LEVER in spec.prune:
            _apply_mlas_families(
                tree, spec, env, tools.ar, log,
                lambda: run_logged(["ninja", "-C", str(config_dir), f"-j{ninja_jobs}", *target], logfile, env,
                                   config_dir, on_line),
            )  # fmt: skip
        if spec.wheel:
            run_logged(
                [
                    sys.executable,
                    str(source / "tools/ci_build/build.py"),
                    *[a for a in args if a != "--update"],
                    "--build",
                ],
                logfile,
                env,
                source,
            )
    finally:
        run["seconds"] = round(time.monotonic() - started, 1)
        state["runs"] = [*state.get("runs", []), run]
        atomic_write_text(state_path, json.dumps(state))

    _drop_precompiled_headers(config_dir, log)
    wheel_file = None
    if spec.wheel:
        wheels = sorted((config_dir / "dist").glob("*.whl"), key=lambda p: p.stat().st_mtime)
        if not wheels:
            raise BuildError("build.py --build_wheel finished but wrote no wheel", config_dir / "dist")
        wheel_file = str(wheels[-1])
    lib = (config_dir / "libonnxruntime.so").resolve()
    if not lib.is_file():
        raise BuildError("the build finished but libonnxruntime.so is missing", config_dir)
    needed = dt_needed(lib)
    # anything but the system C/C++ runtime in DT_NEEDED means a dependency was linked dynamically
    foreign = [n for n in needed if not is_system_library(n)]
    if foreign:
        raise BuildError(
            f"the library links non-system libraries dynamically: {', '.join(foreign)} (CMake found a system "
            "package instead of the deps.txt archive; remove it or set FETCHCONTENT_TRY_FIND_PACKAGE_MODE=NEVER)",
            lib,
        )
    result = BuildResult(
        ort_version=spec.ort_version,
        variant=spec.variant,
        key=key,
        build_py_args=args,
        extra_flags=list(spec.extra_flags),
        config_hash=spec.config_hash,
        config=spec.config_text,
        compiler=compiler,
        cmake=cmake,
        source=str(source),
        build_dir=str(bdir),
        library=str(lib),
        library_bytes=lib.stat().st_size,
        needed=needed,
        wall_time_s=round(sum(float(r["seconds"]) for r in state["runs"]), 1),
        runs=state["runs"],
        steps=steps["n"],
        finished=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        wheel_file=wheel_file,
        prune=list(spec.prune),
        keep_transformers=list(spec.keep_transformers),
        source_id=spec.source_id,
        toolchain=spec.toolchain,
        toolchain_name=spec.toolchain_name,
        target=spec.target,
    )
    stripped = stripped_copy(lib, cross.strip if cross else None)
    result.stripped_library, result.stripped_bytes = str(stripped), stripped.stat().st_size
    result.save(manifest_path)
    return result


def _drop_precompiled_headers(config_dir: Path, log: Callable[[str], None]) -> None:
    """A finished build never compiles again (it is reused whole), so its ``.gch`` files (about 1.5 GB for a
    reduced build with the ``pch`` lever) go; ccache keeps a compressed copy for the next build."""
    gchs = list(config_dir.glob("CMakeFiles/*/cmake_pch.hxx.gch"))
    if gchs:
        total = sum(g.stat().st_size for g in gchs)
        for g in gchs:
            g.unlink()
        log(f"removed {len(gchs)} precompiled headers ({total / 1e9:.1f} GB) from the finished build")


def stripped_copy(lib: Path, strip: str | None = None) -> Path:
    """``libonnxruntime.stripped.so`` beside ``lib`` (``strip --strip-all``, or the given ``strip``, e.g. a
    cross binutils' for another architecture; made once, reused while newer)."""
    target = lib.parent / "libonnxruntime.stripped.so"
    if target.exists() and target.stat().st_mtime >= lib.stat().st_mtime:
        return target
    strip = strip or shutil.which("strip")
    if strip is None:
        raise BuildError("strip (binutils) is needed for the stripped copy: apt-get install binutils")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)  # a unique name: two builds stripping at once never share a temp file
    try:
        subprocess.run([strip, "--strip-all", "-o", str(tmp), str(lib)], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as e:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"strip failed: {e.stderr.strip()}", lib) from None
    os.replace(tmp, target)
    return target


def export(result: BuildResult, out: Path) -> Path:
    """Copy the library (as ``libonnxruntime.so``, ready for ORT_DYLIB_PATH), its stripped copy
    (``libonnxruntime.stripped.so``, what a user ships) and its manifest to ``out``: all of them or none
    (staged beside ``out``, renamed into it together)."""
    cross = resolve_cross(result.target)
    stripped = stripped_copy(Path(result.library), cross.strip if cross else None)
    copies = {"libonnxruntime.so": Path(result.library), "libonnxruntime.stripped.so": stripped}
    if result.wheel_file:
        copies[Path(result.wheel_file).name] = Path(result.wheel_file)
    with staged_outputs(out) as stage:
        for name, src in copies.items():
            shutil.copyfile(src, stage / name)
            shutil.copymode(src, stage / name)
        result.save(stage / "manifest.json")
        commit_staged(stage, out, [*copies, "manifest.json"], keep_mode=True)
    return out / "libonnxruntime.so"
