"""The ops ORT's graph optimizer adds at load time, found by letting ORT itself optimize the model."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ortprune.errors import ModelError, OrtpruneError
from ortprune.scan.graph import GraphOps, graph_ops
from ortprune.scan.lazy import load_structure

#: Our names for ORT's GraphOptimizationLevel values (C API numbers).
LEVELS: dict[str, int] = {"disable": 0, "basic": 1, "extended": 2, "all": 99}

#: Ops whose presence makes an ORT_ENABLE_ALL rewrite depend on the CPU (NchwcTransformer: AVX2/AVX-512).
_NCHWC_TRIGGERS = {
    "Conv",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Upsample",
    "Resize",
}
#: Quantized ops that x86-only rewrites (Avx2WeightS8ToU8, QDQS8ToU8) may change at level >= extended.
_QUANT_TRIGGERS = {"MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
                   "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeMatMul", "QAttention"}  # fmt: skip


@dataclass
class OptimizerInfo:
    level: str
    ort_version: str


def check_level(level: str) -> int:
    try:
        return LEVELS[level]
    except KeyError:
        raise OrtpruneError(f"unknown optimization level {level!r}; choose one of {', '.join(LEVELS)}") from None


def ort_version() -> str:
    try:
        import onnxruntime
    except ImportError:
        raise OrtpruneError(
            "the optimizer-aware scan needs the onnxruntime package: pip install 'ortprune[ort]' "
            "(or pass --optimization-level disable)"
        ) from None
    return str(onnxruntime.__version__)


def optimized_ops(path: Path, level: str, with_types: bool = True) -> GraphOps:
    """Load ``path`` in ORT (CPU provider) at ``level``, save the optimized graph, and walk it.

    Weights go to an external file in a temp dir, so re-reading the optimized graph stays cheap.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel(LEVELS[level])
    so.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="ortprune-opt-") as tmp:
        out = Path(tmp) / "optimized.onnx"
        so.optimized_model_filepath = str(out)
        so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "weights.bin")
        so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "64")
        try:
            ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for every failure
            raise ModelError(f"ONNX Runtime could not load the model: {e}", path) from None
        lazy = load_structure(out)
        init_types = {s.name: (s.data_type, s.dims) for s in lazy.initializers}
        return graph_ops(lazy.model, path, with_types=with_types, initializer_types=init_types)


def platform_warnings(raw_ops: set[str], level: str, cpu_flags: tuple[str, ...]) -> list[str]:
    """Where the optimized op set could differ on another CPU (see docs/platform notes)."""
    warnings = []
    if level == "all" and raw_ops & _NCHWC_TRIGGERS:
        isa = "AVX2/AVX-512" if {"avx2", "avx512f"} & set(cpu_flags) else "no AVX2"
        warnings.append(
            f"{', '.join(sorted(raw_ops & _NCHWC_TRIGGERS))} at level 'all': ORT's NchwcTransformer rewrites "
            f"them into com.microsoft.nchwc ops only on CPUs with AVX2/AVX-512 (this machine: {isa}); "
            "scan on the deploying CPU or verify the pruned library there"
        )
    if LEVELS[level] >= LEVELS["extended"] and raw_ops & _QUANT_TRIGGERS:
        warnings.append(
            f"quantized ops ({', '.join(sorted(raw_ops & _QUANT_TRIGGERS))}): x86-only rewrites "
            "(Avx2WeightS8ToU8, QDQS8ToU8) can change them on another ISA; verify on the target"
        )
    return warnings
