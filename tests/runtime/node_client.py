"""A real third-party client of libonnxruntime: the npm registry's ``onnxruntime-node``, installed once into
the ortprune cache by the test fixtures (never by hand), and a reference libonnxruntime of the same
release from PyPI's ``onnxruntime`` wheel (pip download, cached).

``npm install --ignore-scripts``: the package's postinstall only fetches CUDA/TensorRT provider libraries
from nuget.org for linux/x64; the CPU binding and its libonnxruntime.so.1 are in the npm tarball itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ortprune._io import atomic_write_text
from ortprune.cache import cache_dir

#: onnxruntime-node's version for the tests: the release the offline ORT builds are made from (1.21.0),
#: so the same npm package serves the default suite (PyPI's 1.21.0 library) and the ortbuild tests.
NODE_ORT_VERSION = "1.21.0"

SCRIPT = r"""
const ort = require('onnxruntime-node');
const fs = require('fs');
(async () => {
  const [model, feedsPath] = process.argv.slice(2);
  const feeds = JSON.parse(fs.readFileSync(feedsPath, 'utf8'));
  const session = await ort.InferenceSession.create(model, {graphOptimizationLevel: 'all', intraOpNumThreads: 1});
  const inputs = {};
  for (const [name, f] of Object.entries(feeds)) {
    inputs[name] = new ort.Tensor('int64', BigInt64Array.from(f.data.map(BigInt)), f.dims);
  }
  const out = await session.run(inputs);
  const outputs = {};
  for (const [name, t] of Object.entries(out)) outputs[name] = {dims: t.dims, data: Array.from(t.data)};
  const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\n')
    .map(l => l.trim().split(/\s+/).slice(5).join(' ')).filter(p => p.includes('libonnxruntime'));
  console.log(JSON.stringify({outputs, loaded: [...new Set(maps)]}));
})().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


def npm_package(version: str = NODE_ORT_VERSION) -> Path:
    """``node_modules`` holding onnxruntime-node@version, installed once under ``<cache>/npm``."""
    npm = shutil.which("npm")
    assert npm is not None
    root = cache_dir("npm", f"onnxruntime-node-{version}")
    modules = root / "node_modules"
    if (modules / "onnxruntime-node" / "package.json").is_file():
        return modules
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    subprocess.run([npm, "install", "--prefix", str(tmp), "--cache", str(cache_dir("npm", "_cache")),
                    "--ignore-scripts", "--no-audit", "--no-fund", "--no-save", f"onnxruntime-node@{version}"],
                   check=True, capture_output=True, timeout=1200)  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return modules


def shipped_library(modules: Path) -> Path:
    """The libonnxruntime.so.1 npm ships beside the N-API binding (linux/x64)."""
    found = sorted((modules / "onnxruntime-node" / "bin").glob("napi-v*/linux/x64/libonnxruntime.so.1"))
    assert found, f"no linux/x64 libonnxruntime.so.1 in {modules}"
    return found[-1]


def pypi_library(version: str = NODE_ORT_VERSION) -> Path:
    """libonnxruntime.so.<version> from PyPI's onnxruntime==<version> wheel for this Python (pip download,
    then the one file unpacked), cached under ``<cache>/wheels``."""
    dest = cache_dir("wheels", f"onnxruntime-{version}", f"libonnxruntime.so.{version}")
    if dest.is_file():
        return dest
    wheels = cache_dir("wheels", "downloads")
    wheels.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(wheels)]
    subprocess.run([*pip, f"onnxruntime=={version}"], check=True, capture_output=True, timeout=1200)
    [wheel] = sorted(wheels.glob(f"onnxruntime-{version}-*.whl"))[-1:]
    with zipfile.ZipFile(wheel) as z:
        data = z.read(f"onnxruntime/capi/libonnxruntime.so.{version}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return dest


def run_node(modules: Path, model: Path, feeds: dict[str, np.ndarray], work: Path,
             lib: Path | None = None, libdir: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Run ``model`` through onnxruntime-node; with ``lib``, LD_LIBRARY_PATH points at a directory where
    libonnxruntime.so.1 is ``lib`` (the one line README gives users); with ``libdir``, LD_LIBRARY_PATH is
    that directory as it is (a deploy bundle's ``lib``). Returns the outputs as float32 arrays and the
    libonnxruntime files the process had mapped."""
    work.mkdir(parents=True, exist_ok=True)
    script = work / "client.js"
    atomic_write_text(script, SCRIPT)
    feeds_file = work / "feeds.json"
    atomic_write_text(feeds_file, json.dumps({k: {"dims": list(v.shape), "data": v.ravel().tolist()}
                                              for k, v in feeds.items()}))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["NODE_PATH"] = str(modules)
    if lib is not None:
        libdir = work / "ortlib"
        libdir.mkdir(exist_ok=True)
        link = libdir / "libonnxruntime.so.1"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(lib.resolve())
        env["LD_LIBRARY_PATH"] = str(libdir)
    elif libdir is not None:
        env["LD_LIBRARY_PATH"] = str(libdir)
    node = shutil.which("node")
    assert node is not None
    proc = subprocess.run([node, str(script), str(model), str(feeds_file)], capture_output=True, text=True,
                          env=env, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    outputs = {k: np.array(v["data"], dtype=np.float32).reshape(v["dims"]) for k, v in result["outputs"].items()}
    return {"outputs": outputs, "loaded": [str(Path(p).resolve()) for p in result["loaded"]]}
