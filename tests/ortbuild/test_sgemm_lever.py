"""--prune sgemm-packed-k: MLAS's SGEMM on run-time weights in the pre-packed path's K slices (issue 15's exactness
for keep-quantized .ort files). The text edit on a stand-in and on ORT 1.21.0's own sgemm.cpp (compiled), the spec
rules, and the build-tree overlay. The numbers it changes are measured on real builds (docs/results/ort-format.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ortprune.cache import cache_dir
from ortprune.errors import BuildError
from ortprune.ortbuild.mlas import SGEMM_CPP, SGEMM_LEVER, packed_k_sgemm
from ortprune.ortbuild.prune import prepare_sources
from ortprune.ortbuild.variants import BuildSpec

REAL_SOURCE = cache_dir("src", "onnxruntime-1.21.0")

# the three places as MLAS writes them (ORT 1.21.0), reduced to what the edit looks at
STAND_IN = """
void MlasSgemmOperation(CBLAS_TRANSPOSE TransA, size_t M, size_t N, size_t K, float alpha, float beta) {
    if (M == 1 && TransA == CblasNoTrans && alpha == 1.0f && (beta == 0.0f || beta == 1.0f)) {
        return;
    }
    if (N == 1 && ldb == 1 && ldc == 1 && alpha == 1.0f && (beta == 0.0f || beta == 1.0f)) {
        return;
    }
    size_t StrideN = MLAS_SGEMM_STRIDEN;
    size_t StrideK = MLAS_SGEMM_STRIDEK;

    if (N >= K) {
        while (StrideK / 2 >= K) { StrideN *= 2; StrideK /= 2; }
    } else if (TransA == CblasNoTrans) {
        while (StrideN > 16 && StrideN / 2 >= N) { StrideK *= 2; StrideN /= 2; }
    }
}
"""


def test_the_edit_slices_k_as_the_packed_path_and_drops_the_one_row_shortcuts() -> None:
    new = packed_k_sgemm(STAND_IN)
    assert "if (TransA == CblasNoTrans) {  // ortprune sgemm-packed-k" in new
    assert "StrideK = MLAS_SGEMM_PACKED_STRIDEK;" in new
    # the B panel keeps its size: STRIDEN * STRIDEK floats
    assert "StrideN = MLAS_SGEMM_STRIDEN * MLAS_SGEMM_STRIDEK / MLAS_SGEMM_PACKED_STRIDEK;" in new
    assert "} else if (N >= K) {" in new and "} else if (TransA == CblasNoTrans) {" in new
    assert new.count("if (false /* ortprune sgemm-packed-k */ && ") == 2
    with pytest.raises(BuildError, match="'strides' edit of sgemm-packed-k"):
        packed_k_sgemm(STAND_IN.replace("if (N >= K) {", "if (K <= N) {"))
    with pytest.raises(BuildError, match=r"2 places for the 'm1' edit"):
        m1 = "    if (M == 1 && TransA == CblasNoTrans && alpha == 1.0f && (beta == 0.0f || beta == 1.0f)) {\n"
        packed_k_sgemm(STAND_IN.replace(m1, m1 + "    }\n" + m1))


def test_spec_rules() -> None:
    full = BuildSpec("1.21.0", "full", prune=(SGEMM_LEVER,))  # no config needed: any variant
    assert full.prune == (SGEMM_LEVER,) and full.key() != BuildSpec("1.21.0", "full").key()
    both = BuildSpec("1.21.0", "full", prune=("mlas-isa=avx2", SGEMM_LEVER))
    assert both.key() not in (full.key(), BuildSpec("1.21.0", "full", prune=("mlas-isa=avx2",)).key())
    with pytest.raises(BuildError, match="sgemm-packed-k"):
        BuildSpec("1.21.0", "full", prune=("sgemm-packed",))


def real_sgemm() -> Path:
    path = REAL_SOURCE / SGEMM_CPP
    if not path.is_file():
        pytest.skip(f"ORT 1.21.0's source is not in the cache ({REAL_SOURCE}; ortprune source fetch debian:1.21.0)")
    return path


def test_on_ort_1_21_sources_overlay_and_compile(tmp_path: Path) -> None:
    """The generated sgemm.cpp of a real build tree: swapped in by the overlay, the cached source untouched,
    and it compiles with ORT's own include paths."""
    path = real_sgemm()
    before = path.stat().st_mtime_ns
    defines, report = prepare_sources(REAL_SOURCE, tmp_path, (SGEMM_LEVER,), None)
    overlay = tmp_path / "ortprune.generated/overlay.cmake"
    assert defines == [f"CMAKE_PROJECT_onnxruntime_INCLUDE={overlay}"] and str(path) in overlay.read_text()
    gen = tmp_path / "ortprune.generated" / SGEMM_CPP
    assert str(gen) in report.generated and path.stat().st_mtime_ns == before
    text = gen.read_text()
    assert text.count("ortprune sgemm-packed-k") == 3
    assert f'#include "{REAL_SOURCE / "onnxruntime/core/mlas/lib/mlasi.h"}"' in text
    cxx = shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    inc = [f"-I{REAL_SOURCE / d}" for d in ("onnxruntime/core/mlas/inc", "include/onnxruntime", "onnxruntime")]
    subprocess.run([cxx, "-std=c++17", "-fsyntax-only", "-Wall", "-Werror", *inc, str(gen)], check=True)
