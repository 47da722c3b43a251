"""An inference session on any libonnxruntime: metadata and ``run`` with numpy arrays."""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ortprune._args import bool_arg, int_arg, no_extra_args, optional_path_arg, path_arg
from ortprune._io import check_outputs
from ortprune._threads import InThread
from ortprune.catalog import OPTIMIZATION_LEVELS
from ortprune.errors import ArgumentTypeError, ArgumentValueError, OrtpruneError
from ortprune.platform import max_parallel
from ortprune.runtime import _capi
from ortprune.runtime.cache import OptimizedModelCache, resolve_cache
from ortprune.runtime.library import Library, _level, load_library

if TYPE_CHECKING:  # numpy is imported on first use: a cold start imports it while ORT loads the model
    import numpy as np


class InputError(OrtpruneError):
    """Feeds that do not match the model's inputs (name, element type, rank or fixed dimension).

    Checked in Python before ORT is called."""


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output as ORT sees it.

    ``shape`` holds ints for fixed dimensions, the dimension's name for symbolic ones and None for
    unnamed dynamic ones. ``dtype`` is None for element types numpy cannot exchange (string, bfloat16…)
    and for non-tensor values (``kind`` "sequence", "map"...)."""

    name: str
    kind: str
    element_type: int
    shape: tuple[int | str | None, ...]

    @property
    def dtype(self) -> np.dtype[Any] | None:
        return _capi.element_dtypes().get(self.element_type) if self.kind == "tensor" else None

    @property
    def type_name(self) -> str:
        if self.kind != "tensor":
            return self.kind
        return _capi.ELEMENT_NAMES.get(self.element_type, f"element type {self.element_type}")


class Session:
    """``Session(model, lib=None, threads=None, optimization_level=None, log_level=None)``: level None is
    ``all`` (``disable`` for a bundle).

    ``model`` is a path or the model's bytes; ``lib`` a :class:`Library`, a path to a libonnxruntime or
    None (see :func:`ortprune.runtime.find_library`). A path into a deploy bundle (:mod:`ortprune.bundle`:
    its directory, a model directory or file in it) loads the bundle's model with the bundle's library at
    level ``disable`` by default, after checking this CPU and ``lib`` against the bundle's manifest.
    ``threads`` sets ORT's intra- and inter-op thread counts (as fastembed does); None leaves ORT's default.
    ``optimized_model_path`` makes ORT write the graph it optimized; ``config`` adds session config entries
    (``AddSessionConfigEntry``); ``cpu_mem_arena`` False turns ORT's CPU memory arena off (fastembed's
    ``enable_cpu_mem_arena``), True on, None leaves ORT's default. Wrong types or values raise
    :class:`ArgumentTypeError` / :class:`ArgumentValueError` before anything is loaded.
    ``run`` may be called from several threads at once. ``close()`` (or ``with``) releases the session.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes | bytearray | memoryview,
        lib: Library | str | os.PathLike[str] | None = None,
        *extra: NoReturn,
        threads: int | None = None,
        optimization_level: str | int | None = None,
        log_level: str | int | None = None,
        optimized_model_path: str | os.PathLike[str] | None = None,
        config: Mapping[str, str] | None = None,
        cache: bool | str | os.PathLike[str] | OptimizedModelCache | None = None,
        cpu_mem_arena: bool | None = None,
        **unknown: NoReturn,
    ) -> None:
        if extra or unknown:  # Python's own TypeError would not be an OrtpruneError nor list what is taken
            no_extra_args("Session", Session.__init__, extra, unknown)
        if isinstance(model, str | os.PathLike) and "\0" in os.fspath(model):
            raise ArgumentValueError("the model path contains a NUL character", repr(os.fspath(model)))
        if not isinstance(model, str | os.PathLike | bytes | bytearray | memoryview):
            raise ArgumentTypeError(f"model must be a path or the model's bytes, got {type(model).__name__}")
        if isinstance(model, str | os.PathLike):
            path_arg(model, "model")
        if threads is not None:
            threads = int_arg(threads, "threads", 0, max_parallel())  # 0: ORT's default; more only slows it
        if config is not None:
            if not isinstance(config, Mapping):
                raise ArgumentTypeError(f"config must be a mapping of strings to strings, got {type(config).__name__}")
            for key, value in config.items():
                if not isinstance(key, str) or not isinstance(value, str) or "\0" in key + value:
                    raise ArgumentValueError(f"config entries must be strings without NUL, got {key!r}: {value!r}")
        optimized_model_path = optional_path_arg(optimized_model_path, "optimized_model_path")
        if cpu_mem_arena is not None:
            cpu_mem_arena = bool_arg(cpu_mem_arena, "cpu_mem_arena")
        if log_level is not None:
            _level(log_level, _capi.LOG_LEVELS, "log level")
        if optimization_level is not None:
            _level(optimization_level, OPTIMIZATION_LEVELS, "optimization level", any_number=True)
        self._cpu_mem_arena = cpu_mem_arena
        in_bundle = False
        if isinstance(model, str | os.PathLike):
            from ortprune import bundle

            found = bundle.find(model)
            if found is not None:  # a deploy bundle: its library, checked, and nothing left to optimize
                b, entry = found
                model, lib = b.open(entry, lib)
                optimization_level = b.load_level if optimization_level is None else optimization_level
                in_bundle = True
        optimization_level = "all" if optimization_level is None else optimization_level
        self.lib = load_library(lib)
        if optimized_model_path is not None:  # ORT writes it in place: never over the model or the library
            read = [] if isinstance(model, bytes | bytearray | memoryview) else [Path(model)]
            check_outputs([Path(optimized_model_path)], [*read, self.lib.path])
        self._lock = threading.Lock()
        self._inflight = 0
        self._closing = False
        self.path: Path | None = None if isinstance(model, bytes | bytearray | memoryview) else Path(model)
        level = _level(optimization_level, OPTIMIZATION_LEVELS, "optimization level", any_number=True)
        config = dict(config or {})
        #: "hit" (loaded the cached optimized model), "miss" / "rebuilt" (optimized and saved), or None
        self.cache_status: str | None = None
        #: the file the session was created from (the cache entry on a hit)
        self.loaded_from: Path | None = self.path
        store = resolve_cache(cache)
        cacheable = store is not None and self.path is not None and level != 0 and optimized_model_path is None
        if cacheable and not _is_ort_format(model, self.path):
            assert store is not None and self.path is not None
            sess, buffer = self._open_cached(store, self.path, level, threads, log_level, config)
        else:
            # a bundle's model, like a cache entry, was written whole and verified on this very library: it is
            # memory-mapped and its release not read again (the manifest's library id was checked)
            sess, buffer = self._open(model, level, threads, log_level, optimized_model_path, config, in_bundle)
        f = self.lib.f
        self._ptr: int | None = sess.value

        def release(ptr: int, _buffer: object = buffer) -> None:  # the model's bytes outlive the session
            f.ReleaseSession(ptr)

        self._release = self.lib.own(self, "session", sess.value, release)

        self.inputs: tuple[TensorInfo, ...] = self._describe(
            f.SessionGetInputCount, f.SessionGetInputName, f.SessionGetInputTypeInfo
        )
        self.outputs: tuple[TensorInfo, ...] = self._describe(
            f.SessionGetOutputCount, f.SessionGetOutputName, f.SessionGetOutputTypeInfo
        )
        self._input_by_name = {i.name: i for i in self.inputs}
        self._output_names = {o.name for o in self.outputs}

    def _open(
        self,
        model: str | os.PathLike[str] | bytes | bytearray | memoryview,
        level: int,
        threads: int | None,
        log_level: str | int | None,
        optimized_model_path: str | os.PathLike[str] | None,
        config: dict[str, str],
        cache_entry: bool = False,
    ) -> tuple[ctypes.c_void_p, object]:
        """Create the ORT session (options made, applied and released here). Returns it with the buffer
        ORT reads the model from, which must stay alive as long as the session (None: ORT copied it).

        An ORT-format model is handed to ORT as bytes it uses in place
        (``session.use_ort_model_bytes_directly`` and ``..._for_initializers``): ORT then neither copies
        the file nor each initializer out of the flatbuffer, which is most of a .ort's load time (a
        90 MB .ort: ~0.5 s -> ~0.06 s on the 1.21.0 MinSizeRel build); the kernels and pre-packed
        weights, and so the outputs, are the same. A ``cache_entry`` (written whole by the cache or a
        bundle, replaced only by rename) is memory-mapped; another file is read, so truncating it while the
        session lives cannot crash the process."""
        f = self.lib.f
        path = None if isinstance(model, bytes | bytearray | memoryview) else Path(model)
        what = f"ONNX Runtime {self.lib.version} ({self.lib.path}) could not load the model"
        config = dict(config)
        buffer: object = None
        data: Any = None
        source = path  # the file named in errors
        if _is_ort_format(model, path):
            if path is not None and not cache_entry:
                from ortprune.ortformat import check_runtime

                check_runtime(path, self.lib.version)
            config.setdefault("session.load_model_format", "ORT")
            if optimized_model_path is None:
                config.setdefault("session.use_ort_model_bytes_directly", "1")
                config.setdefault("session.use_ort_model_bytes_for_initializers", "1")
            if path is not None:
                data = buffer = _read_model(path, mapped=cache_entry)
                path = None
        if data is None and path is None:
            data = bytes(model)  # type: ignore[arg-type]
            if config.get("session.use_ort_model_bytes_directly") == "1":
                buffer = data
        opts = ctypes.c_void_p()
        self.lib.check(f.CreateSessionOptions(ctypes.byref(opts)), "creating session options")
        release_opts = self.lib.own(self, "session_options", opts.value, f.ReleaseSessionOptions)
        try:
            if self._cpu_mem_arena is not None:
                arena = f.EnableCpuMemArena if self._cpu_mem_arena else f.DisableCpuMemArena
                self.lib.check(arena(opts), "setting the CPU memory arena")
            if threads is not None:
                self.lib.check(f.SetIntraOpNumThreads(opts, threads), "setting intra-op threads")
                self.lib.check(f.SetInterOpNumThreads(opts, threads), "setting inter-op threads")
            self.lib.check(f.SetSessionGraphOptimizationLevel(opts, level), f"setting optimization level {level}")
            if log_level is not None:
                severity = _level(log_level, _capi.LOG_LEVELS, "log level")
                self.lib.check(f.SetSessionLogSeverityLevel(opts, severity), "setting the log level")
            if optimized_model_path is not None:
                self.lib.check(
                    f.SetOptimizedModelFilePath(opts, os.fsencode(optimized_model_path)),
                    "setting the optimized model path",
                )
            for key, value in config.items():
                self.lib.check(
                    f.AddSessionConfigEntry(opts, key.encode(), value.encode()), f"setting session config {key}={value}"
                )
            sess = ctypes.c_void_p()
            if data is not None:
                address = ctypes.addressof(data) if isinstance(data, ctypes.Array) else data
                size = len(data)
                status = f.CreateSessionFromArray(self.lib.env, address, size, opts, ctypes.byref(sess))
                self.lib.check(status, what, source or f"<model bytes, {size} B>")
            else:
                assert path is not None
                self.lib.check(f.CreateSession(self.lib.env, os.fsencode(path), opts, ctypes.byref(sess)), what, path)
        finally:
            release_opts()  # ORT copies what it needs from the options into the session
        return sess, buffer

    def _open_cached(
        self,
        store: OptimizedModelCache,
        path: Path,
        level: int,
        threads: int | None,
        log_level: str | int | None,
        config: dict[str, str],
    ) -> tuple[ctypes.c_void_p, object]:
        """Load the cached optimized model at level disable, or optimize ``path`` and save it to the cache.

        A first start (the model's hash not remembered for the file as it is) loads the model at once and
        hashes it beside the load (both outside the GIL), instead of hashing 20+ MB before it starts."""
        if store.background and not store.remembers(path):
            hashing = InThread(lambda: store.key(path, self.lib.path, self.lib.version, str(level)), "ortprune-hash")
            try:
                opened = self._open(path, level, threads, log_level, None, config)
            except BaseException:
                hashing.discard()
                raise
            try:
                key = hashing.result()
            except Exception:  # the file could not be read for hashing: load as without a cache
                self.cache_status = "miss"
                return opened
            existed = store.entry(key).exists()
            if store.lookup(key) is None:  # (an unusable entry is removed here, with a warning)
                self.cache_status = "rebuilt" if existed else "miss"
                store.schedule(path, self.lib.path, level)
            else:  # an entry made from a copy of this file: used from the next start on
                self.cache_status = "miss"
            return opened
        try:
            key = store.key(path, self.lib.path, self.lib.version, str(level))
        except OSError:  # a file of the model cannot be read: ORT names it as it loads without the cache
            self.cache_status = "miss"
            return self._open(path, level, threads, log_level, None, config)
        existed = store.entry(key).exists()
        hit = store.lookup(key)
        if hit is not None:
            try:
                opened = self._open(hit, 0, threads, log_level, None, config, cache_entry=True)
                self.cache_status, self.loaded_from = "hit", hit
                return opened
            except OrtpruneError as e:
                store.discard(key, f"it cannot be loaded: {e}")
        self.cache_status = "rebuilt" if existed else "miss"
        if store.background:
            store.schedule(path, self.lib.path, level)
            return self._open(path, level, threads, log_level, None, config)
        with store.writing(key) as tmp:
            save = {**config, "session.save_model_format": "ORT"}
            return self._open(path, level, threads, log_level, tmp, save)

    # -- metadata -----------------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def _describe(self, count_fn: Any, name_fn: Any, type_fn: Any) -> tuple[TensorInfo, ...]:
        lib, f = self.lib, self.lib.f
        n = ctypes.c_size_t()
        lib.check(count_fn(self._ptr, ctypes.byref(n)), "counting inputs/outputs")
        infos = []
        for i in range(n.value):
            raw = ctypes.c_void_p()
            lib.check(name_fn(self._ptr, i, lib.allocator, ctypes.byref(raw)), "reading a name")
            if not raw.value:
                raise OrtpruneError(f"ORT returned no name for input/output {i}", self.path)
            try:
                name = ctypes.string_at(raw.value).decode("utf-8")
            finally:
                lib.check(f.AllocatorFree(lib.allocator, raw), "freeing a name")
            type_info = ctypes.c_void_p()
            lib.check(type_fn(self._ptr, i, ctypes.byref(type_info)), f"reading the type of {name!r}")
            try:
                infos.append(self._tensor_info(name, type_info))
            finally:
                f.ReleaseTypeInfo(type_info)
        return tuple(infos)

    def _tensor_info(self, name: str, type_info: ctypes.c_void_p) -> TensorInfo:
        lib, f = self.lib, self.lib.f
        onnx_type = ctypes.c_int()
        lib.check(f.GetOnnxTypeFromTypeInfo(type_info, ctypes.byref(onnx_type)), f"reading the kind of {name!r}")
        kind = _capi.ONNX_TYPES.get(onnx_type.value, f"onnx type {onnx_type.value}")
        if kind != "tensor":
            return TensorInfo(name, kind, 0, ())
        tinfo = ctypes.c_void_p()  # owned by type_info
        lib.check(f.CastTypeInfoToTensorInfo(type_info, ctypes.byref(tinfo)), f"reading tensor info of {name!r}")
        elem = ctypes.c_int()
        lib.check(f.GetTensorElementType(tinfo, ctypes.byref(elem)), f"reading the element type of {name!r}")
        rank = ctypes.c_size_t()
        lib.check(f.GetDimensionsCount(tinfo, ctypes.byref(rank)), f"reading the rank of {name!r}")
        dims = (ctypes.c_int64 * max(rank.value, 1))()
        lib.check(f.GetDimensions(tinfo, dims, rank.value), f"reading the shape of {name!r}")
        syms = (ctypes.c_char_p * max(rank.value, 1))()
        lib.check(f.GetSymbolicDimensions(tinfo, syms, rank.value), f"reading the dim names of {name!r}")
        shape: list[int | str | None] = []
        for i in range(rank.value):
            if dims[i] >= 0:
                shape.append(int(dims[i]))
            else:
                sym = syms[i]
                shape.append(sym.decode("utf-8") if sym else None)
        return TensorInfo(name, kind, elem.value, tuple(shape))

    # -- run ----------------------------------------------------------------------------------------
    def run(self, feeds: Mapping[str, Any], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run the model. ``feeds`` maps every input name to an array of exactly its element type and
        rank; returns the requested (default: all) outputs as new numpy arrays."""
        if self.closed:
            raise OrtpruneError("the session is closed", self.path)
        if outputs is not None and (isinstance(outputs, str | bytes) or not isinstance(outputs, Sequence)):
            raise ArgumentTypeError(f"outputs must be a list of output names (or None: all), got {outputs!r}")
        arrays = self._check_feeds(feeds)
        out_names = list(self.output_names if outputs is None else outputs)
        for name in out_names:
            if name not in self._output_names:
                raise InputError(
                    f"the model has no output {name!r}; outputs: {', '.join(self.output_names)}", self.path
                )

        lib, f = self.lib, self.lib.f
        n_in, n_out = len(arrays), len(out_names)
        in_names = (ctypes.c_char_p * n_in)(*(name.encode() for name in arrays))
        out_names_c = (ctypes.c_char_p * n_out)(*(name.encode() for name in out_names))
        in_values = (ctypes.c_void_p * n_in)()
        out_values = (ctypes.c_void_p * n_out)()
        ptr = self._acquire()
        try:
            for i, (name, arr) in enumerate(arrays.items()):
                shape = (ctypes.c_int64 * max(arr.ndim, 1))(*arr.shape)
                value = ctypes.c_void_p()
                status = f.CreateTensorWithDataAsOrtValue(
                    lib.memory_info,
                    arr.ctypes.data,
                    arr.nbytes,
                    shape,
                    arr.ndim,
                    _capi.dtype_elements()[arr.dtype],
                    ctypes.byref(value),
                )
                lib.check(status, f"creating the tensor for input {name!r}", self.path)
                in_values[i] = value.value
            lib.check(
                f.Run(ptr, None, in_names, in_values, n_in, out_names_c, n_out, out_values),
                "running the model",
                self.path,
            )
            return {name: self._to_numpy(name, out_values[i]) for i, name in enumerate(out_names)}
        finally:
            for v in (*in_values, *out_values):
                if v:
                    f.ReleaseValue(v)
            self._done()

    def _check_feeds(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        import numpy as np

        if not isinstance(feeds, Mapping):
            raise InputError(f"feeds must be a mapping of input names to arrays, got {type(feeds).__name__}",
                             self.path)  # fmt: skip
        unknown = [k for k in feeds if k not in self._input_by_name]
        if unknown:
            raise InputError(f"the model has no input {unknown[0]!r}; inputs: {', '.join(self.input_names)}", self.path)
        arrays: dict[str, np.ndarray] = {}
        symbolic: dict[str, tuple[int, str]] = {}  # dim name → (size, the input that set it)
        for info in self.inputs:
            if info.name not in feeds:
                raise InputError(f"missing input {info.name!r} ({info.type_name}, shape {_fmt(info.shape)})",
                                 self.path)  # fmt: skip
            try:
                arr = np.asarray(feeds[info.name])
            except (ValueError, TypeError) as e:
                raise InputError(f"input {info.name!r} is not an array: {e}", self.path) from None
            if info.dtype is None:
                raise InputError(
                    f"input {info.name!r} has type {info.type_name}, which ortprune cannot feed", self.path
                )
            if arr.dtype != info.dtype:
                raise InputError(
                    f"input {info.name!r}: expected element type {info.type_name}, got {arr.dtype}", self.path
                )
            if arr.ndim != len(info.shape):
                raise InputError(
                    f"input {info.name!r}: expected rank {len(info.shape)} (shape {_fmt(info.shape)}), "
                    f"got rank {arr.ndim} (shape {_fmt(arr.shape)})",
                    self.path,
                )
            for axis, (want, got) in enumerate(zip(info.shape, arr.shape, strict=True)):
                if isinstance(want, int) and want != got:
                    raise InputError(
                        f"input {info.name!r}: expected shape {_fmt(info.shape)}, got {_fmt(arr.shape)} "
                        f"(axis {axis} must be {want})",
                        self.path,
                    )
                if isinstance(want, str) and not _anonymous(want):  # a named dim: its every use must agree
                    seen = symbolic.setdefault(want, (got, info.name))
                    if seen[0] != got:
                        raise InputError(
                            f"input {info.name!r}: dimension {want!r} (axis {axis}) is {got}, but input "
                            f"{seen[1]!r} has {want!r} = {seen[0]}",
                            self.path,
                        )
            arrays[info.name] = np.ascontiguousarray(arr)
        return arrays

    def _to_numpy(self, name: str, value: int | None) -> np.ndarray:
        lib, f = self.lib, self.lib.f
        info = ctypes.c_void_p()
        lib.check(f.GetTensorTypeAndShape(value, ctypes.byref(info)), f"reading output {name!r}", self.path)
        try:
            elem, rank = ctypes.c_int(), ctypes.c_size_t()
            lib.check(f.GetTensorElementType(info, ctypes.byref(elem)), f"reading output {name!r}", self.path)
            lib.check(f.GetDimensionsCount(info, ctypes.byref(rank)), f"reading output {name!r}", self.path)
            dims = (ctypes.c_int64 * max(rank.value, 1))()
            lib.check(f.GetDimensions(info, dims, rank.value), f"reading output {name!r}", self.path)
        finally:
            f.ReleaseTensorTypeAndShapeInfo(info)
        import numpy as np

        dtype = _capi.element_dtypes().get(elem.value)
        if dtype is None:
            kind = _capi.ELEMENT_NAMES.get(elem.value, str(elem.value))
            raise OrtpruneError(f"output {name!r} has element type {kind}, which ortprune cannot read", self.path)
        out = np.empty(tuple(dims[i] for i in range(rank.value)), dtype=dtype)
        if out.nbytes:
            data = ctypes.c_void_p()
            lib.check(f.GetTensorMutableData(value, ctypes.byref(data)), f"reading output {name!r}", self.path)
            if not data.value:
                raise OrtpruneError(f"ORT returned no data for output {name!r}", self.path)
            ctypes.memmove(out.ctypes.data, data.value, out.nbytes)
        return out

    # -- lifetime -----------------------------------------------------------------------------------
    def _acquire(self) -> int:
        with self._lock:
            if self._ptr is None or self._closing:
                raise OrtpruneError("the session is closed", self.path)
            self._inflight += 1
            return self._ptr

    def _done(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._closing and self._inflight == 0:
                self._ptr = None
                self._release()

    def close(self) -> None:
        """Release the session (after runs still in progress on other threads have finished)."""
        with self._lock:
            if self._ptr is None or self._closing:
                return
            self._closing = True
            if self._inflight == 0:
                self._ptr = None
                self._release()

    @property
    def closed(self) -> bool:
        return self._ptr is None or self._closing

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        src = str(self.path) if self.path is not None else "<bytes>"
        return f"Session({src!r}, inputs={self.input_names}, outputs={self.output_names}, lib={self.lib.version})"


def _is_ort_format(model: object, path: Path | None) -> bool:
    from ortprune.ortformat import FILE_IDENTIFIER, is_ort_format

    if path is not None:
        return is_ort_format(path)
    return bytes(memoryview(model)[4:8]) == FILE_IDENTIFIER  # type: ignore[arg-type]


def _read_model(path: Path, mapped: bool) -> ctypes.Array[ctypes.c_char]:
    """The file's bytes as a ctypes buffer: memory-mapped copy-on-write (no read; pages shared with the
    page cache), or read into memory (also when the file system cannot map it)."""
    import mmap

    try:
        with open(path, "rb") as fh:
            if mapped:
                with contextlib.suppress(OSError):
                    mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
                    return (ctypes.c_char * len(mm)).from_buffer(mm)
            size = os.fstat(fh.fileno()).st_size
            buf = (ctypes.c_char * size)()
            if fh.readinto(buf) != size:
                raise OrtpruneError("the file changed size while it was read", path)
            return buf
    except (OSError, ValueError) as e:  # ValueError: mmap of an empty file
        raise OrtpruneError(f"cannot read the model: {e}", path) from None


def _fmt(shape: Sequence[int | str | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _anonymous(dim: str) -> bool:
    """Dim names exporters use for "unknown" (Paddle2ONNX writes ``?`` on every free axis, ORT's own
    shape inference ``unk__N``): ORT does not hold them equal, so neither does the check."""
    return dim in ("?", "") or dim.startswith("unk__")
