"""ctypes runtime (ortprune.runtime) vs the onnxruntime Python package, on the same libonnxruntime version.

Measures, in one run:
* throughput: Session.run vs InferenceSession.run on identical pre-tokenized feeds (same model, batch,
  threads, optimization level), single runs interleaved in ABBA blocks so background load hits both
  alike; ratio = ctypes throughput / onnxruntime throughput = median over blocks of
  (onnxruntime time / ctypes time) (target >= 0.97);
* cold start: a fresh interpreter doing import + model load + first embedding, once through
  ortprune.embed.TextEmbedding (ctypes) and once through the same tokenizer/pooling code with
  ``import onnxruntime`` + InferenceSession; alternated, median of several.

* with --callgrind: instructions per run under valgrind, which machine load does not change.

Writes bench/results/runtime.json (with machine info).
Usage: python bench/bench_runtime.py [--quick] [--callgrind]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ortprune._io import atomic_write_text
from ortprune.bundled import bundled
from ortprune.embed.text import load_tokenizer
from ortprune.platform import machine_info
from ortprune.runtime import Session, load_library

RESULTS = Path(__file__).resolve().parent / "results" / "runtime.json"
SENTENCES = [
    "The cat sits on the mat and looks out of the window at the birds.",
    "ONNX Runtime is a cross-platform inference and training machine-learning accelerator.",
    "Embedding models turn text into vectors so that similar texts end up close together.",
    "A pruned runtime keeps only the kernels that the models actually need.",
    "It rained all day, so we stayed inside and read books.",
    "Short one.",
    "fastembed-rs loads a custom ONNX Runtime through ORT_DYLIB_PATH.",
    "The quick brown fox jumps over the lazy dog while the farmer watches from the porch.",
]

COLD_CTYPES = """
import time; t0 = time.perf_counter()
from ortprune.embed import TextEmbedding
t1 = time.perf_counter()
emb = TextEmbedding({model!r}, threads=1)
t2 = time.perf_counter()
v = emb.embed_batch(["hello world"])
t3 = time.perf_counter()
print({{"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "total": t3 - t0, "dim": v.shape[1]}})
"""

COLD_ORT = """
import time; t0 = time.perf_counter()
import numpy as np
import onnxruntime as ort
from ortprune.bundled import bundled
from ortprune.embed.text import l2_normalize, load_tokenizer, pool
from ortprune.embed.registry import Pooling
t1 = time.perf_counter()
m = bundled({model!r})
tok, _ = load_tokenizer(m.tokenizer())
so = ort.SessionOptions(); so.intra_op_num_threads = so.inter_op_num_threads = 1
sess = ort.InferenceSession(str(m.path()), so, providers=["CPUExecutionProvider"])
t2 = time.perf_counter()
enc = tok.encode_batch(["hello world"])
ids = np.array([e.ids for e in enc], dtype=np.int64); mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
feeds = {{"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}}
feeds = {{k: x for k, x in feeds.items() if k in {{i.name for i in sess.get_inputs()}}}}
v = l2_normalize(pool(sess.run(None, feeds)[0], mask, Pooling.MEAN))
t3 = time.perf_counter()
print({{"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "total": t3 - t0, "dim": v.shape[1]}})
"""


def feeds_for(model_name: str, batch: int) -> dict[str, np.ndarray]:
    tok, _ = load_tokenizer(bundled(model_name).tokenizer())
    texts = [SENTENCES[i % len(SENTENCES)] for i in range(batch)]
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    return {
        "input_ids": ids,
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.zeros_like(ids),
    }


def throughput(model_name: str, batch: int, threads: int, budget: float) -> dict[str, object]:
    import onnxruntime as ort

    path = bundled(model_name).path()
    feeds = feeds_for(model_name, batch)
    ours = Session(path, threads=threads, optimization_level="all")
    feeds = {k: v for k, v in feeds.items() if k in ours.input_names}
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    theirs = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def run_ours() -> None:
        ours.run(feeds)

    def run_theirs() -> None:
        theirs.run(None, feeds)

    for fn in (run_ours, run_theirs):  # warm up (arena growth, caches)
        for _ in range(3):
            fn()
    # ABBA blocks of single runs until the budget is spent: load drifts (a build may be running) hit
    # both sides alike; the ratio is the median over blocks of (onnxruntime time / ctypes time).
    per_run: dict[str, list[float]] = {"ctypes": [], "onnxruntime": []}
    block_ratios: list[float] = []
    deadline = time.perf_counter() + budget
    flip = False
    while time.perf_counter() < deadline or len(block_ratios) < 5:
        block = {"ctypes": 0.0, "onnxruntime": 0.0}
        order = [("ctypes", run_ours), ("onnxruntime", run_theirs)]
        if flip:
            order.reverse()
        for name, fn in [*order, *order[::-1]]:
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            per_run[name].append(dt)
            block[name] += dt
        block_ratios.append(block["onnxruntime"] / block["ctypes"])
        flip = not flip
    ours.close()
    c, o = statistics.median(per_run["ctypes"]), statistics.median(per_run["onnxruntime"])
    return {
        "model": model_name,
        "batch": batch,
        "seq_len": int(feeds["input_ids"].shape[1]),
        "threads": threads,
        "runs_each": len(per_run["ctypes"]),
        "ctypes_ms_per_run_median": round(c * 1e3, 3),
        "onnxruntime_ms_per_run_median": round(o * 1e3, 3),
        "ratio": round(statistics.median(block_ratios), 4),
        "ratio_of_medians": round(o / c, 4),
        "ratio_block_quartiles": [round(q, 4) for q in statistics.quantiles(block_ratios, n=4)],
    }


def cold_start(model_name: str, repeats: int) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    samples: dict[str, list[dict[str, float]]] = {"ctypes": [], "onnxruntime": []}
    wall: dict[str, list[float]] = {"ctypes": [], "onnxruntime": []}
    for r in range(repeats):
        order = [("ctypes", COLD_CTYPES), ("onnxruntime", COLD_ORT)]
        for name, script in order if r % 2 == 0 else order[::-1]:
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", script.format(model=model_name)], check=True,
                                 capture_output=True, text=True, env=env).stdout  # fmt: skip
            wall[name].append(time.perf_counter() - t)
            samples[name].append(eval(out.strip().splitlines()[-1]))  # a dict literal we printed ourselves

    def med(name: str) -> dict[str, float]:
        keys = samples[name][0].keys() - {"dim"}
        d = {k: round(statistics.median(s[k] for s in samples[name]) * 1e3, 1) for k in sorted(keys)}
        d["process_wall"] = round(statistics.median(wall[name]) * 1e3, 1)
        return d

    c, o = med("ctypes"), med("onnxruntime")
    return {
        "model": model_name,
        "repeats": repeats,
        "ctypes_ms": c,
        "onnxruntime_ms": o,
        "ratio_total": round(o["total"] / c["total"], 3),
        "ratio_process_wall": round(o["process_wall"] / c["process_wall"], 3),
        "note": "ratio = onnxruntime time / ctypes time (>1: ctypes starts faster); import+load+first embedding, "
        "threads=1, in a fresh interpreter",
    }


CALLGRIND_SCRIPT = """
import sys
import numpy as np
side, runs, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
from ortprune.bundled import bundled
m = bundled("all-MiniLM-L6-v2-int8")
ids = np.random.default_rng(0).integers(1000, 20000, size=(batch, 24)).astype(np.int64)
feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
if side == "ctypes":
    from ortprune.runtime import Session
    s = Session(m.path(), threads=1)
    run = lambda: s.run(feeds)
else:
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads = so.inter_op_num_threads = 1
    s = ort.InferenceSession(str(m.path()), so, providers=["CPUExecutionProvider"])
    run = lambda: s.run(None, feeds)
for _ in range(runs):
    run()
"""


def instructions(batch: int, runs: tuple[int, int]) -> dict[str, object]:
    """Instructions per run under callgrind (independent of machine load): the difference between a
    process doing ``runs[1]`` and one doing ``runs[0]`` runs, divided by the difference in runs."""
    import re
    import shutil

    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind not installed"}
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"), PYTHONHASHSEED="0")
    counts: dict[str, dict[int, int]] = {"ctypes": {}, "onnxruntime": {}}
    for side in counts:
        for n in runs:
            r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                                "-c", CALLGRIND_SCRIPT, side, str(n), str(batch)],
                               capture_output=True, text=True, env=env, check=True)  # fmt: skip
            m = re.search(r"Collected : (\d+)", r.stderr)
            assert m, r.stderr[-2000:]
            counts[side][n] = int(m.group(1))
    per_run = {side: (c[runs[1]] - c[runs[0]]) / (runs[1] - runs[0]) for side, c in counts.items()}
    return {
        "model": "all-MiniLM-L6-v2-int8",
        "batch": batch,
        "seq_len": 24,
        "threads": 1,
        "runs": list(runs),
        "ctypes_instructions_per_run": round(per_run["ctypes"]),
        "onnxruntime_instructions_per_run": round(per_run["onnxruntime"]),
        "ratio": round(per_run["onnxruntime"] / per_run["ctypes"], 5),
        "note": "valgrind callgrind instruction counts (Ir), all threads; ratio = onnxruntime / ctypes",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run, not for results)")
    ap.add_argument("-o", "--output", type=Path, default=RESULTS)
    ap.add_argument("--callgrind", action="store_true",
                    help="also count instructions per run under valgrind (load-independent; ~15 min)")  # fmt: skip
    args = ap.parse_args()
    budget, repeats = (3.0, 2) if args.quick else (30.0, 7)

    import onnxruntime as ort

    lib = load_library()
    load_before = os.getloadavg()
    t0 = time.time()
    configs = [("all-MiniLM-L6-v2-int8", 32, 1), ("all-MiniLM-L6-v2-int8", 32, 2), ("all-MiniLM-L6-v2-int8", 256, 2),
               ("paraphrase-MiniLM-L3-v2", 32, 2)]  # fmt: skip
    tp = []
    for model, batch, threads in configs:
        tp.append(throughput(model, batch, threads, budget))
        print(json.dumps(tp[-1]), file=sys.stderr)
    cold = cold_start("all-MiniLM-L6-v2-int8", repeats)
    print(json.dumps(cold), file=sys.stderr)
    instr = instructions(batch=2, runs=(2, 12)) if args.callgrind else None
    if instr:
        print(json.dumps(instr), file=sys.stderr)
    result = {
        "benchmark": "runtime",
        "command": " ".join(["python bench/bench_runtime.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.time() - t0, 1),
        "onnxruntime_package": ort.__version__,
        "library": {"path": lib.path, "version": lib.version, "api": lib.api_version},
        "throughput": tp,
        "throughput_ratio_min": min(t["ratio"] for t in tp),  # type: ignore[type-var]
        "throughput_target": 0.97,
        "cold_start": cold,
        "instructions": instr,
    }
    atomic_write_text(args.output, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
