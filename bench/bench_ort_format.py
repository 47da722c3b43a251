"""The int8 all-MiniLM-L6-v2 in ORT format: size, load time, throughput and outputs of each conversion
choice, against the .onnx at level all on the same (full) library.

Choices: ``folded`` (level all, ORT's default: ConstantFolding turns the int8 weights into fp32) and
``keep-quantized`` (ConstantFolding left out: int8 weights, dequantized by Cast+Mul at every run).
``onnx, no pre-packing`` is the .onnx at level all with ``session.disable_prepacking=1``: when it equals
``keep-quantized`` bit for bit, the whole output difference is MatMul running on weights that are not
constant initializers (ORT pre-packs only those, and MLAS's packed and unpacked GEMMs sum in different
orders), not any graph rewrite.

Libraries: the onnxruntime wheel's and, when cached, the ORT 1.21.0 full build.
Writes bench/results/ort_format.json (with machine info). Usage: python bench/bench_ort_format.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ortprune._io import atomic_write_text
from ortprune.bundled import bundled
from ortprune.cache import cache_dir
from ortprune.convert import convert_model
from ortprune.embed.registry import Pooling
from ortprune.embed.text import l2_normalize, load_tokenizer, pool
from ortprune.platform import machine_info
from ortprune.runtime import Session, load_library, wheel_library

RESULTS = Path(__file__).resolve().parent / "results" / "ort_format.json"
MODEL = "all-MiniLM-L6-v2-int8"
TEXTS = [
    "ONNX Runtime, pruned to what the model needs.",
    "Hello, World!",
    "fastembed-rs loads a custom ONNX Runtime through ORT_DYLIB_PATH.",
    "The quick brown fox jumps over the lazy dog while the farmer watches from the porch.",
] * 2


def feeds() -> dict[str, np.ndarray]:
    tok, _ = load_tokenizer(bundled(MODEL).tokenizer())
    enc = tok.encode_batch(TEXTS)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def measure(lib: Path, model: Path, level: str, config: dict[str, str] | None, f: dict[str, np.ndarray],
            loads: int = 5, runs: int = 30) -> dict[str, Any]:  # fmt: skip
    load_times = []
    for _ in range(loads):
        t = time.perf_counter()
        s = Session(model, lib, threads=1, optimization_level=level, config=config)
        load_times.append(time.perf_counter() - t)
        s.close()
    s = Session(model, lib, threads=1, optimization_level=level, config=config)
    out = s.run(f)["last_hidden_state"]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        s.run(f)
        times.append(time.perf_counter() - t)
    s.close()
    return {
        "load_ms": round(statistics.median(load_times) * 1e3, 1),
        "run_ms": round(statistics.median(times) * 1e3, 2),
        "hidden": out,
    }


def main() -> None:
    src = bundled(MODEL).path()
    f = feeds()
    libs = {"wheel": wheel_library()}
    for manifest in sorted(cache_dir("builds").glob("1.21.0-full-*/manifest.json")):
        libs["full 1.21.0"] = Path(json.loads(manifest.read_text())["library"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, lib in libs.items():
            if lib is None:
                continue
            version = load_library(lib).version
            folded = convert_model(src, lib, Path(tmp) / label / "folded")
            kept = convert_model(src, lib, Path(tmp) / label / "kept", keep_quantized=True)
            cases = {
                "onnx (level all)": (src, "all", None, src.stat().st_size),
                "onnx, no pre-packing": (src, "all", {"session.disable_prepacking": "1"}, src.stat().st_size),
                "ort folded (level disable)": (folded.ort, "disable", None, folded.ort_bytes),
                "ort keep-quantized (level disable)": (kept.ort, "disable", None, kept.ort_bytes),
            }
            results = {k: measure(lib, m, lvl, cfg, f) for k, (m, lvl, cfg, _) in cases.items()}
            ref = results["onnx (level all)"]["hidden"]
            ref_emb = l2_normalize(pool(ref, f["attention_mask"], Pooling.MEAN))
            unpacked = results["onnx, no pre-packing"]["hidden"]
            for k, (_m, _lvl, _cfg, size) in cases.items():
                r = results[k]
                emb = l2_normalize(pool(r["hidden"], f["attention_mask"], Pooling.MEAN))
                rows.append({
                    "library": f"{label} ({version})",
                    "case": k,
                    "bytes": size,
                    "ratio_to_onnx": round(size / src.stat().st_size, 4),
                    "load_ms": r["load_ms"],
                    "run_ms_batch8": r["run_ms"],
                    "max_abs_diff_hidden": float(np.abs(r["hidden"] - ref).max()),
                    "max_abs_diff_embedding": float(np.abs(emb - ref_emb).max()),
                    "identical_to_onnx_without_prepacking": bool(np.array_equal(r["hidden"], unpacked)),
                })  # fmt: skip
    result = {
        "benchmark": "int8 all-MiniLM-L6-v2: .onnx vs .ort conversions (threads=1, batch 8, medians)",
        "machine": machine_info(),
        "rows": rows,
    }
    atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
    for r in rows:
        print(f"{r['library']:22} {r['case']:36} {r['bytes']:>11,} {r['ratio_to_onnx']:5.2f}x load {r['load_ms']:7.1f} "
              f"run {r['run_ms_batch8']:7.2f}  diff {r['max_abs_diff_hidden']:.2e}/{r['max_abs_diff_embedding']:.2e} "
              f"{'=unpacked' if r['identical_to_onnx_without_prepacking'] else ''}")  # fmt: skip


if __name__ == "__main__":
    main()
