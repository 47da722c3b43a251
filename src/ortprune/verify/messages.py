"""ORT's messages when a session needs a kernel the library does not have: their patterns, in one place
(the probe classifies with them, verify names the missing op and the config line that fixes it)."""

from __future__ import annotations

import re

#: ``Could not find an implementation for Gelu(20) node with name ''`` (ORT_NOT_IMPLEMENTED, ai.onnx ops)
_NO_IMPLEMENTATION = re.compile(r"Could not find an implementation for (?P<op>\w+)\((?P<version>\d+)\) node")
#: ``Failed to find kernel for com.microsoft.FusedMatMul(1)`` (the domain is left out for ai.onnx)
_NO_KERNEL = re.compile(r"Failed to find kernel for (?:(?P<domain>[\w.]+)\.)?(?P<op>\w+)\((?P<version>\d+)\)")
#: a shorter form some code paths use, without the op
_KERNEL_NOT_FOUND = re.compile(r"Kernel not found")


def says_kernel_missing(message: str) -> bool:
    """Whether ORT's message says a kernel is missing (in any of its forms)."""
    return any(p.search(message) for p in (_NO_IMPLEMENTATION, _NO_KERNEL, _KERNEL_NOT_FOUND))


def missing_kernel(message: str) -> tuple[str, str] | None:
    """``(domain, op)`` of the kernel ORT's message says is missing, or None."""
    for pattern in (_NO_IMPLEMENTATION, _NO_KERNEL):
        m = pattern.search(message)
        if m:
            return m.groupdict().get("domain") or "ai.onnx", m["op"]
    return None
