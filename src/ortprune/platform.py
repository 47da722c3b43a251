"""Facts about the machine: what a result was made on (ISA, CPU features, recorded in outputs), and the
bounds a count the user gives (threads, jobs, workers) must stay within."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from ortprune.errors import OrtpruneError, UsageError

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


def max_parallel() -> int:
    """The most threads, worker processes or compile jobs one option may ask for: 8 per core, at least 64.
    More only slows a run down, and a typo (``--threads 1000000``) would start threads until the kernel
    kills the process."""
    return max(64, 8 * (os.cpu_count() or 1))


def check_parallel(value: int | None, what: str, minimum: int = 1, top: int | None = None) -> int | None:
    """``value`` (None: the default) if it is an integer from ``minimum`` to ``top`` (default
    :func:`max_parallel`), else a :class:`UsageError` that says the bound and the machine's cores."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{what} must be an integer, got {value!r}")
    if top is None:
        top, why = max_parallel(), f"8 per core, at least 64; {os.cpu_count()} cores here"
    else:
        why = "the limit for this option"
    if not minimum <= value <= top:
        raise UsageError(f"{what} must be between {minimum} and {top} ({why}), got {value}")
    return value


def memory_bytes() -> int | None:
    """The machine's physical memory in bytes, or None when the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Target:
    """A machine ortprune builds for and runs libraries of (``--target``): names, tools and ELF identity."""

    name: str  # linux-x86_64, linux-aarch64 (ortbuild.official's keys)
    triple: str  # GNU triple: Debian's cross compilers' and binutils' prefix
    processor: str  # CMAKE_SYSTEM_PROCESSOR, platform.machine()
    elf_machine: int  # ELF e_machine of its libraries
    qemu: str  # qemu-user's emulator for it
    packages: tuple[str, ...]  # apt packages giving its cross compiler, binutils and sysroot
    #: slim's default --tolerance against the target's official library: aarch64's LayerNormalization loop
    #: compiles otherwise under Debian's gcc 12 than under the release's gcc 14 (docs/results, measured 1.6e-5)
    tolerance: float = 1e-5

    @property
    def sysroot(self) -> Path:
        """Where Debian's cross packages put its C library and loader (``qemu -L``)."""
        return Path("/usr") / self.triple


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("linux-x86_64", "x86_64-linux-gnu", "x86_64", 62, "qemu-x86_64",
               ("g++-x86-64-linux-gnu", "crossbuild-essential-amd64")),
        Target("linux-aarch64", "aarch64-linux-gnu", "aarch64", 183, "qemu-aarch64",
               ("g++-aarch64-linux-gnu", "crossbuild-essential-arm64"), tolerance=2e-5),
    )
}  # fmt: skip


def host_target() -> str:
    """This machine's target name (``linux-x86_64``, ``linux-aarch64``)."""
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    return f"{platform.system().lower()}-{machine}"


def target(name: str) -> Target:
    """The target called ``name``; OrtpruneError naming the known ones otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise OrtpruneError(f"unknown target {name!r}; known: {', '.join(TARGETS)}") from None


def target_of_machine(elf_machine: int) -> Target | None:
    """The target whose libraries have this ELF e_machine, if ortprune knows one."""
    return next((t for t in TARGETS.values() if t.elf_machine == elf_machine), None)
