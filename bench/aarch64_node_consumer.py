"""Consumer check on linux-aarch64, under qemu-user: npm's onnxruntime-node 1.21.0 (its arm64 N-API binding)
in Debian 12's arm64 Node 18, once with the libonnxruntime.so.1 it ships and once with LD_LIBRARY_PATH
pointing at a pruned aarch64 library (the one line README gives users). Every output is compared.

    python bench/aarch64_node_consumer.py --lib PRUNED_AARCH64_LIB [--out bench/results/aarch64_node.json]

Node for arm64 comes from Debian's pool (the .debs of nodejs, libnode108 and what they need, unpacked into a
root under ~/.cache/ortprune/node-arm64; file names from this host's apt lists, architecture swapped);
the cross sysroot gives the C and C++ runtime. Nothing is installed on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ortprune.bundled import BUNDLED
from ortprune.cache import cache_dir
from ortprune.platform import TARGETS
from ortprune.tokenizer import load_tokenizer
from tests.runtime.node_client import SCRIPT, npm_package

TARGET = TARGETS["linux-aarch64"]
#: Debian 12's Node and what libnode108 needs (arm64 builds); arch-independent JS parts it loads at start.
PACKAGES = ("nodejs", "libnode108", "libuv1", "libicu72", "libssl3", "libc-ares2", "libbrotli1", "libnghttp2-14",
            "zlib1g", "node-cjs-module-lexer", "node-acorn", "node-undici")  # fmt: skip
MIRRORS = {"pool/updates/": "http://deb.debian.org/debian-security/", "pool/": "http://deb.debian.org/debian/"}
#: the tests' client, with int64 outputs (the L3 package's model returns its token ids too) made JSON numbers
CLIENT = SCRIPT.replace("Array.from(t.data)", "Array.from(t.data, Number)")
assert CLIENT != SCRIPT
TEXTS = ["ONNX Runtime, pruned to what the model needs.", "Hello, World!"]


def pool_file(package: str) -> str:
    """The pool path of ``package``'s arm64 (or all) .deb, from this host's apt lists (Debian's version)."""
    shown = subprocess.run(["apt-cache", "show", package], capture_output=True, text=True, check=True).stdout
    for block in shown.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line[0].isspace())
        name = fields.get("Filename", "")
        if "nodesource" not in fields.get("Version", "") and name:
            return name.replace("_amd64.deb", "_arm64.deb")
    raise SystemExit(f"apt has no Debian version of {package}")


def node_root() -> Path:
    root = cache_dir("node-arm64", "root")
    if (root / "usr" / "bin" / "node").is_file():
        return root
    tmp = Path(tempfile.mkdtemp(prefix="node-arm64-", dir=cache_dir()))
    for package in PACKAGES:
        path = pool_file(package)
        base = next(url for prefix, url in MIRRORS.items() if path.startswith(prefix))
        deb = tmp / Path(path).name
        urllib.request.urlretrieve(base + path, deb)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], check=True)
    shutil.copytree(TARGET.sysroot / "lib", tmp / "root" / "lib", dirs_exist_ok=True, symlinks=True)
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    (tmp / "root").rename(root)
    shutil.rmtree(tmp, ignore_errors=True)
    return root


def feeds(model_name: str) -> dict[str, np.ndarray]:
    b = next(m for m in BUNDLED if m.name == model_name)
    tok, _ = load_tokenizer(b.tokenizer())
    enc = tok.encode_batch(TEXTS)
    return {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }


def run(root: Path, modules: Path, model: Path, inputs: dict[str, np.ndarray], work: Path, lib: Path | None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    (work / "client.js").write_text(CLIENT)
    (work / "feeds.json").write_text(json.dumps({k: {"dims": list(v.shape), "data": v.ravel().tolist()}
                                                 for k, v in inputs.items()}))  # fmt: skip
    paths = ["/usr/lib/aarch64-linux-gnu", "/lib"]
    if lib is not None:
        (work / "ortlib").mkdir(exist_ok=True)
        shutil.copy2(lib, work / "ortlib" / "libonnxruntime.so.1")
        paths.insert(0, str(work / "ortlib"))
    node = root / "usr" / "bin" / "node"
    env = ["-E", f"LD_LIBRARY_PATH={':'.join(paths)}", "-E", f"NODE_PATH={modules}"]
    cmd = [TARGET.qemu, "-L", str(root), *env, str(node), str(work / "client.js"), str(model), str(work / "feeds.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"node under qemu failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", type=Path, required=True, help="the pruned linux-aarch64 libonnxruntime")
    ap.add_argument("--out", type=Path, default=Path("bench/results/aarch64_node.json"))
    args = ap.parse_args()
    root, modules = node_root(), npm_package("1.21.0")
    libs = "LD_LIBRARY_PATH=/usr/lib/aarch64-linux-gnu:/lib"
    version_cmd = [TARGET.qemu, "-L", str(root), "-E", libs, str(root / "usr/bin/node"), "--version"]
    node_version = subprocess.run(version_cmd, capture_output=True, text=True).stdout
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for b in BUNDLED:
            inputs = feeds(b.name)
            shipped = run(root, modules, b.path(), inputs, Path(tmp) / b.name / "shipped", None)
            pruned = run(root, modules, b.path(), inputs, Path(tmp) / b.name / "pruned", args.lib)
            diffs = {}
            for name, ref in shipped["outputs"].items():
                a, p = np.array(ref["data"], dtype=np.float64), np.array(pruned["outputs"][name]["data"], np.float64)
                diffs[name] = float(np.max(np.abs(a - p))) if a.size else 0.0
            rows.append({"model": b.name, "max_abs_diff": diffs, "loaded_shipped": shipped["loaded"],
                         "loaded_pruned": pruned["loaded"]})  # fmt: skip
            print(b.name, diffs, pruned["loaded"])
    result = {"node": node_version.strip(), "onnxruntime_node": "1.21.0", "pruned": str(args.lib),
              "qemu": subprocess.run([TARGET.qemu, "--version"], capture_output=True, text=True).stdout.splitlines()[0],
              "host": {"machine": platform.machine(), "cpu_count": os.cpu_count()}, "models": rows}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
