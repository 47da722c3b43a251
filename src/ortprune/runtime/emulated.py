"""A libonnxruntime for another machine (a linux-aarch64 library on an x86-64 host), driven under qemu-user.

A library of another architecture cannot be loaded into this process. A small C program (``data/runner.c``,
against the ORT C API through ``dlopen``) is cross-compiled once for the library's target and cached; each
call runs it under ``qemu-<arch> -L <sysroot>``: create a session (optionally saving the optimized model),
run it on tensors exchanged through files, or try to load a batch of probe models. The OrtApi slot indices
it uses are ``_capi.SLOTS``'s, written into a header before compiling, so the table exists once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprune.cache import cache_dir
from ortprune.catalog import check_level
from ortprune.errors import OrtpruneError, RuntimeLoadError
from ortprune.platform import Target, host_target, target_of_machine
from ortprune.runtime import _capi
from ortprune.runtime.library import OrtError

if TYPE_CHECKING:
    import numpy as np

#: qemu-user runs one model of a bundled size in tens of seconds; a hung run is stopped after this.
RUN_TIMEOUT_S = 1800
_MAGIC = b"ORTT"


def library_target(path: str | Path) -> Target | None:
    """The target a library was built for (its ELF e_machine), None when ortprune knows no such target."""
    from ortprune.elf import ElfFile

    with ElfFile(path, sections=False) as elf:
        return target_of_machine(elf.machine)


def foreign_target(path: str | Path) -> Target | None:
    """The target of ``path`` when it is not this machine's (so it must be emulated), else None (also for
    what is no readable ELF file: the native loader then says what is wrong with it)."""
    try:
        found = library_target(path)
    except (OSError, OrtpruneError):
        return None
    return found if found is not None and found.name != host_target() else None


def _slots_header() -> str:
    lines = [f"#define MIN_API_VERSION {_capi.MIN_API_VERSION}", f"#define MAX_API_VERSION {_capi.MAX_API_VERSION}"]
    lines += [f"#define SLOT_{name} {slot.index}" for name, slot in _capi.SLOTS.items()]
    return "\n".join(lines) + "\n"


def missing_tools(target: Target) -> list[str]:
    """The executables running ``target``'s libraries needs that this host lacks (compiler, qemu, sysroot)."""
    missing = [exe for exe in (f"{target.triple}-gcc", target.qemu) if shutil.which(exe) is None]
    if not (target.sysroot / "lib").is_dir():
        missing.append(f"{target.sysroot}/lib (the target's C library)")
    return missing


def runner(target: Target) -> Path:
    """The runner binary for ``target``: compiled once with its cross compiler, cached by the hash of its
    source, the slot table and the compiler's version."""
    missing = missing_tools(target)
    if missing:
        raise RuntimeLoadError(
            f"running a {target.name} library here needs {', '.join(missing)}: make cross-deps "
            f"(apt-get install {' '.join(target.packages)} qemu-user)"
        )
    source = resources.files("ortprune").joinpath("data/runner.c").read_text(encoding="utf-8")
    header = _slots_header()
    gcc = f"{target.triple}-gcc"
    version = subprocess.run([gcc, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    digest = hashlib.sha256(json.dumps([source, header, version]).encode()).hexdigest()[:16]
    binary = cache_dir("runner", f"{target.name}-{digest}", "ortprune-runner")
    if binary.is_file():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    # compiled beside its cache entry and renamed there executable: a concurrent caller never sees half a binary
    with tempfile.TemporaryDirectory(prefix=".ortprune-runner-", dir=binary.parent) as tmp:
        (Path(tmp) / "runner_slots.h").write_text(header)
        (Path(tmp) / "runner.c").write_text(source)
        out = Path(tmp) / "ortprune-runner"
        proc = subprocess.run(
            [gcc, "-O2", "-Wall", "-I", tmp, "-o", str(out), str(Path(tmp) / "runner.c"), "-ldl"],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeLoadError(f"compiling the {target.name} runner failed: {proc.stderr.strip()[-600:]}")
        out.chmod(0o755)
        os.replace(out, binary)
    return binary


def write_tensors(path: Path, tensors: Mapping[str, np.ndarray]) -> None:
    """The runner's tensor file (see ``data/runner.c``): numeric numpy arrays only."""
    import numpy as np

    elements = _capi.dtype_elements()
    with path.open("wb") as f:
        f.write(_MAGIC + struct.pack("<I", len(tensors)))
        for name, value in tensors.items():
            arr = np.asarray(value, order="C")  # not ascontiguousarray: it makes a 0-d array 1-d
            if arr.dtype not in elements:
                raise RuntimeLoadError(f"input {name!r} has a type the runner does not exchange ({arr.dtype})")
            raw = name.encode()
            f.write(struct.pack("<I", len(raw)) + raw + struct.pack("<iI", elements[arr.dtype], arr.ndim))
            f.write(struct.pack(f"<{arr.ndim}q", *arr.shape) + struct.pack("<Q", arr.nbytes))
            f.write(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())


def read_tensors(path: Path) -> dict[str, np.ndarray]:
    import numpy as np

    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise RuntimeLoadError("the runner wrote no tensor file", path)
    (count,), pos = struct.unpack_from("<I", data, 4), 8
    dtypes = _capi.element_dtypes()
    out = {}
    for _ in range(count):
        (n,) = struct.unpack_from("<I", data, pos)
        name = data[pos + 4 : pos + 4 + n].decode()
        pos += 4 + n
        elem, rank = struct.unpack_from("<iI", data, pos)
        pos += 8
        shape = struct.unpack_from(f"<{rank}q", data, pos)
        pos += 8 * rank
        (nbytes,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        dtype = dtypes[elem].newbyteorder("<")
        out[name] = np.frombuffer(data[pos : pos + nbytes], dtype=dtype).reshape(shape).astype(dtypes[elem])
        pos += nbytes
    return out


@dataclass
class EmulatedLibrary:
    """A libonnxruntime of ``target``, used through the runner under qemu-user."""

    path: Path
    target: Target
    threads: int = 0  # intra-op threads (0: ORT's default)

    @classmethod
    def open(cls, path: str | Path) -> EmulatedLibrary:
        """``path`` (a library of a target ortprune knows); RuntimeLoadError when it is not one."""
        p = Path(path).resolve()
        found = library_target(p)
        if found is None:
            raise RuntimeLoadError("built for a machine ortprune cannot emulate", p)
        return cls(p, found)

    def _call(self, args: list[str], timeout: float = RUN_TIMEOUT_S) -> list[dict[str, Any]]:
        cmd = [self.target.qemu, "-L", str(self.target.sysroot), str(runner(self.target)), str(self.path), *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, errors="replace")
        except subprocess.TimeoutExpired:
            why = f"the runner under {self.target.qemu} took over {timeout:.0f} s"
            raise RuntimeLoadError(why, self.path) from None
        items = []
        for line in proc.stdout.splitlines():
            try:
                items.append(json.loads(line))
            except ValueError:
                continue  # the library's own output
        for item in items:
            if "fatal" in item:
                raise RuntimeLoadError(f"{item['fatal']}: {item['detail']}", self.path)
        if proc.returncode < 0 or (proc.returncode != 0 and not items):
            raise RuntimeLoadError(
                f"the runner under {self.target.qemu} ended with {proc.returncode}: {proc.stderr.strip()[-300:]}",
                self.path,
            )
        return items

    @property
    def version(self) -> str:
        return str(self._call(["version"], timeout=120)[0]["version"])

    def session(
        self,
        model: str | Path,
        level: str = "all",
        feeds: Mapping[str, np.ndarray] | None = None,
        optimized_model_path: str | Path | None = None,
        config: Mapping[str, str] | None = None,
        log_level: str = "error",
    ) -> dict[str, np.ndarray]:
        """Create a session on ``model`` at ``level`` (saving the optimized graph to ``optimized_model_path``
        when given) and, with ``feeds``, run it once: its outputs by name. OrtError as ORT reported it."""
        args = [str(Path(model).resolve()), str(check_level(level))]
        args += [str(_capi.LOG_LEVELS[log_level]), str(self.threads)]
        if optimized_model_path is not None:
            args += ["-o", str(Path(optimized_model_path).resolve())]
        for key, value in (config or {}).items():
            args += ["-c", f"{key}={value}"]
        with tempfile.TemporaryDirectory(prefix="ortprune-emulated-") as tmp:
            if feeds is not None:
                write_tensors(Path(tmp) / "in.bin", feeds)
                args += ["-i", str(Path(tmp) / "in.bin"), "-r", str(Path(tmp) / "out.bin")]
            result = self._call(["session", *args])[-1]
            if result.get("code") is not None:
                raise OrtError(int(result["code"]), str(result.get("message", "")), "creating the session", model)
            return read_tensors(Path(tmp) / "out.bin") if feeds is not None else {}

    def probe(self, models: Iterable[tuple[str, bytes]], level: str = "disable") -> dict[str, tuple[int | None, str]]:
        """Try to create a session on each ``(id, model bytes)`` in one runner process: (code, message) by id
        (code None: it loaded). A crash inside the library ends the batch; the ids done are returned."""
        todo = list(models)
        done: dict[str, tuple[int | None, str]] = {}
        with tempfile.TemporaryDirectory(prefix="ortprune-emulated-probe-") as tmp:
            files = {}
            for i, (key, model) in enumerate(todo):
                files[str(Path(tmp) / f"{i}.onnx")] = key
                Path(tmp, f"{i}.onnx").write_bytes(model)
            try:
                items = self._call(["probe", str(check_level(level)), *files])
            except RuntimeLoadError:
                return done
            for item in items:
                if item.get("id") in files:
                    result = item["result"]
                    done[files[item["id"]]] = (result.get("code"), str(result.get("message", "")))
        return done


def emulation_note(target: Target) -> str:
    """How a result on ``target`` was obtained, for reports."""
    return f"run under {target.qemu} -L {target.sysroot} (qemu-user {_qemu_version(target)})"


def _qemu_version(target: Target) -> str:
    try:
        out = subprocess.run([target.qemu, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = out.splitlines()[0] if out else ""
    return first.split("version", 1)[-1].strip() or "unknown"


def graph_inputs(model: str | Path) -> list[Any]:
    """The model's inputs (initializers excluded) as ``runtime.TensorInfo``, read from the file with onnx:
    what ``Session.inputs`` gives for a library this process can load."""
    import onnx

    from ortprune.runtime.session import TensorInfo

    graph = onnx.load(str(model), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    infos = []
    for value in graph.input:
        if value.name in inits:
            continue
        tensor = value.type.tensor_type if value.type.HasField("tensor_type") else None
        dims: tuple[int | str | None, ...] = ()
        if tensor is not None:
            dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)
        kind = "tensor" if tensor is not None else value.type.WhichOneof("value") or "unknown"
        infos.append(TensorInfo(value.name, kind.removesuffix("_type"), tensor.elem_type if tensor else 0, dims))
    return infos


class EmulatedSession:
    """What ``verify`` needs of a ``runtime.Session`` (``inputs``, ``run``, ``close``), for an
    :class:`EmulatedLibrary`: the session is created once here (so a load error is raised where Session
    raises it) and again by each ``run``, in a fresh runner process."""

    def __init__(self, model: str | Path, lib: EmulatedLibrary, optimization_level: str = "all") -> None:
        self.model, self.lib, self.level = Path(model), lib, optimization_level
        lib.session(self.model, optimization_level)
        self.inputs = graph_inputs(self.model)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.lib.session(self.model, self.level, feeds)

    def close(self) -> None:
        pass

    def __enter__(self) -> EmulatedSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
