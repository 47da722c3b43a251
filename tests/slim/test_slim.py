"""slim end to end on the bundled models, with the build stage standing in for a real ORT build (the wheel's
real library plays every variant), so scan, probe, verify, embed, size and report all run for real."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ortprune.results import BuildResult, SlimResult
from ortprune.runtime import wheel_library
from ortprune.slim import QuietUI, Stages, default_stages, slim


def fake_build(calls: list[str], keeps: dict[str, tuple[str, ...]] | None = None):  # type: ignore[no-untyped-def]
    lib = wheel_library()
    assert lib is not None

    def build_variant(source, variant, config, keep, jobs, progress):  # type: ignore[no-untyped-def]
        calls.append(variant)
        if keeps is not None:
            keeps[variant] = keep
        if progress:
            progress(1, 1, "linking")
        return BuildResult(
            "1.32.0",
            variant,
            f"k-{variant}",
            [],
            [],
            None,
            None,
            "g++",
            "cmake",
            str(source),
            "",
            str(lib),
            lib.stat().st_size,
            ["libc.so.6"],
            1.0,
        )

    return build_variant


def test_slim_bundled_models(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, int8_model: Path, fp32_model: Path
) -> None:
    calls: list[str] = []
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    stages = replace(default_stages(), build=fake_build(calls))
    out = tmp_path / "out"
    res = slim([int8_model, fp32_model], "debian:1.21.0", "all", ("reduced",), out, stages=stages, reference="full")
    assert calls == ["full", "reduced"]
    assert res.ok
    config = (out / "ops.config").read_text()
    assert "com.microsoft;1;BiasGelu,FusedMatMul,SkipLayerNormalization" in config
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] and report["probes"]["reduced"]["counts"]["missing"] == 0
    assert all(m["status"] == "ok" for m in report["verifies"]["reduced"]["models"])
    assert report["embeddings"] and all(
        e["max_abs_diff"] == 0.0 and e["min_cosine"] > 0.999999 for e in report["embeddings"].values()
    )
    md = (out / "report.md").read_text()
    assert "| Build | Size (bytes) | Size (MiB) | vs Full |" in md and "| full | " in md
    assert "com.microsoft;1;BiasGelu | optimizer |" in md
    # who loads the pruned library: asked of the library itself (the wheel's 1.32.0 plays it here)
    found = report["consumers"]["reduced"]
    assert found["library"]["version"] == "1.32.0" and found["library"]["api_level"] >= 21
    node = next(c for c in found["consumers"] if c["consumer"].startswith("onnxruntime-node"))
    assert node["works"] is True and "onnxruntime-node@1.32.0" in node["why"]
    assert "## Who can load it" in md and "| onnxruntime-node@1.32.0 (npm) | yes |" in md
    assert (out / "libonnxruntime.so").stat().st_size == wheel_library().stat().st_size  # type: ignore[union-attr]
    assert all((out / c).exists() for c in report["sizes"]["charts"])
    assert (out / "charts" / "categories.png").stat().st_size > 0
    categories = json.loads((out / "charts" / "categories.json").read_text())
    assert set(categories["bars"]) == {"full (vs reduced)", "reduced"}
    assert sum(categories["bars"]["reduced"].values()) == (out / "libonnxruntime.so").stat().st_size
    # report.json reads back into the same typed result
    assert SlimResult.from_dict(report, out).to_dict() == report
    # a second run is served from the stage cache: no probe or verify work is repeated
    cached: Stages = replace(
        stages,
        probe=lambda *a: pytest.fail("probe re-ran"),
        verify=lambda *a: pytest.fail("verify re-ran"),
        consumers=lambda *a: pytest.fail("the consumers check re-ran"),
    )
    again = slim([int8_model, fp32_model], "debian:1.21.0", "all", ("reduced",), out, stages=cached, reference="full")
    assert again.ok and again.probes == res.probes and again.verifies == res.verifies


def test_slim_pruned_variant_keeps_the_transformers_the_models_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, int8_model: Path, fp32_model: Path
) -> None:
    """reduced-pruned is built with the transformers ORT's log shows changing the graphs (here: the wheel's
    ORT plays the full build), after checking that disabling all others leaves the optimized graphs as they were."""
    calls: list[str] = []
    keeps: dict[str, tuple[str, ...]] = {}
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    stages = replace(default_stages(), build=fake_build(calls, keeps))
    res = slim(
        [int8_model, fp32_model], "debian:1.21.0", "all", ("reduced", "reduced-pruned"), tmp_path, stages=stages,
        reference="full",
    )  # fmt: skip
    assert calls == ["full", "reduced", "reduced-pruned"] and res.ok
    assert keeps["full"] == keeps["reduced"] == ()
    # the fusions that make the config's com.microsoft ops, and constant folding, are among them
    assert {"BiasGeluFusion", "SkipLayerNormFusion", "ConstantFolding"} <= set(keeps["reduced-pruned"])
    assert "AttentionFusion" not in keeps["reduced-pruned"] and len(keeps["reduced-pruned"]) < 20


def test_slim_minimal_ort_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, int8_model: Path, fp32_model: Path
) -> None:
    """The minimal variant end to end, with the wheel's real library playing both the full build (the
    converter) and the minimal one: .ort files made, scanned with types, probed and verified in ORT
    format against the .onnx on the full build, exported with tokenizers; shipped footprint ranked."""
    from ortprune.ortformat import is_ort_format, read_info

    calls: list[str] = []
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    stages = replace(default_stages(), build=fake_build(calls))
    out = tmp_path / "out"
    res = slim([int8_model, fp32_model], "debian:1.21.0", "all", ("minimal",), out, stages=stages, reference="full")
    assert calls == ["full", "minimal"]
    assert res.ok, json.dumps(res.to_dict()["verifies"], indent=1)[:2000]
    exported = sorted((out / "models").rglob("*.ort"))
    assert [p.parent.name for p in exported] == ["all-MiniLM-L6-v2-int8", "paraphrase-MiniLM-L3-v2"]
    assert all(is_ort_format(p) and (p.parent / "tokenizer.json").is_file() for p in exported)
    assert read_info(exported[0]).metadata["ortprune.keep_quantized"] == "0"
    int8 = next(c for c in res.converted if c.name == "all-MiniLM-L6-v2-int8")
    assert int8.ratio > 3.5  # ConstantFolding made the int8 weights fp32
    config = (out / "ops-ort.config").read_text()
    assert "ai.onnx;15;Shape" in config and 'Add{"inputs": {"0": ["float"]}}' in config
    counts = res.probes["minimal"].counts()
    assert counts["missing"] == 0 and counts["implemented"] >= 20
    assert [m.model for m in res.verifies["minimal"].models] == [str(p) for p in exported]
    assert all(m.status == "ok" for m in res.verifies["minimal"].models)
    assert set(res.embeds) == {"all-MiniLM-L6-v2-int8 @ minimal", "paraphrase-MiniLM-L3-v2 @ minimal"}
    shipped = {s.variant: s for s in res.shipped}
    assert set(shipped) == {"full", "minimal"}
    onnx_bytes = int8_model.stat().st_size + fp32_model.stat().st_size
    assert shipped["full"].model_bytes == onnx_bytes
    assert shipped["minimal"].model_bytes == sum(p.stat().st_size for p in exported)
    tok = sum(f.bytes for f in shipped["full"].files if f.role == "tokenizer")
    assert tok == shipped["full"].tokenizer_bytes > 400_000  # one tokenizer.json (shared) and its configs
    assert shipped["full"].total == shipped["full"].library_stripped_bytes + onnx_bytes + tok
    assert [s.total for s in res.shipped] == sorted(s.total for s in res.shipped)
    assert res.recommended == res.shipped[0].variant
    md = (out / "report.md").read_text()
    assert "## Shipped footprint" in md and f"Recommended: **{res.recommended}**" in md
    assert (out / "charts" / "shipped.png").stat().st_size > 1000
    report = json.loads((out / "report.json").read_text())
    assert SlimResult.from_dict(report, out).to_dict() == report

    # the user's other choice: quantized weights kept (1.0x), outputs at MatMul's unpacked-GEMM floor
    kept = slim([int8_model], "debian:1.21.0", "all", ("minimal",), tmp_path / "kq", keep_quantized=True, stages=stages,
               reference="full")  # fmt: skip
    assert kept.converted[0].ratio <= 1.05
    (verdict,) = kept.verifies["minimal"].models
    assert verdict.status == "differs" and 0 < verdict.outputs[0].max_abs_diff < 1e-3
    assert not kept.ok and kept.recommended == "full"


def test_slim_levers_reach_the_pruned_builds_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, int8_model: Path, fp32_model: Path
) -> None:
    """slim --extra/--prune/--toolchain: each pruned variant is built with them, the full reference stock;
    the report names them. build_variant stands in for the real builds (the wheel's library plays each)."""
    import ortprune.ortbuild as ortbuild
    from ortprune.slim import Levers

    lib = wheel_library()
    assert lib is not None
    seen: dict[str, dict[str, object]] = {}

    def build_variant(source, variant, config, **kw):  # type: ignore[no-untyped-def]
        seen[variant] = {k: kw[k] for k in ("extra_flags", "prune", "toolchain", "keep_transformers")}
        return BuildResult("1.32.0", variant, f"k-{variant}", [], list(kw["extra_flags"]), None, None, "c++",
                           "cmake", str(source), "", str(lib), lib.stat().st_size, ["libc.so.6"], 1.0,
                           prune=[*(("schemas", "optimizers") if variant == "reduced-max" else ()), *kw["prune"]],
                           toolchain_name=kw["toolchain"])  # fmt: skip

    monkeypatch.setattr(ortbuild, "build_variant", build_variant)
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    levers = Levers(("--enable_lto", "--disable_types=float8"), ("mlas-isa=avx2",), "clang")
    res = slim([int8_model, fp32_model], "debian:1.21.0", "all", ("reduced-max",), tmp_path / "out", levers=levers,
               reference="full")  # fmt: skip
    assert res.ok
    assert seen["full"] == {"extra_flags": (), "prune": (), "toolchain": "gcc", "keep_transformers": ()}
    assert seen["reduced-max"]["extra_flags"] == levers.extra and seen["reduced-max"]["prune"] == levers.prune
    assert seen["reduced-max"]["toolchain"] == "clang" and "ConstantFolding" in seen["reduced-max"]["keep_transformers"]  # type: ignore[operator]
    md = (tmp_path / "out" / "report.md").read_text()
    assert (
        "- `reduced-max` built with `--extra=--enable_lto` `--extra=--disable_types=float8` "
        "`--prune mlas-isa=avx2` `--toolchain clang`" in md
    )


@pytest.mark.parametrize(
    ("levers", "message"),
    [
        ((("--bogus",), (), "gcc"), "unsupported extra flag"),
        (((), ("mlas-isa=sse9",), "gcc"), "mlas-isa"),
        (((), (), "tcc"), "tcc"),
        (((), ("schemas",), "gcc"), "needs a config-built variant"),
    ],
)
def test_slim_bad_levers_stop_before_any_build(
    tmp_path: Path, int8_model: Path, levers: tuple[tuple[str, ...], tuple[str, ...], str], message: str
) -> None:
    from ortprune.errors import OrtpruneError
    from ortprune.slim import Levers

    calls: list[str] = []
    stages = replace(default_stages(), build=fake_build(calls))
    variants = ("no-contrib",) if levers[1] == ("schemas",) else ("reduced",)
    with pytest.raises(OrtpruneError, match=message):
        slim([int8_model], "debian:1.21.0", "all", variants, tmp_path / "out", stages=stages, levers=Levers(*levers))
    assert calls == [] and not (tmp_path / "out" / "report.md").exists()


class _Notes:
    """A StageUI that keeps the notes slim gives."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def stage(self, name: str, detail: str = ""):  # type: ignore[no-untyped-def]
        import contextlib

        return contextlib.nullcontext()

    def build_progress(self, label: str):  # type: ignore[no-untyped-def]
        import contextlib

        return contextlib.nullcontext(lambda i, n, w: None)

    def note(self, text: str) -> None:
        self.notes.append(text)


def official_stand_in(seen: list[str]):  # type: ignore[no-untyped-def]
    """The reference stage with the wheel's real library playing the official release library."""
    import hashlib

    from ortprune.ortbuild.official import OfficialLibrary, as_build

    lib = wheel_library()
    assert lib is not None

    def reference(ort: str, target: str | None) -> BuildResult:
        seen.append(ort)
        assert target is None
        digest = hashlib.sha256(lib.read_bytes()).hexdigest()
        return as_build(OfficialLibrary("1.32.0", "linux-x86_64", "onnxruntime-1.32.0.whl", "0" * 64, str(lib),
                                        digest, lib.stat().st_size))  # fmt: skip

    return reference


def test_slim_official_reference_builds_only_the_pruned_library(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, int8_model: Path, fp32_model: Path
) -> None:
    """The default reference is the official release library: no full build; scan, verify and the size table
    use it (first row, 'vs official release'); --variants full,... adds the MinSizeRel full build as a row."""
    calls: list[str] = []
    asked: list[str] = []
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    stages = replace(default_stages(), build=fake_build(calls), reference=official_stand_in(asked))
    out = tmp_path / "out"
    res = slim([int8_model, fp32_model], "debian:1.21.0", "all", ("reduced",), out, stages=stages)
    assert calls == ["reduced"] and asked == ["debian:1.21.0"] and res.ok
    assert res.reference == "official" and list(res.builds) == ["official", "reduced"]
    report = json.loads((out / "report.json").read_text())
    assert report["reference"] == "official" and SlimResult.from_dict(report, out).to_dict() == report
    assert [r["name"] for r in report["sizes"]["table"]] == ["official release", "reduced"]
    md = (out / "report.md").read_text()
    assert "| Build | Size (bytes) | Size (MiB) | vs official release |" in md
    assert "verified against and measured from the official ONNX Runtime 1.32.0 release library" in md
    assert "| official ms |" in md
    assert res.exported == "reduced"

    calls.clear()
    both = slim([int8_model, fp32_model], "debian:1.21.0", "all", ("full", "reduced"), tmp_path / "o2", stages=stages)
    assert calls == ["full", "reduced"] and both.ok and list(both.builds) == ["official", "full", "reduced"]
    assert both.exported == "reduced" and set(both.verifies) == {"full", "reduced"}


def test_slim_without_an_official_library_builds_full_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, int8_model: Path
) -> None:
    from ortprune.ortbuild.official import NoOfficialLibrary

    def none(ort: str, target: str | None) -> BuildResult:
        raise NoOfficialLibrary("no official onnxruntime==1.21.0 wheel for linux-x86_64 could be downloaded (offline)")

    calls: list[str] = []
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    ui = _Notes()
    stages = replace(default_stages(), build=fake_build(calls), reference=none)
    res = slim([int8_model], "debian:1.21.0", "all", ("reduced",), tmp_path / "out", ui=ui, stages=stages)
    assert calls == ["full", "reduced"] and res.reference == "full" and res.ok
    assert any("the full MinSizeRel build is the reference instead" in n for n in ui.notes)


@pytest.mark.parametrize(
    ("variants", "reference", "message"),
    [
        (("full", "reduced"), "full", "'full' is the reference already"),
        (("full",), "official", "names no pruned variant"),
        (("reduced",), "nightly", "--reference must be one of official, full"),
    ],
)
def test_slim_reference_choices_checked_before_any_build(
    tmp_path: Path, int8_model: Path, variants: tuple[str, ...], reference: str, message: str
) -> None:
    from ortprune.errors import OrtpruneError

    calls: list[str] = []
    stages = replace(default_stages(), build=fake_build(calls), reference=lambda ort, target: pytest.fail("fetched"))
    with pytest.raises(OrtpruneError, match=message):
        slim([int8_model], "debian:1.21.0", "all", variants, tmp_path / "out", stages=stages, reference=reference)
    assert calls == [] and not (tmp_path / "out").exists()


def test_slim_for_another_target_builds_every_variant_for_it_and_compares_the_configs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, int8_model: Path
) -> None:
    """slim --target linux-aarch64: each build (the reference too) is for the target; the user is told whether
    this machine's config would differ; the in-process checks (consumers, embeddings) are left out. The
    wheel's library plays every build and this machine's official library (both loadable here)."""
    import types

    import ortprune.ortbuild as ortbuild
    import ortprune.ortbuild.official as official
    import ortprune.slim as slim_module
    from ortprune.platform import host_target
    from ortprune.results import ProbeReport

    if host_target() == "linux-aarch64":
        pytest.skip("this machine is aarch64: --target linux-aarch64 is a native build here")
    lib = wheel_library()
    assert lib is not None
    targets: dict[str, object] = {}

    def build_variant(source, variant, config, **kw):  # type: ignore[no-untyped-def]
        targets[variant] = kw["target"]
        return BuildResult("1.32.0", variant, f"k-{variant}", [], [], None, None, "c++", "cmake", str(source), "",
                           str(lib), lib.stat().st_size, ["libc.so.6"], 1.0)  # fmt: skip

    monkeypatch.setattr(ortbuild, "build_variant", build_variant)
    monkeypatch.setattr(official, "official_library", lambda version, target: types.SimpleNamespace(library=str(lib)))
    asked: list[str | None] = []

    def reference(ort: str, target: str | None) -> BuildResult:  # the target's official release library
        asked.append(target)
        return official_stand_in([])(ort, None)

    monkeypatch.setattr(slim_module, "_official", reference)
    # probing 26 ops natively is what test_slim_bundled_models checks; here it would only cost time
    monkeypatch.setattr(slim_module, "_probe", lambda lib, *a: ProbeReport(library=lib, library_version="1.32.0"))
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    notes: list[str] = []

    class UI(QuietUI):
        def note(self, text: str) -> None:
            notes.append(text)

    res = slim([int8_model], "debian:1.21.0", "all", ("reduced",), tmp_path / "out", ui=UI(), target="linux-aarch64")
    assert targets == {"reduced": "linux-aarch64"} and asked == ["linux-aarch64"]
    assert res.ok and res.embeds == {} and res.consumers == {}
    assert f"the configs for linux-aarch64 and {host_target()} are the same (26 ops)" in notes
    assert any(n.startswith("consumers not checked") for n in notes)


@pytest.mark.parametrize(
    ("target", "variants", "message"),
    [("linux-sparc", ("reduced",), "unknown target 'linux-sparc'"), ("linux-aarch64", ("minimal",), "minimal")],
)
def test_slim_bad_target_stops_before_any_build(
    tmp_path: Path, int8_model: Path, target: str, variants: tuple[str, ...], message: str
) -> None:
    from ortprune.errors import OrtpruneError
    from ortprune.platform import host_target

    if host_target() == target:
        pytest.skip("a native build here")
    calls: list[str] = []
    stages = replace(default_stages(), build=fake_build(calls))
    with pytest.raises(OrtpruneError, match=message):
        slim([int8_model], "debian:1.21.0", "all", variants, tmp_path / "out", stages=stages, target=target)
    assert calls == [] and not (tmp_path / "out" / "report.md").exists()
