"""The optimized-model cache never serves another model's graph: an entry is used only when the model file
and every external-data file it names are the ones the entry was made from (their hashes are in the key).

ORT folds and pre-packs the weights it reads from a model's external-data file into the graph it saves, so
an entry made before those weights changed computes with the old weights. The wheel's real libonnxruntime.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ortprune.errors import OrtpruneError
from ortprune.runtime import Session, wheel_library
from ortprune.runtime.cache import OptimizedModelCache

LIB = wheel_library()
pytestmark = pytest.mark.skipif(LIB is None, reason="needs the onnxruntime wheel's libonnxruntime")
X = np.ones((1, 64), dtype=np.float32)


def _save(directory: Path, value: float) -> Path:
    """y = x @ W with W (64x64, all ``value``) in ``weights.bin`` beside the model (the graph file's bytes do
    not depend on ``value``)."""
    (directory / "weights.bin").unlink(missing_ok=True)  # onnx appends to an existing data file
    w = numpy_helper.from_array(np.full((64, 64), value, dtype=np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = directory / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    return path


def _run(model: Path, cache: OptimizedModelCache) -> tuple[str | None, float]:
    with Session(model, LIB, log_level="fatal", cache=cache) as s:
        return s.cache_status, float(s.run({"x": X})["y"][0, 0])


def test_changed_external_weights_are_not_served_from_the_cache(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    cache = OptimizedModelCache(tmp_path / "cache", background=False)
    model = _save(model_dir, 1.0)
    graph_bytes = model.read_bytes()
    assert _run(model, cache) == ("miss", 64.0)
    assert _run(model, cache) == ("hit", 64.0)
    _save(model_dir, 3.0)  # the same graph file, other weights beside it
    assert model.read_bytes() == graph_bytes
    assert _run(model, cache) == ("miss", 192.0)
    assert _run(model, cache) == ("hit", 192.0)
    _save(model_dir, 1.0)  # the first weights again: their entry is still right
    assert _run(model, cache) == ("hit", 64.0)


def test_weights_changed_in_place_with_the_old_times_put_back(tmp_path: Path) -> None:
    """Same size, same inode, mtime restored: the file's ctime still moves, so its hash is taken anew."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    cache = OptimizedModelCache(tmp_path / "cache", background=False)
    model = _save(model_dir, 1.0)
    weights = model_dir / "weights.bin"
    old = os.stat(weights).st_mtime_ns - 3_600 * 10**9
    os.utime(weights, ns=(old, old))
    assert _run(model, cache) == ("miss", 64.0)
    data = np.full((64, 64), 2.0, dtype=np.float32).tobytes()
    assert len(data) == weights.stat().st_size
    with open(weights, "r+b") as f:
        f.write(data)
    os.utime(weights, ns=(old, old))
    assert _run(model, cache) == ("miss", 128.0)


def test_missing_external_weights_are_an_error_not_a_hit(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    cache = OptimizedModelCache(tmp_path / "cache", background=False)
    model = _save(model_dir, 1.0)
    assert _run(model, cache) == ("miss", 64.0)
    (model_dir / "weights.bin").unlink()
    with pytest.raises(OrtpruneError, match="could not load the model"):
        _run(model, cache)


def test_the_same_model_copied_elsewhere_with_other_weights(tmp_path: Path) -> None:
    """Two copies of one graph file, each with its own weights: each gets its own entry."""
    cache = OptimizedModelCache(tmp_path / "cache", background=False)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    model_a, model_b = _save(a, 1.0), _save(b, 5.0)
    assert model_a.read_bytes() == model_b.read_bytes()
    assert _run(model_a, cache) == ("miss", 64.0)
    assert _run(model_b, cache) == ("miss", 320.0)
    assert _run(model_a, cache) == ("hit", 64.0)
    assert _run(model_b, cache) == ("hit", 320.0)
