"""The ops ORT's graph optimizer adds at load time, found by letting ORT itself optimize the model."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ortprune.catalog import OPTIMIZATION_LEVELS, check_level
from ortprune.errors import ModelError, OrtpruneError
from ortprune.scan.graph import GraphOps, graph_ops
from ortprune.scan.lazy import load_structure

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
_QUANT_TRIGGERS = {
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeMatMul",
    "QAttention",
}


def ort_version(runtime: str | Path | None = None) -> str:
    """The version of the ORT that optimizes: a given library's (ctypes), else the onnxruntime package's."""
    if runtime is not None:
        from ortprune.runtime import load_library
        from ortprune.runtime.emulated import EmulatedLibrary, foreign_target

        if foreign_target(runtime) is not None:  # another machine's library: asked under qemu-user
            return EmulatedLibrary.open(runtime).version
        return load_library(runtime).version
    try:
        import onnxruntime
    except ImportError:
        raise OrtpruneError(
            "the optimizer-aware scan needs the onnxruntime package: pip install 'ortprune[ort]' "
            "(or pass --optimization-level disable)"
        ) from None
    return str(onnxruntime.__version__)


#: Write the optimized model's weights to a side file, so re-reading its graph stays cheap.
_SAVE_CONFIG = {
    "session.optimized_model_external_initializers_file_name": "weights.bin",
    "session.optimized_model_external_initializers_min_size_in_bytes": "64",
}


def optimized_ops(path: Path, level: str, with_types: bool = True, runtime: str | Path | None = None) -> GraphOps:
    """Load ``path`` in ORT (CPU provider) at ``level``, save the optimized graph, and walk it.

    ``runtime`` names a libonnxruntime to optimize with (through ``ortprune.runtime``): the full build of
    the version being pruned sees exactly the rewrites that version makes; a library of another machine
    (linux-aarch64 here) optimizes under qemu-user (``runtime.emulated``), so the rewrites are the ones its
    own CPU code makes. Default: the onnxruntime package.
    """
    from ortprune.runtime.emulated import EmulatedLibrary, foreign_target

    with tempfile.TemporaryDirectory(prefix="ortprune-opt-") as tmp:
        out = Path(tmp) / "optimized.onnx"
        if runtime is not None and foreign_target(runtime) is not None:
            try:
                EmulatedLibrary.open(runtime).session(path, level, optimized_model_path=out, config=_SAVE_CONFIG)
            except OrtpruneError as e:
                raise ModelError(f"ONNX Runtime ({runtime}) could not load the model: {e}", path) from None
        elif runtime is not None:
            from ortprune.runtime import Session

            try:
                Session(
                    path,
                    runtime,
                    optimization_level=level,
                    log_level="error",
                    optimized_model_path=out,
                    config=_SAVE_CONFIG,
                ).close()
            except OrtpruneError as e:
                raise ModelError(f"ONNX Runtime ({runtime}) could not load the model: {e}", path) from None
        else:
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel(check_level(level))
            so.log_severity_level = 3
            so.optimized_model_filepath = str(out)
            for key, value in _SAVE_CONFIG.items():
                so.add_session_config_entry(key, value)
            try:
                ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            except Exception as e:  # ORT raises its own exception types for every failure
                raise ModelError(f"ONNX Runtime could not load the model: {e}", path) from None
        lazy = load_structure(out)
        init_types = {s.name: (s.data_type, s.dims) for s in lazy.initializers}
        return graph_ops(lazy.model, path, with_types=with_types, initializer_types=init_types)


def platform_warnings(raw_ops: set[str], level: str, cpu_flags: tuple[str, ...]) -> list[str]:
    """Where the optimized op set could differ on another CPU (the rewrites ORT makes only on some ISAs)."""
    warnings = []
    if level == "all" and raw_ops & _NCHWC_TRIGGERS:
        isa = "AVX2/AVX-512" if {"avx2", "avx512f"} & set(cpu_flags) else "no AVX2"
        warnings.append(
            f"{', '.join(sorted(raw_ops & _NCHWC_TRIGGERS))} at level 'all': ORT's NchwcTransformer rewrites "
            f"them into com.microsoft.nchwc ops only on CPUs with AVX2/AVX-512 (this machine: {isa}); "
            "scan on the deploying CPU or verify the pruned library there"
        )
    if OPTIMIZATION_LEVELS[level] >= OPTIMIZATION_LEVELS["extended"] and raw_ops & _QUANT_TRIGGERS:
        warnings.append(
            f"quantized ops ({', '.join(sorted(raw_ops & _QUANT_TRIGGERS))}): x86-only rewrites "
            "(Avx2WeightS8ToU8, QDQS8ToU8) can change them on another ISA; verify on the target"
        )
    return warnings
