"""On real ORT builds from ~/.cache/ortprune/builds (made by `ortprune build`); skipped when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from ortprune.analyze import analyze
from ortprune.analyze.estimate import estimate
from ortprune.opconfig import OpConfig

BUILDS = Path.home() / ".cache" / "ortprune" / "builds"


def _lib(variant: str) -> Path:
    libs = sorted((BUILDS / variant / "MinSizeRel").glob("libonnxruntime.so.*.*.*"))
    if not libs:
        pytest.skip(f"no {variant} ORT build in {BUILDS}")
    return libs[0]


@pytest.mark.ortbuild
def test_full_build_every_byte_and_ops() -> None:
    lib = _lib("full")
    for by in ("section", "symbol", "op"):
        report = analyze(lib, by, with_footprint=False)
        assert report.total == report.file_size
    labels = report.by_name()
    for op in ("ai.onnx;MatMul", "ai.onnx;Gather", "ai.onnx;Shape", "com.microsoft;Attention"):
        assert labels[op].size > 0, op
    op_bytes = sum(r.size for r in report.labels if r.kind == "op")
    assert 0.05 * report.file_size < op_bytes < 0.9 * report.file_size


@pytest.mark.ortbuild
def test_estimate_of_the_seed_config_against_the_reduced_build() -> None:
    full, reduced = _lib("full"), _lib("reduced")
    configs = sorted((BUILDS / "reduced").rglob("*.config"))
    config = configs[0] if configs else Path(__file__).parents[2] / "src" / "ortprune" / "data" / "seed.config"
    e = estimate(full, OpConfig.load(config))
    assert e.reachable_fraction > 0.9
    real = reduced.stat().st_size
    assert abs(e.estimated_size - real) / real < 0.05, (e.estimated_size, real)
