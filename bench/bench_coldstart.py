"""Cold start per variant and per path: a fresh interpreter doing import + model load + first embedding
of the int8 all-MiniLM-L6-v2, against ``import onnxruntime`` + InferenceSession on the wheel.

Libraries: the onnxruntime wheel's libonnxruntime (Release), and when they are in the cache the ORT
1.21.0 full and minimal builds (MinSizeRel). Paths per library:
* ``onnx``: TextEmbedding on the .onnx at level all (ORT optimizes at every start);
* ``cache-first``: the same with an empty optimized-model cache (optimizes, then saves the .ort entry);
* ``cache-warm``: the same with the entry in place (loads the saved optimized model at level disable);
* ``ort``: the .ort converted by the full library of that release (folded weights), at level disable;
* ``ort-keep-quantized``: the .ort converted without ConstantFolding (int8 weights);
* ``bundle <library>``: a deploy bundle (``ortprune.deploy.make_bundle``: the library, the model optimized
  for it at the portable level ``extended`` by the official 1.21.0 library -- an optimized ``model.onnx``, or
  ``model.ort`` for a minimal build -- and the tokenizer), opened by ``TextEmbedding(<bundle>)`` in one call:
  its library, level disable, no cache. Libraries: the official 1.21.0 release library (PyPI's wheel,
  ``ortbuild.official``), the reduced build ``make demo`` makes, and every cached minimal build, whatever its
  levers.
A minimal build runs only the folded ``ort`` path: slim built it from that file's ops and types, so it has
no kernel for the keep-quantized graph's int8 Cast; the minimal build slim makes with ``--keep-quantized
--prune sgemm-packed-k`` runs the ``ort-keep-quantized`` path (bit-identical to the .onnx on the full build).
After each ``cache-first`` run the benchmark waits for the cache writer that run left (not timed).
Every (library, path) runs once per round, in a rotated order, in fresh processes; medians over rounds.
ratio = onnxruntime process wall / path process wall (> 1: faster than ``import onnxruntime``; the
goal for the warm cache is >= 2).

Writes bench/results/coldstart.json (with machine info). ``--only REGEX`` runs the baseline and the paths
matching REGEX and replaces (or adds) just those rows in the existing JSON, each with the time it was measured,
the load average and its own run's baseline wall time (its ratio is against that).
Usage: python bench/bench_coldstart.py [--rounds N] [--only REGEX]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ortprune._io import atomic_write_text
from ortprune.bundled import bundled
from ortprune.cache import cache_dir
from ortprune.convert import convert_model
from ortprune.deploy import make_bundle
from ortprune.platform import machine_info
from ortprune.runtime import load_library, wheel_library

RESULTS = Path(__file__).resolve().parent / "results" / "coldstart.json"
MODEL = "all-MiniLM-L6-v2-int8"

OURS = """
import time; t0 = time.perf_counter()
from ortprune.embed import TextEmbedding
t1 = time.perf_counter()
emb = TextEmbedding({model!r}, lib={lib!r}, threads=1, optimization_level={level!r}, cache={cache!r})
t2 = time.perf_counter()
v = emb.embed_batch(["hello world"])
t3 = time.perf_counter()
print({{"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "total": t3 - t0,
        "cache": emb.session.cache_status}})
"""

THEIRS = """
import time; t0 = time.perf_counter()
import numpy as np
import onnxruntime as ort
from ortprune.tokenizer import load_tokenizer
t1 = time.perf_counter()
tok, _ = load_tokenizer(__import__("pathlib").Path({tokenizer!r}))
so = ort.SessionOptions(); so.intra_op_num_threads = so.inter_op_num_threads = 1
sess = ort.InferenceSession({model!r}, so, providers=["CPUExecutionProvider"])
t2 = time.perf_counter()
enc = tok.encode_batch(["hello world"])
ids = np.array([e.ids for e in enc], dtype=np.int64); mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
feeds = {{"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}}
h = sess.run(None, feeds)[0]; m = mask[..., None].astype(np.float64)
v = (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9); v = v / np.linalg.norm(v, axis=1, keepdims=True)
t3 = time.perf_counter()
print({{"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "total": t3 - t0, "cache": None}})
"""


def wait_for_cache_writers(timeout: float = 120.0) -> None:
    """Until no ``ortprune.runtime._cache_worker`` process (started at a cache miss's exit) runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", "ortprune.runtime._cache_worker"], capture_output=True).returncode != 0:
            return
        time.sleep(0.05)


def cached_build(variant: str, prune: tuple[str, ...] = ()) -> Path | None:
    """A cached gcc build of ``variant`` for this machine with exactly the ``prune`` levers and no extra flags."""
    for manifest in sorted(cache_dir("builds").glob(f"1.21.0-{variant}-*/manifest.json")):
        m = json.loads(manifest.read_text())
        lib = Path(m["library"])
        stock = not m.get("extra_flags") and m.get("toolchain_name", "gcc") == "gcc" and not m.get("target")
        if lib.is_file() and stock and tuple(m.get("prune") or ()) == prune:
            return lib
    return None


def official_1_21() -> Path | None:
    """The official ONNX Runtime 1.21.0 release library (downloaded once by pip, cached), or None offline."""
    from ortprune.ortbuild.official import NoOfficialLibrary, official_library

    try:
        return Path(official_library("1.21.0").library)
    except NoOfficialLibrary:
        return None


def minimal_builds() -> dict[str, Path]:
    """Every cached minimal 1.21.0 build but the stock gcc ones (those are the ``minimal 1.21.0`` rows),
    labelled by its levers."""
    found = {}
    for manifest in sorted(cache_dir("builds").glob("1.21.0-minimal-*/manifest.json")):
        m = json.loads(manifest.read_text())
        lib = Path(m["library"])
        levers = [*(m.get("extra_flags") or ()), *(m.get("prune") or ())]
        if m.get("toolchain_name", "gcc") != "gcc":
            levers.insert(0, m["toolchain_name"])
        if lib.is_file() and levers and levers != ["sgemm-packed-k"]:
            found[f"minimal 1.21.0 {'+'.join(lv.removeprefix('--') for lv in levers)}"] = lib
    return found


def ort_files(converter: Path, work: Path, tokenizer: Path) -> dict[str, Path]:
    """The int8 model converted by ``converter`` (folded and keep-quantized), with the tokenizer beside."""
    out = {}
    for name, keep in (("ort", False), ("ort-keep-quantized", True)):
        d = work / f"{converter.name}-{name}"
        c = convert_model(bundled(MODEL).path(), converter, d, keep_quantized=keep)
        for f in tokenizer.iterdir():
            if f.is_file() and f.suffix == ".json":
                shutil.copy(f, d / f.name)
        out[name] = c.ort
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", help="regex: run the baseline and these paths; merge their rows into the JSON")
    args = ap.parse_args()
    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ, PYTHONPATH=str(src))
    # Bytecode for ortprune's modules, as an installed package has it: with PYTHONDONTWRITEBYTECODE set
    # (this machine sets it) every fresh process would compile ~15 of them from source, numpy and
    # onnxruntime never (their wheels' .pyc files come with the install).
    compileall.compile_dir(src / "ortprune", quiet=1)
    model = bundled(MODEL)
    tokenizer = model.tokenizer()
    wheel = wheel_library()
    assert wheel is not None, "needs the onnxruntime wheel"
    full, minimal = cached_build("full"), cached_build("minimal")
    minimal_kq = cached_build("minimal", ("sgemm-packed-k",))  # slim --variants minimal --keep-quantized --prune ...
    work = Path(tempfile.mkdtemp(prefix="ortprune-coldstart-"))
    scripts: dict[str, tuple[str, Path | None]] = {
        "onnxruntime wheel / InferenceSession": (
            THEIRS.format(model=str(model.path()), tokenizer=str(tokenizer)),
            None,
        )
    }
    libs = {f"wheel {load_library(wheel).version}": (wheel, wheel)}
    if full is not None:
        libs["full 1.21.0"] = (full, full)
    if minimal is not None and full is not None:
        libs["minimal 1.21.0"] = (minimal, full)
    if minimal_kq is not None and full is not None:
        libs["minimal 1.21.0 sgemm-packed-k"] = (minimal_kq, full)
    converted: dict[Path, dict[str, Path]] = {}
    for label, (lib, converter) in libs.items():
        if args.only and not re.search(args.only, label):
            continue  # none of its paths runs: no conversion, no warm-up
        if converter not in converted:  # the minimal library runs the files the full one converted
            converted[converter] = ort_files(converter, work, tokenizer)
        orts = converted[converter]
        if not label.startswith("minimal"):
            cache_root = work / f"cache-{label.replace(' ', '_')}"
            scripts[f"{label} / onnx"] = (OURS.format(model=MODEL, lib=str(lib), level="all", cache=None), None)
            scripts[f"{label} / cache-first"] = (
                OURS.format(model=MODEL, lib=str(lib), level="all", cache=str(cache_root)),
                cache_root,
            )
            warm = work / f"warm-{label.replace(' ', '_')}"
            subprocess.run([sys.executable, "-c", OURS.format(model=MODEL, lib=str(lib), level="all", cache=str(warm))],
                           check=True, capture_output=True, env=env)  # fmt: skip
            scripts[f"{label} / cache-warm"] = (
                OURS.format(model=MODEL, lib=str(lib), level="all", cache=str(warm)),
                None,
            )
        for name, path in orts.items():
            if label == "minimal 1.21.0" and name != "ort":
                continue  # built for the folded .ort's ops and types: it has no int8 Cast for the other one
            if label == "minimal 1.21.0 sgemm-packed-k" and name != "ort-keep-quantized":
                continue  # built for the keep-quantized .ort's ops and types
            scripts[f"{label} / {name}"] = (OURS.format(model=str(path), lib=str(lib), level="disable", cache=None),
                                            None)  # fmt: skip
    official = official_1_21()
    if official is not None:  # bundles: optimized by the official library, opened in one call
        libs_for_bundles = {"official 1.21.0": (official, "onnx")}
        libs_for_bundles |= {label: (lib, "ort") for label, lib in minimal_builds().items()}
        if full is not None:
            libs_for_bundles["full 1.21.0"] = (full, "onnx")
        # the library `make demo` builds (precompiled headers or not: the same code)
        reduced = cached_build("reduced", ("pch", "sources")) or cached_build("reduced", ("sources",))
        if reduced is not None:
            libs_for_bundles["reduced 1.21.0"] = (reduced, "onnx")
        scripts["official 1.21.0 / onnx"] = (
            OURS.format(model=MODEL, lib=str(official), level="all", cache=None),
            None,
        )
        for label, (lib, fmt) in libs_for_bundles.items():
            if args.only and not re.search(args.only, f"bundle {label} / {fmt}"):
                continue  # a bundle is made (and verified) only for a path that runs
            # 1e-5: slim's default; the clang-built minimal differs from the official library by ~1e-6
            b = make_bundle([MODEL], lib, work / f"bundle-{label.replace(' ', '_')}", reference=official,
                            model_format=fmt, tolerance=1e-5)  # fmt: skip
            scripts[f"bundle {label} / {fmt}"] = (
                OURS.format(model=str(b.root), lib=str(b.library_path), level="disable", cache=None),
                None,
            )
    if args.only:
        scripts = {n: v for i, (n, v) in enumerate(scripts.items()) if i == 0 or re.search(args.only, n)}
    names = list(scripts)
    samples: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            script, reset = scripts[name]
            if reset is not None:
                shutil.rmtree(reset, ignore_errors=True)  # cache-first: every run starts with no entry
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True,
                                 env=env).stdout  # fmt: skip
            wall[name].append(time.perf_counter() - t)
            samples[name].append(eval(out.strip().splitlines()[-1]))  # a dict literal we printed ourselves
            if reset is not None:
                wait_for_cache_writers()  # a miss leaves a writer optimizing at exit: not on the next path's time
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    base = statistics.median(wall[names[0]])
    rows = []
    for name in names:
        med = {k: round(statistics.median(s[k] for s in samples[name]) * 1e3, 1)
               for k in ("import", "load", "first", "total")}  # fmt: skip
        w = statistics.median(wall[name])
        rows.append({
            "path": name,
            "process_wall_ms": round(w * 1e3, 1),
            **{f"{k}_ms": v for k, v in med.items()},
            "cache_status": sorted({str(s["cache"]) for s in samples[name]}),
            "ratio_vs_onnxruntime": round(base / w, 3),
        })  # fmt: skip
    if args.only:  # these rows only, into the table of an earlier full run
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for row in rows[1:]:
            row |= {"measured_at": at, "load_average": os.getloadavg(), "baseline_process_wall_ms": rows[0][
                "process_wall_ms"]}  # fmt: skip
        old = json.loads(RESULTS.read_text())
        by_path = {r["path"]: r for r in old["rows"]}
        by_path.update({r["path"]: r for r in rows[1:]})
        old["rows"] = list(by_path.values())
        atomic_write_text(RESULTS, json.dumps(old, indent=1) + "\n")
        for row in rows:
            print(f"{row['path']:48} {row['process_wall_ms']:8.1f} ms  x{row['ratio_vs_onnxruntime']:.2f}")
        shutil.rmtree(work, ignore_errors=True)
        return
    result = {
        "benchmark": "cold start: fresh process, import + load + first embedding (threads=1)",
        "model": MODEL,
        "rounds": args.rounds,
        "machine": machine_info(),
        "load_average_at_end": os.getloadavg(),
        "rows": rows,
        "note": "ratio = onnxruntime process wall / path process wall (>1: faster). Medians over rounds; "
        "every path runs once per round in rotated order, so background load hits all paths alike.",
    }
    atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
    for row in rows:
        print(f"{row['path']:48} {row['process_wall_ms']:8.1f} ms  x{row['ratio_vs_onnxruntime']:.2f}  "
              f"load {row['load_ms']:7.1f}  import {row['import_ms']:6.1f}  {row['cache_status']}")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
