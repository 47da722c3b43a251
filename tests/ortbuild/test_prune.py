"""The --prune source transforms on small fake build trees, and on ORT's / onnx's real files when present."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ortprune.cache import cache_dir
from ortprune.errors import BuildError
from ortprune.opconfig import OpConfig
from ortprune.ortbuild.prune import (
    classes_to_drop,
    constructions,
    cut_schemas,
    cut_transformers,
    overlay_cmake,
    prepare_sources,
    prune_deps,
    resolve_schemas,
    schema_entries,
    transformer_names,
    transient_ops,
    wanted_schemas,
)
from ortprune.ortbuild.variants import BuildSpec

CONFIGS = Path(__file__).parents[2] / "docs" / "results" / "configs"


def fn(tag: str, v: int, op: str) -> str:
    return f"    fn(GetOpSchema<ONNX_OPERATOR_SET_SCHEMA_CLASS_NAME({tag}, {v}, {op})>());\n"


def opset_header(tag: str, entries: list[tuple[int, str]]) -> str:
    """An operator set header in onnx's shape: declarations, then one ForEachSchema per version."""
    decls = "".join(f"class ONNX_OPERATOR_SET_SCHEMA_CLASS_NAME({tag}, {v}, {op});\n" for v, op in entries)
    body = "".join(fn(tag, v, op) for v, op in entries)
    return (
        f"#pragma once\nnamespace ONNX_NAMESPACE {{\n{decls}class OpSet_{tag} {{\n public:\n"
        f"  static void ForEachSchema(std::function<void(OpSchema&&)> fn) {{\n{body}  }}\n}};\n}}\n"
    )


ONNX = [
    (1, "Add"),
    (6, "Add"),
    (7, "Add"),
    (13, "Add"),
    (14, "Add"),
    (1, "Gather"),
    (11, "Gather"),
    (13, "Gather"),
    (1, "Conv"),
    (11, "Conv"),
    (1, "Transpose"),
    (13, "Transpose"),
    (21, "Transpose"),
    (17, "LayerNormalization"),
]
ML = [(1, "LabelEncoder"), (2, "LabelEncoder"), (1, "ZipMap")]
MS = [(1, "BiasGelu"), (1, "FusedMatMul"), (1, "Attention"), (1, "NhwcMaxPool")]
ADDED = (
    ("ai.onnx", "Transpose", 1),
    ("ai.onnx", "Transpose", 13),
    ("ai.onnx", "Transpose", 21),
    ("com.microsoft", "NhwcMaxPool", 1),
)
CONFIG = OpConfig.parse("ai.onnx;17;Add,Gather,LayerNormalization\ncom.microsoft;1;BiasGelu\n")


def test_each_op_keeps_the_schema_its_opset_resolves_to() -> None:
    keep = resolve_schemas(schema_entries(opset_header("Onnx", ONNX)), wanted_schemas(CONFIG, ADDED))
    # latest since_version <= 17 for the config's ops and for what the layout transformer may insert
    assert keep == {
        ("Onnx", 14, "Add"),
        ("Onnx", 13, "Gather"),
        ("Onnx", 17, "LayerNormalization"),
        ("Onnx", 13, "Transpose"),
    }
    two = OpConfig.parse("ai.onnx;11,14;Add\n")
    assert resolve_schemas(schema_entries(opset_header("Onnx", ONNX)), wanted_schemas(two)) == {
        ("Onnx", 7, "Add"),
        ("Onnx", 14, "Add"),
    }


def test_cut_drops_registrations_but_keeps_declarations() -> None:
    text = opset_header("Onnx", ONNX)
    keep = resolve_schemas(schema_entries(text), wanted_schemas(CONFIG, ADDED))
    new, cut = cut_schemas(text, keep)
    assert set(schema_entries(new)) == keep
    assert len(cut.kept) == 4 and len(cut.dropped) == len(ONNX) - 4
    assert new.count("class ONNX_OPERATOR_SET_SCHEMA_CLASS_NAME(") == len(ONNX)  # declarations stay
    # ML schemas: none when the config has no ai.onnx.ml op
    ml, ml_cut = cut_schemas(opset_header("OnnxML", ML), set())
    assert schema_entries(ml) == [] and len(ml_cut.dropped) == 3
    with pytest.raises(BuildError, match="not an operator set header"):
        cut_schemas("#pragma once\n", set(), "x.h")


def onnx_header(name: str) -> str:
    """onnx 1.17's real header from a build tree or the dependency archive in the cache; skip when absent."""
    for tree in sorted(cache_dir("builds").glob("*/MinSizeRel/_deps/onnx-src/onnx/defs")):
        orig = tree / f"{name}.ortprune-orig"
        return (orig if orig.exists() else tree / name).read_text()
    archive = cache_dir("downloads") / "onnx_1.17.0.orig.tar.gz"
    if not archive.exists():
        pytest.skip("onnx 1.17 source is not in the cache (ortprune deps fetch)")
    with tarfile.open(archive) as t:
        member = next(m for m in t.getmembers() if m.name.endswith(f"onnx/defs/{name}"))
        data = t.extractfile(member)
        assert data is not None
        return data.read().decode()


def test_real_onnx_header_cut_for_the_bundled_models() -> None:
    text = onnx_header("operator_sets.h")
    config = OpConfig.load(CONFIGS / "bundled-all.config")
    from ortprune.ortbuild.added_ops import ORT_ADDED_OPS

    keep = resolve_schemas(schema_entries(text), wanted_schemas(config, ORT_ADDED_OPS))
    assert {
        ("Onnx", 14, "Add"),
        ("Onnx", 13, "MatMul"),
        ("Onnx", 17, "LayerNormalization"),
        ("Onnx", 13, "Transpose"),
        ("Onnx", 13, "Softmax"),
    } <= keep
    _, cut = cut_schemas(text, keep)
    ai_onnx = {i.op for i in config if i.domain == "ai.onnx"}
    assert len(cut.kept) == len(keep) and ai_onnx <= {op for _, _, op in cut.kept}
    assert len(schema_entries(text)) > 500 and len(cut.kept) < 50  # every op of every opset vs one version each
    ml_new, ml_cut = cut_schemas(onnx_header("operator_sets_ml.h"), set())
    assert schema_entries(ml_new) == [] and ml_cut.dropped


UTILS = """
InlinedVector<std::unique_ptr<RewriteRule>> GenerateRewriteRules(TransformerLevel level) {
  switch (level) {
    case TransformerLevel::Level1:
      rules.push_back(std::make_unique<EliminateIdentity>());
      rules.push_back(std::make_unique<GemmTransposeFusion>());
      break;
    case TransformerLevel::Level2:
      rules.push_back(std::make_unique<GemmTransposeFusion>());
      break;
  }
}
void GenerateTransformers() {
      transformers.emplace_back(std::make_unique<ConstantFolding>(cpu_execution_provider, !disable_quant_qdq,
                                                                  session_options.config_options));
      if (!disable_quant_qdq) {
        transformers.emplace_back(std::make_unique<QDQPropagationTransformer>());
      }
      transformers.emplace_back(std::make_unique<GeluFusion>(cpu_eps, level));
      transformers.emplace_back(std::make_unique<TransposeOptimizer>(std::move(cpu_allocator), kCpu));
}
"""

HEADERS = {
    "constant_folding.h": "class ConstantFolding : public GraphTransformer {\n public:\n  ConstantFolding();\n};\n",
    "constant_folding.cc": "ConstantFolding::ConstantFolding(const IExecutionProvider& ep)\n"
    '    : GraphTransformer("ConstantFolding", eps) {}\n',
    "qdq.h": "class QDQPropagationTransformer : public GraphTransformer {\n public:\n"
    '  QDQPropagationTransformer() : GraphTransformer("QDQPropagationTransformer", {}) {}\n};\n',
    "gelu_fusion.h": "class GeluFusion : public GraphTransformer {\n private:\n"
    "  std::string GetGeluFusionName(TransformerLevel level) {\n    switch (level) {\n"
    '      case TransformerLevel::Level1:\n        return "GeluFusionL1";\n'
    '      case TransformerLevel::Level2:\n        return "GeluFusionL2";\n    }\n  }\n public:\n'
    "  GeluFusion() : GraphTransformer(GetGeluFusionName(level), eps) {}\n};\n",
    "gelu_fusion.cc": "Status GeluFusion::ApplyImpl(Graph& graph) const {\n"
    '  graph.AddNode(name, "Gelu", "fused", inputs, outputs, nullptr, kMSDomain);\n}\n',
    "transpose_optimizer.h": "class TransposeOptimizer : public GraphTransformer {\n public:\n"
    "  TransposeOptimizer(AllocatorPtr cpu_allocator, const std::string& ep = {})\n"
    '      : GraphTransformer(ep.empty() ? "TransposeOptimizer"'
    ' : "TransposeOptimizer_" + ep),\n'
    "        cpu_allocator_(std::move(cpu_allocator)) {}\n};\n",
    "eliminate_identity.h": "class EliminateIdentity : public RewriteRule {\n public:\n"
    '  EliminateIdentity() noexcept : RewriteRule("EliminateIdentity") {}\n};\n',
    "gemm_transpose_fusion.h": "class GemmTransposeFusion : public RewriteRule {\n public:\n"
    '  GemmTransposeFusion() noexcept : RewriteRule("GemmTransposeFusion") {}\n};\n',
}


def fake_source(root: Path) -> Path:
    opt = root / "onnxruntime/core/optimizer"
    opt.mkdir(parents=True)
    (opt / "graph_transformer_utils.cc").write_text(UTILS)
    for name, text in HEADERS.items():
        (opt / name).write_text(text)
    session = root / "onnxruntime/core/session"
    session.mkdir(parents=True)
    (session / "environment.cc").write_text(
        '#include "onnx/defs/operator_sets.h"\n#include "core/graph/contrib_ops/ms_opset.h"\nvoid Register() {}\n'
    )
    layout = opt / "layout_transformation"
    layout.mkdir()
    (layout / "layout_transformation_potentially_added_ops.h").write_text(
        "// @@region_begin(extended_minimal_build_required_kernels)@@\n"
        + "".join(f'    OpIdentifierWithStringViews{{kOnnxDomain, "Transpose", {v}}},\n' for v in (1, 13, 21))
        + "// @@region_end(extended_minimal_build_required_kernels)@@\n"
    )
    contrib = root / "onnxruntime/core/graph/contrib_ops"
    contrib.mkdir(parents=True)
    (contrib / "ms_opset.h").write_text(opset_header("Microsoft", MS))
    return root


def test_transformer_names_read_from_the_sources(tmp_path: Path) -> None:
    names = transformer_names(fake_source(tmp_path))
    assert names["ConstantFolding"] == ("ConstantFolding",)  # out-of-line constructor in the .cc
    assert names["GeluFusion"] == ("GeluFusionL1", "GeluFusionL2")
    assert names["TransposeOptimizer"] == ("TransposeOptimizer", "TransposeOptimizer_")
    # a rule also runs under its level's rule-based transformer, which is what ORT logs
    assert names["GemmTransposeFusion"] == (
        "GemmTransposeFusion",
        "Level1_RuleBasedTransformer",
        "Level2_RuleBasedTransformer",
    )
    drop = classes_to_drop(
        names, ["ConstantFolding", "TransposeOptimizer_CPUExecutionProvider", "Level2_RuleBasedTransformer"]
    )
    assert drop == {"QDQPropagationTransformer", "GeluFusion", "EliminateIdentity"}


def test_cut_transformers_removes_whole_statements() -> None:
    found = constructions(UTILS)
    assert [c.cls for c in found] == [
        "EliminateIdentity",
        "GemmTransposeFusion",
        "GemmTransposeFusion",
        "ConstantFolding",
        "QDQPropagationTransformer",
        "GeluFusion",
        "TransposeOptimizer",
    ]
    new, dropped = cut_transformers(UTILS, {"ConstantFolding", "GemmTransposeFusion"})
    assert dropped == ["ConstantFolding", "GemmTransposeFusion"]
    assert "make_unique<ConstantFolding>" not in new and "session_options.config_options));" not in new
    assert "make_unique<GemmTransposeFusion>" not in new and "make_unique<GeluFusion>(cpu_eps, level));" in new
    assert new.count("(") == new.count(")") and new.count("{") == new.count("}")
    with pytest.raises(BuildError, match="no transformer constructions"):
        cut_transformers("int main() {}", set())


def test_real_ort_transformers_all_have_names() -> None:
    source = cache_dir("src", "onnxruntime-1.21.0")
    if not (source / "onnxruntime/core/optimizer/graph_transformer_utils.cc").exists():
        pytest.skip("ORT 1.21.0 source is not in the cache (ortprune source fetch 1.21.0)")
    names = transformer_names(source)
    text = (source / "onnxruntime/core/optimizer/graph_transformer_utils.cc").read_text()
    training = {"BitmaskDropoutReplacement", "BiasSoftmaxDropoutFusion", "SceLossGradBiasFusion", "TritonFusion"}
    assert {c.cls for c in constructions(text)} - set(names) == training  # training-only: always kept
    assert names["ClipQuantFusion"][0] == "ClipQuantRewrite" and names["MatMulNBitsFusion"] == ("MatMulNBitsFusion",)
    new, dropped = cut_transformers(text, classes_to_drop(names, ["ConstantFolding", "GeluFusionL2"]))
    assert "ConstantFolding" not in dropped and "GeluFusion" not in dropped and "AttentionFusion" in dropped
    assert new.count("(") == new.count(")") and new.count("{") == new.count("}")


def fake_tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    source = fake_source(tmp_path / "src")
    bdir = tmp_path / "build"
    defs = bdir / "MinSizeRel/_deps/onnx-src/onnx/defs"
    defs.mkdir(parents=True)
    (defs / "operator_sets.h").write_text(opset_header("Onnx", ONNX))
    (defs / "operator_sets_ml.h").write_text(opset_header("OnnxML", ML))
    return source, bdir, defs


def test_prepare_and_prune_a_build_tree(tmp_path: Path) -> None:
    source, bdir, defs = fake_tree(tmp_path)
    before = {p: p.read_bytes() for p in source.rglob("*") if p.is_file()}
    defines, report = prepare_sources(source, bdir, ("optimizers", "schemas"), CONFIG, ("ConstantFolding",), ADDED)
    overlay = bdir / "ortprune.generated/overlay.cmake"
    assert defines == [f"CMAKE_PROJECT_onnxruntime_INCLUDE={overlay}"]
    gen_env = bdir / "ortprune.generated/onnxruntime/core/session/environment.cc"
    gen_ms = bdir / "ortprune.generated/onnxruntime/core/graph/contrib_ops/ms_opset.h"
    assert f'#include "{gen_ms}"' in gen_env.read_text()
    assert set(schema_entries(gen_ms.read_text())) == {("Microsoft", 1, "BiasGelu"), ("Microsoft", 1, "NhwcMaxPool")}
    gen_utils = bdir / "ortprune.generated/onnxruntime/core/optimizer/graph_transformer_utils.cc"
    assert [c.cls for c in constructions(gen_utils.read_text())] == ["ConstantFolding"]
    assert str(source / "onnxruntime/core/optimizer/graph_transformer_utils.cc") in overlay.read_text()

    report = prune_deps(bdir / "MinSizeRel", ("optimizers", "schemas"), CONFIG, ADDED, report)
    assert len(schema_entries((defs / "operator_sets.h").read_text())) == 4
    assert schema_entries((defs / "operator_sets_ml.h").read_text()) == []
    assert (defs / "operator_sets.h.ortprune-orig").read_text() == opset_header("Onnx", ONNX)
    summary = report.summary()
    assert summary["transformers_dropped"] == [
        "EliminateIdentity",
        "GeluFusion",
        "GemmTransposeFusion",
        "QDQPropagationTransformer",
        "TransposeOptimizer",
    ]
    json.dumps(summary)
    # the cached source is never touched
    assert before == {p: p.read_bytes() for p in source.rglob("*") if p.is_file()}
    # a second run cuts from the pristine copy and rewrites nothing (no mtime change, no recompile)
    stamps = {p: p.stat().st_mtime_ns for p in bdir.rglob("*") if p.is_file()}
    prepare_sources(source, bdir, ("optimizers", "schemas"), CONFIG, ("ConstantFolding",), ADDED)
    prune_deps(bdir / "MinSizeRel", ("optimizers", "schemas"), CONFIG, ADDED)
    assert stamps == {p: p.stat().st_mtime_ns for p in bdir.rglob("*") if p.is_file()}


def test_prune_deps_names_a_missing_header(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"operator_sets\.h: expected file is missing"):
        prune_deps(tmp_path, ("schemas",), CONFIG)


def configure(cmake: str, proj: Path, build: Path, overlay: Path) -> subprocess.CompletedProcess[str]:
    args = [cmake, "-S", str(proj), "-B", str(build), "-G", "Unix Makefiles"]
    return subprocess.run([*args, f"-DCMAKE_PROJECT_onnxruntime_INCLUDE={overlay}"], capture_output=True, text=True)


def test_overlay_swaps_the_source_in_a_real_cmake_configure(tmp_path: Path) -> None:
    cmake = shutil.which("cmake", path=str(Path(sys.executable).parent))
    if cmake is None:
        pytest.skip("cmake is not installed in this environment (pip install 'ortprune[build]')")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "a.cc").write_text("int f() { return 1; }\n")
    (proj / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(onnxruntime CXX)\nadd_library(lib STATIC a.cc)\n"
    )
    gen = tmp_path / "gen" / "a.cc"
    gen.parent.mkdir()
    gen.write_text("int f() { return 2; }\n")
    overlay = tmp_path / "overlay.cmake"
    overlay.write_text(overlay_cmake({proj / "a.cc": gen}))
    out = configure(cmake, proj, tmp_path / "b", overlay)
    assert out.returncode == 0, out.stderr
    assert "ortprune: lib:" in out.stdout
    flags = "".join(p.read_text() for p in (tmp_path / "b").rglob("build.make"))
    assert str(gen) in flags and str(proj / "a.cc") not in flags
    # an overlay for a file no target compiles stops the configure instead of building unpruned
    overlay.write_text(overlay_cmake({proj / "gone.cc": gen}))
    out = configure(cmake, proj, tmp_path / "c", overlay)
    assert out.returncode != 0 and "no target compiles" in out.stderr


def test_build_spec_keys_and_checks() -> None:
    import hashlib

    old = json.dumps(["1.21.0", "full", None, [], False, []])  # the key of builds made before --prune and #17 existed
    assert BuildSpec("1.21.0", "full").legacy_key() == f"1.21.0-full-{hashlib.sha256(old.encode()).hexdigest()[:10]}"
    cfg = "ai.onnx;17;Add\n"
    plain = BuildSpec("1.21.0", "reduced", cfg)
    pruned = BuildSpec("1.21.0", "reduced", cfg, prune=("schemas",))
    opt = BuildSpec("1.21.0", "reduced", cfg, prune=("optimizers", "schemas"), keep_transformers=("ConstantFolding",))
    other = BuildSpec("1.21.0", "reduced", cfg, prune=("schemas", "optimizers"), keep_transformers=("GeluFusionL2",))
    assert len({plain.key(), pruned.key(), opt.key(), other.key()}) == 4
    import ortprune.ortbuild.prune as prune_mod

    before, full = pruned.key(), BuildSpec("1.21.0", "full").key()
    prune_mod.TRANSFORM_VERSION += 1  # a changed transform never reuses a build the old one made
    try:  # every config-built variant compiles only its kernels (the sources lever); full has no transform
        assert pruned.key() != before and full == BuildSpec("1.21.0", "full").key()
    finally:
        prune_mod.TRANSFORM_VERSION -= 1
    assert plain.prune == ("pch", "sources")  # precompiled headers: compile time only, the same code
    assert BuildSpec("1.21.0", "reduced-max", cfg, keep_transformers=("ConstantFolding",)).prune == (
        "optimizers",
        "pch",
        "schemas",
        "sources",
    )
    with pytest.raises(BuildError, match="unknown --prune lever"):
        BuildSpec("1.21.0", "reduced", cfg, prune=("mlas",))
    with pytest.raises(BuildError, match="needs a config-built variant"):
        BuildSpec("1.21.0", "full", prune=("schemas",))
    with pytest.raises(BuildError, match="needs --keep-transformers"):
        BuildSpec("1.21.0", "reduced", cfg, prune=("optimizers",))
    with pytest.raises(BuildError, match="does nothing in a minimal build"):
        BuildSpec("1.21.0", "minimal", cfg, prune=("schemas",))
    assert BuildSpec("1.21.0", "minimal", cfg, prune=("mlas-isa=avx2",)).prune == ("mlas-isa=avx2", "sources")
    with pytest.raises(BuildError, match=r"drops the ai\.onnx\.ml operators"):
        BuildSpec("1.21.0", "reduced-max", "ai.onnx.ml;3;LabelEncoder\n", keep_transformers=("ConstantFolding",))


def test_transient_ops_of_the_constructed_transformers_keep_their_schemas(tmp_path: Path) -> None:
    """GeluFusion makes a com.microsoft Gelu that BiasGeluFusion fuses away: the scan never sees it, but
    ORT fails the load without its schema. The ops the constructed transformers' sources name stay."""
    source = fake_source(tmp_path)
    kept = transient_ops(source, ("optimizers", "schemas"), ("GeluFusionL2",))
    assert ("com.microsoft", "Gelu", 1) in kept and ("ai.onnx", "Gelu", 1) in kept
    assert ("com.microsoft", "Gelu", 1) not in transient_ops(source, ("optimizers", "schemas"), ("ConstantFolding",))
    assert ("com.microsoft", "Gelu", 1) in transient_ops(source, ("schemas",))  # every transformer is constructed
    ms = schema_entries(opset_header("Microsoft", [*MS, (1, "Gelu")]))
    keep = resolve_schemas(ms, wanted_schemas(OpConfig.parse("com.microsoft;1;BiasGelu\n"), kept))
    assert ("Microsoft", 1, "Gelu") in keep and ("Microsoft", 1, "Attention") not in keep
