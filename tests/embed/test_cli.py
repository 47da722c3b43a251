"""``ortprune embed`` through the real entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from ortprune.embed import TextEmbedding


def ortprune(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ortprune.cli", *args], capture_output=True, text=True, input=stdin, timeout=300
    )


def test_embed_prints_vectors(tmp_path: Path) -> None:
    r = ortprune("embed", "--model", "all-MiniLM-L6-v2-int8", "hello world", "flag embedding")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["'hello world'", "'flag embedding'"]
    printed = np.array([float(x) for x in lines[0].split("\t")[1].strip("[]").split(",")])
    want = TextEmbedding("all-MiniLM-L6-v2-int8").embed_batch(["hello world", "flag embedding"])[0]
    assert printed.shape == (384,)
    np.testing.assert_allclose(printed, want, atol=5e-5)
    assert "shape (2, 384) float32" in r.stderr and "ONNX Runtime" in r.stderr


def test_embed_writes_npy_from_stdin(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "vectors.npy"
    r = ortprune("embed", "-m", "paraphrase-MiniLM-L3-v2", "-o", str(out), "--batch-size", "1", "-", stdin="a\nb b\n")
    assert r.returncode == 0, r.stderr
    got = np.load(out)
    np.testing.assert_allclose(got, TextEmbedding("paraphrase-MiniLM-L3-v2").embed_batch(["a", "b b"]), atol=1e-5)
    assert [p.name for p in out.parent.iterdir()] == ["vectors.npy"]  # no temp file left


def test_embed_errors_are_one_line(tmp_path: Path) -> None:
    for args, expected in [
        (["--model", "no-such-model", "x"], "unknown model 'no-such-model'"),
        (["--lib", str(tmp_path / "libonnxruntime.so"), "x"], "libonnxruntime.so: no such file"),
        (["--model", "all-MiniLM-L6-v2-int8"], "no texts given"),
    ]:
        r = ortprune("embed", *args)
        assert r.returncode == 1, r.stderr
        assert r.stderr.count("\n") == 1 and expected in r.stderr and "Traceback" not in r.stderr
