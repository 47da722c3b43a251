"""Run any ``libonnxruntime`` shared library from Python through its C API (ctypes; no onnxruntime import).

>>> from ortprune.runtime import Session
>>> with Session("model.onnx", lib="/path/to/libonnxruntime.so") as s:
...     out = s.run({"x": x})
"""

from ortprune.runtime.library import (
    LIBRARY_ENV,
    Library,
    OrtError,
    available_providers,
    find_library,
    load_library,
    negotiate_api,
    wheel_library,
)
from ortprune.runtime.session import InputError, Session, TensorInfo

__all__ = [
    "LIBRARY_ENV",
    "InputError",
    "Library",
    "OrtError",
    "Session",
    "TensorInfo",
    "available_providers",
    "find_library",
    "load_library",
    "negotiate_api",
    "wheel_library",
]
