"""Operator schemas: ONNX's own (``onnx.defs``) plus ORT's contrib schemas when onnxruntime is installed."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import onnx.defs

if TYPE_CHECKING:  # opconfig imports this module (since_version); the config is only read here
    from ortprune.opconfig import OpConfig

#: Schema class tags in ONNX/ORT's C++ (``ONNX_OPERATOR_SET_SCHEMA_CLASS_NAME(Tag, version, Op)`` makes the
#: class ``Tag_ver<version>_<Op>``) per config domain.
DOMAIN_TAGS: dict[str, str] = {"ai.onnx": "Onnx", "ai.onnx.ml": "OnnxML", "com.microsoft": "Microsoft"}

SchemaId = tuple[str, int, str]  # (tag, since_version, op)


@functools.cache
def _ort_schemas() -> dict[tuple[str, str], list[Any]]:
    """ORT's registered schemas (com.microsoft, nchwc, ...), grouped by (domain, op), newest first."""
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as C
    except ImportError:  # onnxruntime is an optional extra
        return {}
    table: dict[tuple[str, str], list[Any]] = {}
    for s in C.get_all_operator_schema():
        table.setdefault((s.domain or "ai.onnx", s.name), []).append(s)
    for versions in table.values():
        versions.sort(key=lambda s: -s.since_version)
    return table


def _onnx_domain(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


@functools.cache
def get_schema(domain: str, op: str, opset: int) -> Any | None:
    """The schema in force for ``op`` at ``opset`` of ``domain``, or None when no library knows it."""
    try:
        return onnx.defs.get_schema(op, opset, _onnx_domain(domain))
    except onnx.defs.SchemaError:
        pass
    for s in _ort_schemas().get((domain, op), []):
        if s.since_version <= opset:
            return s
    return None


@functools.cache
def domain_has_schemas(domain: str) -> bool:
    """Whether the schemas known here cover ``domain`` at all (ORT's contrib domains need onnxruntime)."""
    if domain in ("ai.onnx", "ai.onnx.ml") or any(d == domain for d, _ in _ort_schemas()):
        return True
    return any(s.domain == domain for s in onnx.defs.get_all_schemas())


def since_version(domain: str, op: str, opset: int) -> int | None:
    """The version of the op's schema in force at ``opset`` (what ORT's kernel ranges are keyed on)."""
    schema = get_schema(domain, op, opset)
    return None if schema is None else int(schema.since_version)


def latest_opset(domain: str) -> int | None:
    """The opset ORT assumes for a domain a model uses without importing it (the newest it knows)."""
    if domain == "ai.onnx":
        return int(onnx.defs.onnx_opset_version())
    if domain == "ai.onnx.ml":
        return int(onnx.defs.onnx_ml_opset_version())
    versions = [s.since_version for (d, _), group in _ort_schemas().items() if d == domain for s in group]
    return max(versions) if versions else None


def wanted_schemas(config: OpConfig, added: Iterable[tuple[str, str, int]] = ()) -> dict[str, dict[str, set[int]]]:
    """``{tag: {op: {opset, ...}}}``: the ops to keep and the opsets their schemas must resolve at.

    ``added`` are ``(domain, op, version)`` ops ORT's layout transformer may insert (``ORT_ADDED_OPS``): they
    resolve at the opsets the config lists for their domain (any version when the domain is absent).
    """
    wanted: dict[str, dict[str, set[int]]] = {}
    opsets: dict[str, set[int]] = {}
    for op in config:
        tag = DOMAIN_TAGS.get(op.domain)
        if tag is None:
            continue
        wanted.setdefault(tag, {}).setdefault(op.op, set()).add(op.opset)
        opsets.setdefault(tag, set()).add(op.opset)
    for domain, name, version in added:
        tag = DOMAIN_TAGS.get(domain)
        if tag is None:
            continue
        at = opsets.get(tag) or {version}
        wanted.setdefault(tag, {}).setdefault(name, set()).update(at)
    return wanted


def resolve_schemas(entries: Iterable[SchemaId], wanted: Mapping[str, Mapping[str, set[int]]]) -> set[SchemaId]:
    """The schema each wanted op resolves to at each of its opsets: the latest since_version <= opset
    (how ONNX's registry and ORT's graph resolution pick a node's schema)."""
    versions: dict[tuple[str, str], list[int]] = {}
    for tag, version, op in entries:
        versions.setdefault((tag, op), []).append(version)
    keep: set[SchemaId] = set()
    for tag, ops in wanted.items():
        for op, opsets in ops.items():
            for opset in opsets:
                fit = [v for v in versions.get((tag, op), []) if v <= opset]
                if fit:
                    keep.add((tag, max(fit), op))
    return keep
