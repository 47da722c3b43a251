"""Read an ONNX model's structure without its weights.

``onnx.load(load_external_data=False)`` still parses every inline initializer into memory. Python's
protobuf API cannot skip a field without decoding it, so this module walks the wire format of the two
outer messages by hand (ModelProto → GraphProto) over an ``mmap`` and skips the bytes of initializers:
a 90 MB model costs the size of its graph, not of its weights. Everything else is parsed by ``onnx``.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from ortprune.errors import ModelError

# Field numbers from onnx.proto3.
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_GRAPH_SPARSE_INITIALIZER = 15
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_NAME = 1, 2, 8
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_ENTRY_KEY, _ENTRY_VALUE = 1, 2


class _Truncated(Exception):
    pass


class _BadModel(Exception):
    """A well-formed protobuf whose content no ONNX reader accepts (the message says what)."""


def _varint(buf: memoryview | bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _Truncated
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Truncated


def _fields(buf: memoryview | bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield (field number, wire type, value or payload start, payload end, record start)."""
    while pos < end:
        start = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Truncated
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value, pos, start
        elif wire == 1:
            pos += 8
            yield number, wire, pos - 8, pos, start
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise _Truncated
            yield number, wire, pos, pos + length, start
            pos += length
        elif wire == 5:
            pos += 4
            yield number, wire, pos - 4, pos, start
        else:
            raise _Truncated
        if pos > end:
            raise _Truncated


@dataclass
class InitializerStub:
    """An initializer's name, element type, shape and where its bytes live — never the bytes."""

    name: str
    data_type: int
    dims: list[int]
    external_location: str | None = None
    external_offset: int = 0
    external_length: int | None = None


@dataclass
class LazyModel:
    """A ModelProto whose graph has no initializers, plus stubs describing them."""

    path: Path
    model: onnx.ModelProto
    initializers: list[InitializerStub] = field(default_factory=list)
    file_size: int = 0
    sparse_initializer_names: list[str] = field(default_factory=list)


def _parse_initializer(buf: memoryview, start: int, end: int) -> InitializerStub:
    stub = InitializerStub(name="", data_type=0, dims=[])
    for number, wire, a, b, _ in _fields(buf, start, end):
        if number == _TENSOR_DIMS:
            if wire == 0:
                stub.dims.append(a)
            else:  # packed
                pos = a
                while pos < b:
                    v, pos = _varint(buf, pos, b)
                    stub.dims.append(v)
        elif number == _TENSOR_DATA_TYPE and wire == 0:
            stub.data_type = a
        elif number == _TENSOR_NAME and wire == 2:
            stub.name = bytes(buf[a:b]).decode("utf-8", "replace")
        elif number == _TENSOR_EXTERNAL_DATA and wire == 2:
            key = value = ""
            for n2, w2, c, d, _ in _fields(buf, a, b):
                if w2 == 2 and n2 in (_ENTRY_KEY, _ENTRY_VALUE):
                    text = bytes(buf[c:d]).decode("utf-8", "replace")
                    key, value = (text, value) if n2 == _ENTRY_KEY else (key, text)
            if key == "location":
                stub.external_location = value
            elif key in ("offset", "length"):
                if not (value.isascii() and value.isdigit()) or len(value) > 19:
                    raise _BadModel(f"initializer {stub.name[:80]!r}: external data {key} {value[:40]!r} is not "
                                    "a non-negative integer")  # fmt: skip
                if key == "offset":
                    stub.external_offset = int(value)
                else:
                    stub.external_length = int(value)
    return stub


def load_structure(path: str | Path) -> LazyModel:
    """Parse ``path`` into a weight-free ModelProto; raise ModelError naming the file on bad input."""
    from ortprune._io import input_problem

    path = Path(path)
    problem = input_problem(path)
    if problem is not None:
        raise ModelError(f"cannot read the model: {problem}", path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise ModelError(f"cannot read the model: {e.strerror or e}", path) from None
    with f:
        size = path.stat().st_size
        if size == 0:
            raise ModelError("file is empty, not an ONNX model", path)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            buf = memoryview(mm)
            try:
                return _load(path, buf, size)
            except (_Truncated, DecodeError, UnicodeDecodeError, RuntimeWarning, RecursionError):
                raise ModelError("not a valid ONNX model (truncated or not a protobuf ModelProto)", path) from None
            except _BadModel as e:
                raise ModelError(str(e), path) from None
            finally:
                buf.release()


def _load(path: Path, buf: memoryview, size: int) -> LazyModel:
    outer = bytearray()
    graph_parts = bytearray()
    initializers: list[InitializerStub] = []
    sparse_names: list[str] = []
    have_graph = False
    for number, wire, a, b, start in _fields(buf, 0, size):
        if number == _MODEL_GRAPH and wire == 2:
            have_graph = True
            for n2, w2, c, d, s2 in _fields(buf, a, b):
                if n2 == _GRAPH_INITIALIZER and w2 == 2:
                    initializers.append(_parse_initializer(buf, c, d))
                elif n2 == _GRAPH_SPARSE_INITIALIZER and w2 == 2:  # sparse weights (rare): only the name is kept
                    sparse_names.append(onnx.SparseTensorProto.FromString(bytes(buf[c:d])).values.name)
                else:
                    graph_parts += buf[s2:d]
        else:
            outer += buf[start:b]
    model = onnx.ModelProto.FromString(bytes(outer))
    if not have_graph or model.ir_version == 0 or not model.opset_import:
        raise _Truncated
    model.graph.ParseFromString(bytes(graph_parts))
    return LazyModel(
        path=path, model=model, initializers=initializers, file_size=size, sparse_initializer_names=sparse_names
    )


def check_external_data(lazy: LazyModel) -> None:
    """Every external-data file an initializer names must exist and be long enough (never read)."""
    base = lazy.path.parent
    sizes: dict[str, int] = {}
    for stub in lazy.initializers:
        if stub.external_location is None:
            continue
        location = stub.external_location
        if location not in sizes:
            from ortprune._io import input_problem

            if not location or "\0" in location or Path(location).is_absolute() or ".." in Path(location).parts:
                raise ModelError(
                    f"external data location {location[:200]!r} of initializer {stub.name[:80]!r} must be a "
                    "relative path inside the model's directory (ONNX Runtime refuses others)",
                    lazy.path,
                )
            target = base / location
            problem = input_problem(target)
            if problem is not None:
                raise ModelError(
                    f"external data file {location!r} of initializer {stub.name!r}: {problem} (looked for {target})",
                    lazy.path,
                )
            sizes[location] = target.stat().st_size
        if stub.external_length is not None and stub.external_offset + stub.external_length > sizes[location]:
            raise ModelError(
                f"external data file {location!r} is shorter than initializer {stub.name!r} needs "
                f"({sizes[location]} < {stub.external_offset + stub.external_length} bytes)",
                lazy.path,
            )
