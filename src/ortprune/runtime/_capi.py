"""The part of ONNX Runtime's C API (``onnxruntime_c_api.h``) that ortprune calls, as data.

Hand-written because no maintained pure-Python (ctypes/cffi) binding of the C API exists; the C API is
stable: ``struct OrtApi`` is append-only, so a function's slot index never changes between releases.
Indices were counted from the ORT 1.21.0 header (285 slots) and checked by calling each through ctypes
against the PyPI ``libonnxruntime.so.1.32.0`` (``tests/runtime`` calls them).
"""

from __future__ import annotations

import ctypes
import functools
import os
from ctypes import POINTER, c_char_p, c_int, c_int64, c_size_t, c_uint32, c_void_p
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


#: Oldest C API we accept (the same floor as the ``ort`` Rust crate: ORT 1.17).
MIN_API_VERSION = 17
#: Newest C API we have checked the table against (PyPI onnxruntime 1.32.0). Newer libraries are asked
#: for this version: ORT keeps serving old API versions, and we use no slot added after it.
MAX_API_VERSION = 32

#: The message of the stub a library built with ``--prune c-api`` returns for every C API function it left out.
NOT_BUILT_MESSAGE = (
    "this C API function is not in this pruned ONNX Runtime (ortprune --prune c-api keeps what its runtime calls)"
)


def c_api_pruned(library: str | os.PathLike[str]) -> bool:
    """Whether ``library`` was built with ``--prune c-api`` (its stub's message is in the file)."""
    with open(library, "rb") as f:
        return NOT_BUILT_MESSAGE.encode() in f.read()


STATUS = c_void_p  # OrtStatus*: NULL means success
PTR = c_void_p  # any opaque Ort* handle
OUT = POINTER(c_void_p)  # Ort** out-parameter
NAMES = POINTER(c_char_p)  # const char* const* names
DIMS = POINTER(c_int64)  # const int64_t* shape


@dataclass(frozen=True)
class Slot:
    """One function pointer of ``struct OrtApi``: its index, C signature and the API version that added it."""

    index: int
    restype: Any
    argtypes: tuple[Any, ...]
    since: int = 1


SLOTS: dict[str, Slot] = {
    "GetErrorCode": Slot(1, c_int, (PTR,)),
    "GetErrorMessage": Slot(2, c_char_p, (PTR,)),
    "CreateEnv": Slot(3, STATUS, (c_int, c_char_p, OUT)),
    "CreateSession": Slot(7, STATUS, (PTR, c_char_p, PTR, OUT)),
    "CreateSessionFromArray": Slot(8, STATUS, (PTR, c_void_p, c_size_t, PTR, OUT)),
    # Run(session, run_options, input_names, inputs, n_in, output_names, n_out, outputs)
    "Run": Slot(
        9, STATUS, (PTR, PTR, POINTER(c_char_p), POINTER(c_void_p), c_size_t, POINTER(c_char_p), c_size_t, OUT)
    ),
    "CreateSessionOptions": Slot(10, STATUS, (OUT,)),
    "SetOptimizedModelFilePath": Slot(11, STATUS, (PTR, c_char_p)),
    "EnableCpuMemArena": Slot(18, STATUS, (PTR,)),
    "DisableCpuMemArena": Slot(19, STATUS, (PTR,)),
    "SetSessionLogSeverityLevel": Slot(22, STATUS, (PTR, c_int)),
    "SetSessionGraphOptimizationLevel": Slot(23, STATUS, (PTR, c_int)),
    "SetIntraOpNumThreads": Slot(24, STATUS, (PTR, c_int)),
    "SetInterOpNumThreads": Slot(25, STATUS, (PTR, c_int)),
    "SessionGetInputCount": Slot(30, STATUS, (PTR, POINTER(c_size_t))),
    "SessionGetOutputCount": Slot(31, STATUS, (PTR, POINTER(c_size_t))),
    "SessionGetInputTypeInfo": Slot(33, STATUS, (PTR, c_size_t, OUT)),
    "SessionGetOutputTypeInfo": Slot(34, STATUS, (PTR, c_size_t, OUT)),
    "SessionGetInputName": Slot(36, STATUS, (PTR, c_size_t, PTR, OUT)),  # name freed with AllocatorFree
    "SessionGetOutputName": Slot(37, STATUS, (PTR, c_size_t, PTR, OUT)),
    # CreateTensorWithDataAsOrtValue(mem_info, data, nbytes, shape, rank, element_type, out): caller owns data
    "CreateTensorWithDataAsOrtValue": Slot(
        49, STATUS, (PTR, c_void_p, c_size_t, POINTER(c_int64), c_size_t, c_int, OUT)
    ),
    "GetTensorMutableData": Slot(51, STATUS, (PTR, OUT)),
    "CastTypeInfoToTensorInfo": Slot(55, STATUS, (PTR, OUT)),  # result is owned by the type info
    "GetOnnxTypeFromTypeInfo": Slot(56, STATUS, (PTR, POINTER(c_int))),
    "GetTensorElementType": Slot(60, STATUS, (PTR, POINTER(c_int))),
    "GetDimensionsCount": Slot(61, STATUS, (PTR, POINTER(c_size_t))),
    "GetDimensions": Slot(62, STATUS, (PTR, POINTER(c_int64), c_size_t)),
    "GetSymbolicDimensions": Slot(63, STATUS, (PTR, POINTER(c_char_p), c_size_t)),
    "GetTensorTypeAndShape": Slot(65, STATUS, (PTR, OUT)),  # released with ReleaseTensorTypeAndShapeInfo
    "CreateCpuMemoryInfo": Slot(69, STATUS, (c_int, c_int, OUT)),
    "AllocatorFree": Slot(76, STATUS, (PTR, c_void_p)),
    "GetAllocatorWithDefaultOptions": Slot(78, STATUS, (OUT,)),  # not owned: never released
    "ReleaseEnv": Slot(92, None, (PTR,)),
    "ReleaseStatus": Slot(93, None, (PTR,)),
    "ReleaseMemoryInfo": Slot(94, None, (PTR,)),
    "ReleaseSession": Slot(95, None, (PTR,)),
    "ReleaseValue": Slot(96, None, (PTR,)),
    "ReleaseTypeInfo": Slot(98, None, (PTR,)),
    "ReleaseTensorTypeAndShapeInfo": Slot(99, None, (PTR,)),
    "ReleaseSessionOptions": Slot(100, None, (PTR,)),
    "GetAvailableProviders": Slot(125, STATUS, (POINTER(POINTER(c_char_p)), POINTER(c_int))),
    "ReleaseAvailableProviders": Slot(126, STATUS, (POINTER(c_char_p), c_int)),
    "AddSessionConfigEntry": Slot(130, STATUS, (PTR, c_char_p, c_char_p)),
    "GetBuildInfoString": Slot(254, c_char_p, (), since=15),
}


class OrtApiBase(ctypes.Structure):
    """``struct OrtApiBase { const OrtApi* GetApi(uint32_t); const char* GetVersionString(void); }``."""

    _fields_ = [
        ("GetApi", ctypes.CFUNCTYPE(c_void_p, c_uint32)),
        ("GetVersionString", ctypes.CFUNCTYPE(c_char_p)),
    ]


# The ONNXTensorElementDataType values Session.run exchanges as numpy arrays (ELEMENT_NAMES below are numpy's
# names for them). Not dtypes here: importing ortprune.runtime must not import numpy, so a cold start
# overlaps that import with ORT's load.
NUMPY_ELEMENTS = (1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13)


@functools.cache
def element_dtypes() -> dict[int, np.dtype[Any]]:
    """ONNX element type -> numpy dtype (numpy imported on first use)."""
    import numpy as np

    return {k: np.dtype(ELEMENT_NAMES[k]) for k in NUMPY_ELEMENTS}


@functools.cache
def dtype_elements() -> dict[np.dtype[Any], int]:
    """numpy dtype -> ONNX element type."""
    return {v: k for k, v in element_dtypes().items()}


#: ONNX names of every element type, for messages about the ones we do not exchange.
ELEMENT_NAMES: dict[int, str] = {
    0: "undefined",
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    14: "complex64",
    15: "complex128",
    16: "bfloat16",
    17: "float8e4m3fn",
    18: "float8e4m3fnuz",
    19: "float8e5m2",
    20: "float8e5m2fnuz",
    21: "uint4",
    22: "int4",
    23: "float4e2m1",
    24: "uint2",
    25: "int2",
    26: "float8e8m0",
}

# enum ONNXType
ONNX_TYPES: dict[int, str] = {
    0: "unknown",
    1: "tensor",
    2: "sequence",
    3: "map",
    4: "opaque",
    5: "sparse_tensor",
    6: "optional",
}

# enum OrtErrorCode (12+ appear in headers after 1.21)
ERROR_CODES: dict[int, str] = {
    0: "OK",
    1: "FAIL",
    2: "INVALID_ARGUMENT",
    3: "NO_SUCHFILE",
    4: "NO_MODEL",
    5: "ENGINE_ERROR",
    6: "RUNTIME_EXCEPTION",
    7: "INVALID_PROTOBUF",
    8: "MODEL_LOADED",
    9: "NOT_IMPLEMENTED",
    10: "INVALID_GRAPH",
    11: "EP_FAIL",
    12: "MODEL_LOAD_CANCELED",
    13: "MODEL_REQUIRES_COMPILATION",
    14: "NOT_FOUND",
    15: "DEVICE_RESET",
}

# enum OrtLoggingLevel
LOG_LEVELS: dict[str, int] = {"verbose": 0, "info": 1, "warning": 2, "error": 3, "fatal": 4}
# CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault)
ARENA_ALLOCATOR = 1
MEM_TYPE_DEFAULT = 0
