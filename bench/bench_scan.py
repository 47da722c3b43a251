"""Scan time and peak memory on a 90 MB fp32 model: ortprune vs ORT's create_reduced_build_config.py.

Each measurement runs in a fresh interpreter that reports its own wall time for the work and its peak RSS
(VmHWM); "baseline" is the same interpreter after the imports only, so the difference is the work.
Writes bench/results/scan.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from ortprune.bundled import bundled
from ortprune.cache import cache_dir, file_digest
from ortprune.ortbuild.sources import ort_tools_python
from ortprune.platform import machine_info

RESULTS = Path(__file__).parent / "results" / "scan.json"
REPEAT = 5

CHILD = r"""
import sys, time
def hwm():  # peak RSS of this process image in KiB (VmHWM resets at exec; ru_maxrss is inherited from the parent)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
mode, model, tools = sys.argv[1:4]
if mode == "ortprune":
    from ortprune.scan import scan
elif mode == "ort-script":
    sys.path.insert(0, tools)
    import create_reduced_build_config as c
base = hwm()
t0 = time.perf_counter()
if mode == "ortprune":
    n = len(scan([model], "disable").config)
elif mode == "ort-script":
    import pathlib
    ops = c._extract_ops_from_onnx_model([pathlib.Path(model)])
    n = sum(len(s) for d in ops.values() for s in d.values())
t = time.perf_counter() - t0
print(t, base, hwm(), n)
"""


def big_model() -> Path:
    """all-MiniLM-L6-v2 with fp32 weights (~90 MB): ORT's constant folding of the int8 model's
    dequantization, saved once."""
    import onnxruntime as ort

    src = bundled("all-MiniLM-L6-v2-int8").path()
    out = cache_dir("models", f"all-MiniLM-L6-v2-fp32-folded-{file_digest(src)}.onnx")
    if not out.exists():
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(out)
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    return out


def measure(mode: str, model: Path, tools: Path) -> dict[str, float]:
    runs = []
    for _ in range(REPEAT):
        p = subprocess.run([sys.executable, "-c", CHILD, mode, str(model), str(tools)],
                           capture_output=True, text=True, check=True, cwd=tools)  # fmt: skip
        t, base, peak, n = p.stdout.split()
        runs.append((float(t), int(base), int(peak), int(n)))
    return {
        "seconds_median": statistics.median(r[0] for r in runs),
        "seconds_all": [round(r[0], 4) for r in runs],
        "peak_rss_mib": max(r[2] for r in runs) / 1024,
        "rss_added_by_scan_mib": statistics.median((r[2] - r[1]) / 1024 for r in runs),
        "ops_found": runs[0][3],
    }


def main() -> None:
    model = big_model()
    tools = ort_tools_python("1.21.0")
    result = {
        "benchmark": "scan of one model, ops as written (no optimizer pass)",
        "model": {"path": str(model), "bytes": model.stat().st_size},
        "ortprune": measure("ortprune", model, tools),
        "ort_script": measure("ort-script", model, tools),
        "machine": machine_info(),
    }
    o, s = result["ortprune"], result["ort_script"]
    result["ratio_time_ort_script_over_ortprune"] = s["seconds_median"] / o["seconds_median"]  # type: ignore[index]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
