"""Checks on real ORT 1.21.0 builds made by `ortprune build` (docs/results/ort-1.21.0-linux-x86_64.md).

A build takes tens of minutes on 2 cores, so CI does not make them: each test runs when the build it needs
is in ~/.cache/ortprune (or $ORTPRUNE_CACHE) and is skipped otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ortprune.elf import is_system_library
from ortprune.opconfig import OpConfig, OpId
from ortprune.ortbuild import lookup
from ortprune.ortbuild.runner import BuildResult, dt_needed
from ortprune.runtime import Session, load_library
from ortprune.verify import probe, verify

pytestmark = pytest.mark.ortbuild
CONFIGS = Path(__file__).parents[2] / "docs" / "results" / "configs"


def built(variant: str, config: str | None = None) -> BuildResult:
    text = None if config is None else (CONFIGS / config).read_text()
    found = lookup("debian:1.21.0", variant, text)
    if found is None:
        pytest.skip(f"no {variant} build{f' of {config}' if config else ''} in the cache")
    return found


@pytest.mark.parametrize(
    ("variant", "config"), [("full", None), ("no-contrib", None), ("reduced", "bundled-all.config")]
)
def test_library_loads_and_needs_only_the_system_runtime(variant: str, config: str | None) -> None:
    b = built(variant, config)
    lib = load_library(b.library)
    assert lib.version == "1.21.0"
    assert all(is_system_library(n) for n in dt_needed(Path(b.library))), dt_needed(Path(b.library))


def test_reduced_runs_its_models_like_the_full_build(int8_model: Path, fp32_model: Path) -> None:
    full, reduced = built("full"), built("reduced", "bundled-all.config")
    report = verify(reduced.library, [int8_model, fp32_model], full.library, "all", 1e-5)
    assert report.ok, report.to_dict()
    for m in report.models:
        assert max(o.max_abs_diff for o in m.outputs) <= 1e-5


def test_probe_reduced_build_exactly_the_config(int8_model: Path) -> None:
    reduced = built("reduced", "bundled-all.config")
    config = OpConfig.load(CONFIGS / "bundled-all.config")
    report = probe(reduced.library, list(config))
    assert report.ok and not report.by_status("could-not-probe")
    outside = [OpId("ai.onnx", 17, op) for op in ("Conv", "LSTM", "TopK", "Sigmoid", "Resize", "Einsum")]
    outside += [OpId("com.microsoft", 1, op) for op in ("Attention", "FastGelu", "QuickGelu", "MatMulNBits")]
    report = probe(reduced.library, outside)
    assert {r.op for r in report.by_status("missing")} == {str(o) for o in outside}


def test_config_without_the_optimizer_fails_at_level_all_naming_the_op(fp32_model: Path) -> None:
    raw, full = built("reduced", "bundled-raw.config"), built("full")
    assert verify(raw.library, [fp32_model], full.library, "disable").ok  # what the naive config was made for
    report = verify(raw.library, [fp32_model], full.library, "all")
    (m,) = report.models
    assert m.status == "missing-op" and m.missing_op == "com.microsoft:BiasGelu"
    assert m.fix == "com.microsoft;1;BiasGelu"


def test_seed_config_cannot_load_opset_17_models(int8_model: Path) -> None:
    """The seed's config lists ai.onnx opset 11: kernels of later versions (Shape-15, Cast-13) are gone."""
    seed = built("reduced", "seed-13-ops.config")
    with pytest.raises(Exception, match=r"Could not find an implementation for \w+\(\d+\)"):
        Session(int8_model, seed.library)


def test_embeddings_on_the_pruned_library_equal_the_full_ones() -> None:
    from ortprune.embed import TextEmbedding

    full, reduced = built("full"), built("reduced", "bundled-all.config")
    texts = ["a pruned runtime", "the same vectors"]
    for name in ("all-MiniLM-L6-v2-int8", "paraphrase-MiniLM-L3-v2"):
        a = np.stack(list(TextEmbedding(name, lib=full.library).embed(texts)))
        b = np.stack(list(TextEmbedding(name, lib=reduced.library).embed(texts)))
        assert np.max(np.abs(a - b)) <= 1e-6


def test_type_reduced_build_keeps_only_the_configs_types(int8_model: Path, fp32_model: Path) -> None:
    typed, full = built("reduced-types", "bundled-all-types.config"), built("full")
    config = OpConfig.load(CONFIGS / "bundled-all-types.config")
    assert probe(typed.library, list(config), types=config.types).ok
    # without the type hints the float probes of int64-only ops find no kernel: the types really went
    missing = {r.op for r in probe(typed.library, list(config)).by_status("missing")}
    assert {"ai.onnx;17;Equal", "ai.onnx;17;Range", "ai.onnx;17;Max"} <= missing
    assert verify(typed.library, [int8_model, fp32_model], full.library, "all").ok
    assert typed.library_bytes < built("reduced", "bundled-all.config").library_bytes


def test_aarch64_reduced_build_runs_like_the_official_aarch64_library(
    aarch64_official: Path, fp32_model: Path, tmp_path: Path
) -> None:
    """The cross-built reduced library (docs/results/ort-1.21.0-linux-aarch64.md), under qemu-user: an aarch64
    ELF needing only the system runtime. Its outputs are the official release's but for LayerNormalization,
    whose plain C++ loop Debian's gcc 12 compiles otherwise than the release's gcc 14 (measured: 4.8e-7 on that
    op alone, 1.43e-6 on the fp32 model; every other op of the models bit-identical; the results page)."""
    from ortprune.elf import ElfFile
    from ortprune.errors import BuildError

    text = (CONFIGS / "bundled-all-linux-aarch64.config").read_text()
    try:
        b = lookup("debian:1.21.0", "reduced", text, target="linux-aarch64")
    except BuildError as e:  # no cross compiler here
        pytest.skip(str(e))
    if b is None:
        pytest.skip("no linux-aarch64 reduced build in the cache")
    with ElfFile(b.library, sections=False) as elf:
        assert elf.machine == 183  # EM_AARCH64
    assert all(is_system_library(n) for n in dt_needed(Path(b.library))), dt_needed(Path(b.library))
    report = verify(b.library, [fp32_model], aarch64_official, "all", 2e-6)
    assert report.ok, report.to_dict()
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.random.default_rng(0).standard_normal((384, 384)).astype(np.float32), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "mm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 18, 384])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weights])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "matmul.onnx")
    exact = verify(b.library, [tmp_path / "matmul.onnx"], aarch64_official, "disable", 0.0)
    assert exact.ok, exact.to_dict()  # MLAS's SGEMM: the same bits as the release
