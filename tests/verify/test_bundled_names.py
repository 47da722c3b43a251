"""`probe --models` and `verify` take a bundled model's name like every other model argument (the README's
examples use them): the real CLI in subprocesses, on the onnxruntime wheel's library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

CLI = [sys.executable, "-m", "ortprune.cli"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ORT_DYLIB_PATH"}
    env["ORTPRUNE_CACHE"], env["COLUMNS"] = str(cwd / "cache"), "200"
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_probe_models_takes_a_bundled_name(wheel_lib: Path, tmp_path: Path) -> None:
    proc = _run(["probe", str(wheel_lib), "--models", "all-MiniLM-L6-v2-int8", "--json", "p.json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    ops = {r["op"].rpartition(";")[2] for r in json.loads((tmp_path / "p.json").read_text())["results"]}
    assert {"SkipLayerNormalization", "FusedMatMul", "MatMul"} <= ops
    bad = _run(["probe", str(wheel_lib), "--models", "no-such-model"], tmp_path)
    assert bad.returncode == 1 and bad.stderr.startswith("error: no-such-model: no such file"), bad.stderr


def test_verify_takes_a_bundled_name_and_still_judges_each_model(
    wheel_lib: Path, int8_model: Path, tmp_path: Path
) -> None:
    ids = np.array([[101, 7592, 2088, 102]], dtype=np.int64)
    np.savez(tmp_path / "feeds.npz", input_ids=ids, attention_mask=np.ones_like(ids), token_type_ids=np.zeros_like(ids))
    args = ["verify", "--lib", str(wheel_lib), "--reference", str(wheel_lib), "--json", "v.json"]
    args += ["all-MiniLM-L6-v2-int8", "missing.onnx", "--inputs", "all-MiniLM-L6-v2-int8=feeds.npz"]
    proc = _run(args, tmp_path)
    assert proc.returncode == 1, proc.stderr  # missing.onnx cannot load; the bundled model still runs
    verdicts = {Path(m["model"]).name: m["status"] for m in json.loads((tmp_path / "v.json").read_text())["models"]}
    assert verdicts == {int8_model.name: "ok", "missing.onnx": "cannot-load"}
