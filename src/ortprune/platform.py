"""Facts about the machine a result was made on (ISA, CPU features), recorded in outputs."""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

_INTERESTING_FLAGS = (
    "avx",
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512vnni",
    "avx_vnni",
    "amx_tile",
    "fma",
    "f16c",
)


@functools.cache
def cpu_flags() -> tuple[str, ...]:
    """The SIMD features (from /proc/cpuinfo) that decide which kernels and rewrites ORT uses."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return tuple(f for f in _INTERESTING_FLAGS if f in flags)
    return ()


def machine_info() -> dict[str, object]:
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": list(cpu_flags()),
        "cpu_model": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
