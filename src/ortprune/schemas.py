"""Operator schemas: ONNX's own (``onnx.defs``) plus ORT's contrib schemas when onnxruntime is installed."""

from __future__ import annotations

import functools
from typing import Any

import onnx.defs


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
