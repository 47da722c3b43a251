"""Map ORT's C++ symbols to operators (``domain;op``).

Two kinds of evidence, from exact to approximate:

1. **Kernel registration classes.** ``ONNX_OPERATOR_*KERNEL_CLASS_NAME`` makes one class per registration,
   named ``<provider>_<Op>_<domain>_ver<since>[_<until>][_<type>]`` (e.g.
   ``kCpuExecutionProvider_Attention_kMSDomain_ver1_float``). Every symbol that mentions one (its
   ``BuildKernelCreateInfo<...>`` specialization, the kernel-creation lambda) belongs to that registration.
2. **Kernel implementation classes** named like the op, in the namespace of its domain:
   ``onnxruntime::contrib::Attention<float>::Compute`` → ``com.microsoft;Attention``,
   ``onnxruntime::functors::Relu<float>`` → ``ai.onnx;Relu``. Only names that are a registered op of the
   library count; helpers (``AttentionBase``, MLAS, Eigen, protobuf...) stay *shared*.

Anything else is shared code: removing one op does not remove it unless nothing else reaches it, which
:mod:`ortprune.analyze.estimate` checks on the call graph.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ortprune.opconfig import DOMAINS

_KERNEL_RE = re.compile(
    r"k(?P<provider>[A-Za-z0-9]+?)ExecutionProvider_(?P<op>[A-Za-z0-9]+)_(?P<domain>k[A-Za-z]+Domain)"
    r"_ver(?P<since>\d+)(?:_(?P<until>\d+)(?![A-Za-z]))?(?:_(?P<type>[A-Za-z][A-Za-z0-9_]*))?"
)
_NAMESPACE_DOMAIN = {"contrib": "com.microsoft", "ml": "ai.onnx.ml", "functors": "ai.onnx"}
_PREFIXES = (
    "vtable for ",
    "typeinfo for ",
    "typeinfo name for ",
    "VTT for ",
    "construction vtable for ",
    "guard variable for ",
    "non-virtual thunk to ",
    "virtual thunk to ",
    "covariant return thunk to ",
)


@dataclass(frozen=True, order=True)
class KernelReg:
    """One kernel registration: what ORT's reduced build keeps or drops as a unit."""

    domain: str
    op: str
    since: int
    until: int | None  # None: open-ended (the newest version)
    type: str | None
    provider: str

    @property
    def key(self) -> str:
        return f"{self.domain};{self.op}"

    def kept_by(self, opsets: Iterable[int]) -> bool:
        """ORT's rule (``op_registration_utils``): kept if a listed opset lies in ``[since, until]``."""
        return any(o >= self.since and (self.until is None or o <= self.until) for o in opsets)

    def __str__(self) -> str:
        versions = f"{self.since}" + (f"-{self.until}" if self.until is not None else "+")
        return f"{self.domain};{self.op};{versions}" + (f";{self.type}" if self.type else "")


def parse_kernel_reg(name: str) -> KernelReg | None:
    """The registration a (demangled) symbol name mentions, if any."""
    if "ExecutionProvider_" not in name:
        return None
    m = _KERNEL_RE.search(name)
    if m is None:
        return None
    domain = DOMAINS.get(m["domain"])
    if domain is None:
        return None
    until = int(m["until"]) if m["until"] else None
    return KernelReg(domain, m["op"], int(m["since"]), until, m["type"], m["provider"])


_SCOPE_TOKENS = re.compile(r"::|[<>(]")


def _split_scope(name: str) -> list[str]:
    """``a::b<c::d>::e(f)`` → ``['a', 'b<c::d>', 'e']`` (stops at the parameter list)."""
    parts: list[str] = []
    depth = 0
    last = 0
    for m in _SCOPE_TOKENS.finditer(name):
        tok = m.group()
        if tok == "<":
            depth += 1
        elif tok == ">":
            depth = max(0, depth - 1)
        elif tok == "(":
            if depth == 0 and not name.startswith("(anonymous namespace)", m.start()):
                parts.append(name[last : m.start()])
                return [p.strip() for p in parts]
        elif depth == 0:
            parts.append(name[last : m.start()])
            last = m.end()
    parts.append(name[last:])
    return [p.strip() for p in parts]


def _base(component: str) -> str:
    cut = component.find("<")
    return component if cut < 0 else component[:cut]


class OpMapper:
    """Maps demangled symbol names to ``(domain;op, registration-or-None)`` given the library's registrations."""

    def __init__(self, regs: Iterable[KernelReg]) -> None:
        self.regs = sorted(set(regs))
        self.ops_by_domain: dict[str, set[str]] = {}
        for r in self.regs:
            self.ops_by_domain.setdefault(r.domain, set()).add(r.op)
        self._domains_of: dict[str, list[str]] = {}
        for d, ops in self.ops_by_domain.items():
            for op in ops:
                self._domains_of.setdefault(op, []).append(d)

    @classmethod
    def from_names(cls, demangled: Iterable[str]) -> OpMapper:
        return cls(r for r in map(parse_kernel_reg, demangled) if r is not None)

    def _lookup(self, namespace_domain: str, op: str) -> str | None:
        if op in self.ops_by_domain.get(namespace_domain, ()):
            return f"{namespace_domain};{op}"
        domains = self._domains_of.get(op, [])
        return f"{domains[0]};{op}" if len(domains) == 1 else None

    def map(self, demangled: str) -> tuple[str, KernelReg | None] | None:
        reg = parse_kernel_reg(demangled)
        if reg is not None:
            return reg.key, reg
        name = demangled
        is_class = False
        for p in _PREFIXES:
            if name.startswith(p):
                name = name[len(p) :]
                is_class = p.endswith("for ")
                break
        if not name.startswith("onnxruntime::"):
            return None
        parts = _split_scope(name)
        scope = parts if is_class else parts[:-1]
        domain = "ai.onnx"
        for comp in scope[1:]:
            base = _base(comp)
            if base in _NAMESPACE_DOMAIN:
                domain = _NAMESPACE_DOMAIN[base]
                continue
            if base and base[0].isupper():
                hit = self._lookup(domain, base)
                if hit is not None:
                    return hit, None
        # ElementWiseKernel<onnxruntime::functors::Relu<float>> and friends.
        for m in re.finditer(r"onnxruntime::functors::([A-Z][A-Za-z0-9]*)", "::".join(scope)):
            hit = self._lookup("ai.onnx", m.group(1))
            if hit is not None:
                return hit, None
        return None
