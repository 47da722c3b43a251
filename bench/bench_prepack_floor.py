"""Why a keep-quantized .ort cannot match the .onnx within 1e-6: one MatMul, two ways to hold its weights.

* ``constant``: B is an fp32 initializer (what ConstantFolding makes of the int8 weights at level all, and
  what the folded .ort stores). ORT pre-packs it at load; MLAS then runs its packed SGEMM, which walks K
  in slices of ``MLAS_SGEMM_PACKED_STRIDEK`` = 256.
* ``dequantized``: B = Mul(Cast(int8 initializer), scale) computed at run time (the keep-quantized .ort's
  graph). Not a constant initializer, so never pre-packed; MLAS's unpacked SGEMM walks K in slices of
  ``MLAS_SGEMM_STRIDEK`` = 128 (``onnxruntime/core/mlas/lib/mlasi.h``).
  Between slices the partial sums are rounded to float32 in C, so the two paths round at different points
  once K > 128, and agree bit for bit when K <= 128.
* ``constant, disable_prepacking``: the constant B with ``session.disable_prepacking=1``: equal to
  ``dequantized`` bit for bit (the same unpacked SGEMM), which shows the difference is the GEMM path and
  not the dequantization.

Both weight forms hold the same fp32 values (the int8 weights times the scale, computed in float32 as ORT's
Mul does). Runs at level ``disable`` on each library; threads=1.

Second part, the whole int8 all-MiniLM-L6-v2 (batch 8 x 64 random tokens): its keep-quantized .ort loaded at
every optimization level against the .onnx at level all, and the .onnx with pre-packing off: a level above
``disable`` would fold the dequantization back into constants if ORT optimized ORT-format graphs.

Writes bench/results/prepack_floor.json. Usage: python bench/bench_prepack_floor.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ortprune._io import atomic_write_text
from ortprune.bundled import bundled
from ortprune.convert import convert_model
from ortprune.ortbuild.mlas import SGEMM_LEVER
from ortprune.platform import machine_info
from ortprune.runtime import Library, Session, load_library, wheel_library

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_coldstart import cached_build  # one lookup of cached builds for the benches

RESULTS = Path(__file__).resolve().parent / "results" / "prepack_floor.json"
M, N = 64, 384


def matmul_model(k: int, dequantized: bool) -> bytes:
    rng = np.random.default_rng(k)
    w8 = rng.integers(-127, 128, size=(k, N), dtype=np.int8)
    scale = np.float32(0.0123)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, N])
    if dequantized:
        inits = [numpy_helper.from_array(w8, "w8"), numpy_helper.from_array(np.array(scale), "scale")]
        nodes = [helper.make_node("Cast", ["w8"], ["wf"], to=TensorProto.FLOAT),
                 helper.make_node("Mul", ["wf", "scale"], ["w"]),
                 helper.make_node("MatMul", ["x", "w"], ["y"])]  # fmt: skip
    else:
        inits = [numpy_helper.from_array(w8.astype(np.float32) * scale, "w")]
        nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    graph = helper.make_graph(nodes, "mm", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def keep_quantized_levels(label: str, lib: Library, ref: Library, tokens: int) -> list[dict[str, object]]:
    """The int8 model's keep-quantized .ort on ``lib`` at every level, and the .onnx with pre-packing off,
    against the .onnx at level all on ``ref`` (batch 8 x ``tokens`` random tokens)."""
    model = bundled("all-MiniLM-L6-v2-int8").path()
    ids = np.random.default_rng(0).integers(1000, 20000, size=(8, tokens)).astype(np.int64)
    ids[:, 0] = 101
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}

    def hidden(path: Path, level: str, on: Library, **config: str) -> np.ndarray:
        with Session(path, on, threads=1, optimization_level=level, config=config) as s:
            return s.run(feeds)["last_hidden_state"]

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ort = convert_model(model, ref, Path(tmp), keep_quantized=True).ort  # the stock build of the release converts
        want = hidden(model, "all", ref)
        cases: list[tuple[str, Path, str, dict[str, str]]] = [
            (f"keep-quantized .ort at level {lv}", ort, lv, {}) for lv in ("disable", "basic", "extended", "all")
        ]
        cases.append((".onnx at level all, session.disable_prepacking=1", model, "all",
                      {"session.disable_prepacking": "1"}))  # fmt: skip
        for case, path, level, config in cases:
            out = hidden(path, level, lib, **config)
            row = {"library": f"{label} ({lib.version})", "reference": f"{ref.path}", "tokens": tokens, "case": case,
                   "max_abs_diff_hidden_vs_onnx_level_all": float(np.abs(out - want).max())}  # fmt: skip
            rows.append(row)
            print(row)
    return rows


def builds_1_21() -> dict[str, tuple[Path, Path]]:
    """The cached full 1.21.0 builds: the stock one, and one with ``--prune sgemm-packed-k`` measured against it."""
    stock, sgemm = cached_build("full"), cached_build("full", (SGEMM_LEVER,))
    out = {}
    if stock is not None:
        out["full 1.21.0"] = (stock, stock)
        if sgemm is not None:
            out[f"full 1.21.0 --prune {SGEMM_LEVER}"] = (sgemm, stock)
    return out


def main() -> None:
    wheel = wheel_library()
    libs = {"wheel": (wheel, wheel)} if wheel is not None else {}
    libs |= builds_1_21()
    rows = []
    for label, (path, ref_path) in libs.items():
        lib, ref = load_library(path), load_library(ref_path)
        for k in (64, 128, 256, 384, 1536):
            x = np.random.default_rng(1).standard_normal((M, k)).astype(np.float32)

            def run(model: bytes, on: Library, x=x, **config: str) -> np.ndarray:  # type: ignore[no-untyped-def]
                with Session(model, on, threads=1, optimization_level="disable", config=config) as s:
                    return s.run({"x": x})["y"]

            const = run(matmul_model(k, False), ref)  # the reference: pre-packed constant weights
            deq = run(matmul_model(k, True), lib)
            unpacked = run(matmul_model(k, False), lib, **{"session.disable_prepacking": "1"})
            row = {
                "library": f"{label} ({lib.version})",
                "K": k,
                "max_abs_diff_dequantized_vs_constant": float(np.abs(deq - const).max()),
                "elements_that_differ": int((deq != const).sum()),
                "dequantized_equals_constant_without_prepacking": bool(np.array_equal(deq, unpacked)),
            }
            rows.append(row)
            print(row)
    levels = []
    for label, (path, ref_path) in libs.items():
        for tokens in (64, 256):  # 256: attention's MatMuls get K > 128 (their B is never pre-packed)
            levels += keep_quantized_levels(label, load_library(path), load_library(ref_path), tokens)
    result = {
        "benchmark": "one MatMul (M=64, N=384): fp32 constant weights (pre-packed) vs Cast+Mul of int8 weights; "
        "the reference of a --prune sgemm-packed-k build is the stock build of its release",
        "machine": machine_info(),
        "rows": rows,
        "keep_quantized_ort_by_level": levels,
    }
    atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
