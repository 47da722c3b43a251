"""C++ demangling: libstdc++'s ``abi::__cxa_demangle`` through ctypes, ``c++filt`` in one batch as fallback."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import shutil
import subprocess
from collections.abc import Sequence


@functools.cache
def _cxa_demangle() -> tuple[object, object] | None:
    for name in ("stdc++", "c++"):
        path = ctypes.util.find_library(name)
        candidates = [path] if path else []
        candidates += ["libstdc++.so.6"] if name == "stdc++" else []
        for cand in candidates:
            try:
                lib = ctypes.CDLL(cand)
                fn = lib.__cxa_demangle
            except (OSError, AttributeError):
                continue
            fn.restype = ctypes.c_void_p
            fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            free = libc.free
            free.argtypes = [ctypes.c_void_p]
            free.restype = None
            return fn, free
    return None


def _demangle_ctypes(names: Sequence[str], fns: tuple[object, object]) -> list[str]:
    fn, free = fns
    status = ctypes.c_int(0)
    out = []
    for name in names:
        if not name.startswith("_Z"):
            out.append(name)
            continue
        ptr = fn(name.encode(), None, None, ctypes.byref(status))  # type: ignore[operator]
        if ptr and status.value == 0:
            out.append(ctypes.string_at(ptr).decode("utf-8", "replace"))
            free(ptr)  # type: ignore[operator]
        else:
            out.append(name)
    return out


def _demangle_cxxfilt(names: Sequence[str]) -> list[str]:
    exe = shutil.which("c++filt")
    if exe is None or any("\n" in n for n in names):
        return list(names)
    proc = subprocess.run([exe], input="\n".join(names) + "\n", capture_output=True, text=True, check=False)
    lines = proc.stdout.split("\n")
    if proc.returncode != 0 or len(lines) < len(names):
        return list(names)
    return lines[: len(names)]


def demangle(names: Sequence[str], backend: str = "auto") -> list[str]:
    """Demangle Itanium C++ names; names that are not mangled come back unchanged.

    ``backend`` is ``auto`` (ctypes, else ``c++filt``), ``ctypes`` or ``cxxfilt``.
    """
    if backend in ("auto", "ctypes"):
        fns = _cxa_demangle()
        if fns is not None:
            return _demangle_ctypes(names, fns)
        if backend == "ctypes":
            raise RuntimeError("libstdc++'s __cxa_demangle is not available")
    return _demangle_cxxfilt(names)


def short_name(demangled: str) -> str:
    """Drop template arguments and the parameter list, as bloaty's ``shortsymbols`` does."""
    out: list[str] = []
    depth = 0
    i = 0
    n = len(demangled)
    while i < n:
        c = demangled[i]
        if c == "<" and not demangled.startswith("operator", max(0, i - 8)):
            depth += 1
        elif c == ">" and depth and not demangled.startswith("operator", max(0, i - 9)):
            depth -= 1
        elif c == "(" and depth == 0 and not demangled.startswith("operator", max(0, i - 8)):
            if demangled.startswith("(anonymous namespace)", i):
                out.append("(anonymous namespace)")
                i += len("(anonymous namespace)")
                continue
            break
        elif depth == 0:
            out.append(c)
        i += 1
    return "".join(out).strip() or demangled
