"""Find, load and check a ``libonnxruntime`` shared library; own its OrtEnv; turn statuses into exceptions."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import struct
import sys
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ortprune._args import path_arg
from ortprune.cache import env_path
from ortprune.errors import ArgumentTypeError, ArgumentValueError, OrtpruneError, RuntimeLoadError
from ortprune.runtime import _capi
from ortprune.runtime._capi import LOG_LEVELS, MAX_API_VERSION, MIN_API_VERSION, SLOTS


class OrtError(OrtpruneError):
    """A call into ONNX Runtime failed: carries ORT's error code and its message unchanged."""

    def __init__(self, code: int, ort_message: str, what: str, path: str | Path | None = None) -> None:
        self.code = code
        self.code_name = _capi.ERROR_CODES.get(code, f"code {code}")
        self.ort_message = ort_message
        self.what = what
        super().__init__(f"{what}: [{self.code_name}] {ort_message}", path)


LIBRARY_ENV = "ORT_DYLIB_PATH"


def find_library(path: str | os.PathLike[str] | None = None) -> str:
    """The library to load: ``path``, else ``$ORT_DYLIB_PATH``, else the one inside the installed
    ``onnxruntime`` wheel (found without importing it). A bare file name (no ``/``) is left to the
    dynamic loader's search path, as the ``ort`` crate does."""
    if path is not None:
        return _checked_path(str(path_arg(path, "lib")), "the given library path")
    env = env_path(LIBRARY_ENV)
    if env:
        return _checked_path(env, f"${LIBRARY_ENV}", bare_is_soname=True)
    found = wheel_library()
    if found is None:
        raise RuntimeLoadError(
            f"no ONNX Runtime library found: pass a path (lib=... / --lib), set {LIBRARY_ENV}, "
            "or pip install onnxruntime (its wheel ships libonnxruntime)"
        )
    return str(found)


def wheel_library() -> Path | None:
    """``onnxruntime/capi/libonnxruntime.so.1.N.M`` of an installed onnxruntime wheel, or None."""
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    candidates: list[Path] = []
    for loc in spec.submodule_search_locations:
        capi = Path(loc) / "capi"
        if sys.platform == "darwin":
            candidates += capi.glob("libonnxruntime*.dylib")
        elif sys.platform == "win32":
            candidates += capi.glob("onnxruntime.dll")
        else:
            candidates += capi.glob("libonnxruntime.so*")

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.name))

    return max(candidates, key=version) if candidates else None


def _checked_path(path: str, source: str, bare_is_soname: bool = False) -> str:
    """``path`` resolved and checked; with ``bare_is_soname`` a name without ``/`` (``$ORT_DYLIB_PATH``'s
    ``libonnxruntime.so.1``) goes to the dynamic loader's search path, never to a file in the cwd."""
    if "\0" in path:
        raise RuntimeLoadError(f"the library path contains a NUL character ({source})", repr(path))
    if os.sep not in path and (bare_is_soname or not os.path.exists(path)):
        return path  # a bare soname for dlopen's search path
    p = Path(path)
    try:
        if not p.exists():
            raise RuntimeLoadError(f"no such file ({source})", p)
        if not p.is_file():
            raise RuntimeLoadError(f"not a regular file ({source}); expected a libonnxruntime shared library", p)
        resolved = p.resolve(strict=True)
    except (OSError, RuntimeError) as e:  # a symlink loop, a path component that is a file
        raise RuntimeLoadError(f"cannot open ({source}): {getattr(e, 'strerror', None) or e}", p) from None
    check_elf(resolved)
    return str(resolved)


#: ELF e_machine of the interpreter's architecture (``platform.machine()``), for the pre-check.
_MACHINES = {"x86_64": "EM_X86_64", "amd64": "EM_X86_64", "aarch64": "EM_AARCH64", "arm64": "EM_AARCH64",
             "i686": "EM_386", "i386": "EM_386", "ppc64le": "EM_PPC64", "s390x": "EM_S390",
             "riscv64": "EM_RISCV"}  # fmt: skip
#: e_machine, e_type and p_type names (the ELF specification's, as pyelftools spells them) for messages.
_EM = {3: "EM_386", 21: "EM_PPC64", 22: "EM_S390", 40: "EM_ARM", 62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV"}
_ET = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
_PT = {0: "PT_NULL", 1: "PT_LOAD", 2: "PT_DYNAMIC", 3: "PT_INTERP", 4: "PT_NOTE", 6: "PT_PHDR", 7: "PT_TLS",
       0x6474E550: "PT_GNU_EH_FRAME", 0x6474E551: "PT_GNU_STACK", 0x6474E552: "PT_GNU_RELRO"}  # fmt: skip
#: Libraries already checked in this process, by (path, size, mtime, inode).
_CHECKED: set[tuple[str, int, int, int]] = set()


def check_elf(path: Path) -> None:
    """What dlopen would trip over, checked first: an ELF shared object of this process's class and
    machine whose every program header's file range lies inside the file. ``dlopen`` maps a truncated
    library's segments past the end of the file and the process dies of SIGBUS; this turns that into an
    error. Linux only (other systems' loaders take other formats). Read with :mod:`ortprune.elf` (the
    program headers only; pyelftools' import alone was ~80 ms of a ~300 ms ``TextEmbedding`` cold start)."""
    if not sys.platform.startswith("linux"):
        return
    import platform

    from ortprune.elf import ElfFile
    from ortprune.errors import ElfError

    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if f.read(4) != b"\x7fELF":
                raise RuntimeLoadError("not an ELF shared library (bad magic); expected libonnxruntime.so", path)
    except OSError as e:
        raise RuntimeLoadError(f"cannot read: {e.strerror or e}", path) from None
    seen = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if seen in _CHECKED:
        return
    try:
        with ElfFile(path, sections=False) as elf:
            bits = 64 if sys.maxsize > 2**32 else 32
            if elf.is64 != (bits == 64):
                raise RuntimeLoadError(f"a {64 if elf.is64 else 32}-bit ELF file; this Python is {bits}-bit", path)
            want = _MACHINES.get(platform.machine().lower())
            if want is not None and _EM.get(elf.machine, str(elf.machine)) != want:
                name = _EM.get(elf.machine, f"machine {elf.machine}")
                raise RuntimeLoadError(f"built for {name}, but this machine is {platform.machine()}", path)
            if elf.e_type != 3:
                raise RuntimeLoadError(f"not a shared library (ELF type {_ET.get(elf.e_type, elf.e_type)})", path)
            for seg in elf.segments:
                end = seg.offset + seg.filesz
                if end > elf.file_size:
                    raise RuntimeLoadError(
                        f"truncated or corrupt: segment {_PT.get(seg.type, hex(seg.type))} needs bytes up to "
                        f"{end:,}, the file has {elf.file_size:,}",
                        path,
                    )
    except ElfError as e:
        raise RuntimeLoadError(str(e).removeprefix(f"{e.path}: "), path) from None
    except (struct.error, ValueError) as e:  # a program header table that does not fit its entry size
        raise RuntimeLoadError(f"corrupt ELF file ({e})", path) from None
    _CHECKED.add(seen)


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.21.0"`` → (1, 21, 0); extra suffixes (``1.22.0-dev``) are ignored."""
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        raise ValueError(text)
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def negotiate_api(version: str) -> int:
    """The C API version to request from a library reporting ``version`` (its minor number, capped at
    the newest we know). Raises RuntimeLoadError when the library is older than ``MIN_API_VERSION``."""
    try:
        major, minor, _ = parse_version(version)
    except ValueError:
        raise RuntimeLoadError(f"unrecognised ONNX Runtime version string {version!r}") from None
    if major != 1:
        raise RuntimeLoadError(f"ONNX Runtime {version} has an unknown major version; ortprune knows 1.x")
    if minor < MIN_API_VERSION:
        raise RuntimeLoadError(
            f"ONNX Runtime {version} is too old: ortprune needs C API {MIN_API_VERSION} "
            f"(ONNX Runtime >= 1.{MIN_API_VERSION})"
        )
    return min(minor, MAX_API_VERSION)


class Library:
    """A loaded ONNX Runtime: its C API table, one OrtEnv and a CPU memory info, released by their owner.

    Use :func:`load_library` to share one instance per file. Handles are counted in :meth:`live_handles`.
    ``log_level`` is the environment's: ORT's own (coloured) log lines stay silent unless asked for, here
    or per session (``Session(..., log_level="warning")``); every error still comes back as an exception.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, log_level: str | int = "fatal") -> None:
        self.path = find_library(path)
        try:
            self._dll = ctypes.CDLL(self.path)
        except OSError as e:
            raise RuntimeLoadError(f"cannot load as a shared library: {e}", self.path) from None
        try:
            get_base = self._dll.OrtGetApiBase
        except AttributeError:
            raise RuntimeLoadError("not an ONNX Runtime library: it does not export OrtGetApiBase", self.path) from None
        get_base.restype = ctypes.POINTER(_capi.OrtApiBase)
        get_base.argtypes = []
        base = get_base()
        if not base:
            raise RuntimeLoadError("OrtGetApiBase returned NULL", self.path)
        raw_version = base.contents.GetVersionString()
        self.version: str = (raw_version or b"").decode("utf-8", "replace")
        try:
            self.api_version = negotiate_api(self.version)
        except RuntimeLoadError as e:
            raise RuntimeLoadError(str(e), self.path) from None
        api = base.contents.GetApi(self.api_version)
        if not api:
            raise RuntimeLoadError(
                f"GetApi({self.api_version}) returned NULL although the library reports version {self.version}",
                self.path,
            )
        self._table = ctypes.cast(api, ctypes.POINTER(ctypes.c_void_p))
        self._fns: dict[str, Any] = {}
        self._handles = _HandleCount()
        self.f = _Functions(self)

        self.env = ctypes.c_void_p()
        self.check(
            self.f.CreateEnv(_level(log_level, LOG_LEVELS, "log level"), b"ortprune", ctypes.byref(self.env)),
            "creating the ORT environment",
        )
        self._env_finalizer = self.own(self, "env", self.env.value, self.f.ReleaseEnv)
        mem = ctypes.c_void_p()
        self.check(
            self.f.CreateCpuMemoryInfo(_capi.ARENA_ALLOCATOR, _capi.MEM_TYPE_DEFAULT, ctypes.byref(mem)),
            "creating CPU memory info",
        )
        self.memory_info = mem
        self._mem_finalizer = self.own(self, "memory_info", mem.value, self.f.ReleaseMemoryInfo)
        alloc = ctypes.c_void_p()
        self.check(self.f.GetAllocatorWithDefaultOptions(ctypes.byref(alloc)), "getting the default allocator")
        self.allocator = alloc  # owned by ORT: never released

    # -- the function table -------------------------------------------------------------------------
    def function(self, name: str) -> Any:
        """The C function ``name`` of the OrtApi table, typed from :data:`SLOTS`."""
        fn = self._fns.get(name)
        if fn is None:
            slot = SLOTS[name]
            if slot.since > self.api_version:
                raise RuntimeLoadError(
                    f"{name} needs C API {slot.since}; this library serves {self.api_version}", self.path
                )
            addr = self._table[slot.index]
            if not addr:
                raise RuntimeLoadError(f"OrtApi slot {slot.index} ({name}) is NULL", self.path)
            fn = ctypes.CFUNCTYPE(slot.restype, *slot.argtypes)(addr)
            self._fns[name] = fn
        return fn

    def has(self, name: str) -> bool:
        return SLOTS[name].since <= self.api_version

    def check(self, status: int | None, what: str, path: str | Path | None = None) -> None:
        """Turn an ``OrtStatus*`` into :class:`OrtError` (the status is always released)."""
        if not status:
            return
        try:
            code = int(self.f.GetErrorCode(status))
            message = (self.f.GetErrorMessage(status) or b"").decode("utf-8", "replace")
        finally:
            self.f.ReleaseStatus(status)
        raise OrtError(code, message, what, path)

    # -- handle ownership ---------------------------------------------------------------------------
    def own(self, owner: object, kind: str, ptr: int | None, release: Callable[[Any], None]) -> weakref.finalize:
        """Register ``ptr`` as a live handle of ``kind`` held by ``owner``. The returned finalizer releases
        it exactly once: when called (``close()``), when ``owner`` is collected, or at exit -- in reverse
        order of creation, so sessions go before the env they were made in."""
        self._handles.add(kind)
        return weakref.finalize(owner, _release, self._handles, kind, ptr, release)

    def live_handles(self) -> dict[str, int]:
        """Handles currently held, by kind (env, memory_info, session, session_options)."""
        return self._handles.live()

    def released_handles(self) -> dict[str, int]:
        """Handles released so far, by kind."""
        return self._handles.released()

    # -- queries ------------------------------------------------------------------------------------
    def available_providers(self) -> list[str]:
        arr = ctypes.POINTER(ctypes.c_char_p)()
        n = ctypes.c_int()
        self.check(self.f.GetAvailableProviders(ctypes.byref(arr), ctypes.byref(n)), "listing providers")
        try:
            return [(arr[i] or b"").decode() for i in range(n.value)]
        finally:
            self.check(self.f.ReleaseAvailableProviders(arr, n), "releasing the provider list")

    def build_info(self) -> str | None:
        """ORT's build info string (git commit, build type), or None if this API version lacks it."""
        if not self.has("GetBuildInfoString"):
            return None
        raw = self.f.GetBuildInfoString()
        return raw.decode("utf-8", "replace") if raw else None

    def __repr__(self) -> str:
        return f"Library({self.path!r}, version={self.version!r}, api={self.api_version})"


class _HandleCount:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: Counter[str] = Counter()
        self._released: Counter[str] = Counter()

    def add(self, kind: str) -> None:
        with self._lock:
            self._live[kind] += 1

    def remove(self, kind: str) -> None:
        with self._lock:
            self._live[kind] -= 1
            self._released[kind] += 1

    def live(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in self._live.items() if v}

    def released(self) -> dict[str, int]:
        with self._lock:
            return dict(self._released)


def _release(count: _HandleCount, kind: str, ptr: int | None, release: Callable[[Any], None]) -> None:
    if ptr:
        release(ptr)
    count.remove(kind)


class _Functions:
    """Attribute access to the typed C functions: ``lib.f.Run(...)``."""

    def __init__(self, lib: Library) -> None:
        self._lib = weakref.ref(lib)

    def __getattr__(self, name: str) -> Any:
        lib = self._lib()
        if lib is None:
            raise RuntimeLoadError("the library object is gone")
        fn = lib.function(name)
        setattr(self, name, fn)
        return fn


def _level(value: str | int, table: dict[str, int], what: str, any_number: bool = False) -> int:
    """A level by name (any case) or by its number; ArgumentTypeError / ArgumentValueError otherwise.
    ``any_number``: numbers go to ORT as they are (its optimization levels differ between versions, and
    it names the bad one clearly)."""
    names = ", ".join(table)
    if isinstance(value, int) and not isinstance(value, bool):
        if not any_number and value not in table.values():
            numbers = ", ".join(f"{n} ({k})" for k, n in table.items())
            raise ArgumentValueError(f"unknown {what} {value}; choose one of {numbers}")
        return value
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{what} must be one of {names} (or its number), got {type(value).__name__}")
    try:
        return table[value.lower()]
    except KeyError:
        raise ArgumentValueError(f"unknown {what} {value!r}; choose one of {names}") from None


_LIBRARIES: dict[str, Library] = {}
_LIBRARIES_LOCK = threading.Lock()


def load_library(path: str | os.PathLike[str] | Library | None = None) -> Library:
    """The shared :class:`Library` for ``path`` (see :func:`find_library`), loaded once per file."""
    if isinstance(path, Library):
        return path
    key = find_library(path)
    with _LIBRARIES_LOCK:
        lib = _LIBRARIES.get(key)
        if lib is None:
            lib = _LIBRARIES[key] = Library(key)
        return lib


def available_providers(lib: str | os.PathLike[str] | Library | None = None) -> list[str]:
    return load_library(lib).available_providers()
