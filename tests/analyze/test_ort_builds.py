"""On real ORT builds from ~/.cache/ortprune/builds (made by `ortprune build`); skipped when absent."""

from __future__ import annotations

import json

import pytest

from ortprune.analyze import analyze
from ortprune.analyze.builds import CachedBuild, find_builds
from ortprune.analyze.estimate import estimate
from ortprune.cache import cache_dir
from ortprune.opconfig import OpConfig

VERSION = "1.21.0"


def _build(variant: str) -> CachedBuild:
    for b in find_builds(VERSION):
        if b.variant == variant and (variant != "reduced" or b.config is not None):
            return b
    pytest.skip(f"no {variant} ORT {VERSION} build in {cache_dir('builds')}")


@pytest.mark.ortbuild
def test_full_build_every_byte_and_ops() -> None:
    lib = _build("full").library
    for by in ("section", "symbol", "op"):
        report = analyze(lib, by, with_footprint=False)
        assert report.total == report.file_size
    labels = report.by_name()
    for op in ("ai.onnx;MatMul", "ai.onnx;Gather", "ai.onnx;Shape", "com.microsoft;Attention"):
        assert labels[op].size > 0, op
    op_bytes = sum(r.size for r in report.labels if r.kind == "op")
    assert 0.05 * report.file_size < op_bytes < 0.9 * report.file_size


@pytest.mark.ortbuild
def _no_levers(b: CachedBuild) -> bool:
    """A build of the plain reduced command: no extra flags, prune levers or other toolchain (the estimate
    under test models the config alone; the levers have their own predictions in docs/results)."""
    manifest = b.library.parent.parent / "manifest.json"
    if not manifest.exists():
        return True
    m = json.loads(manifest.read_text())
    return not m.get("extra_flags") and not m.get("prune") and m.get("toolchain_name", "gcc") == "gcc"


def test_estimate_against_every_real_reduced_build() -> None:
    full = _build("full")
    _build("reduced")  # skips when there is none
    plain = [b for b in find_builds(VERSION) if b.variant == "reduced" and b.config is not None and _no_levers(b)]
    for reduced in plain:
        assert reduced.config is not None
        e = estimate(full.library, OpConfig.load(reduced.config))
        assert e.reachable_fraction > 0.9
        real = reduced.library.stat().st_size
        assert abs(e.estimated_size - real) / real < 0.05, (reduced.library, e.estimated_size, real)
