"""Deploy bundles (ortprune.bundle, ortprune.deploy): made from a real model with the real official 1.21.0
library, loaded in one call at level disable, refused for other CPU features or another library."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ortprune.bundle import MANIFEST, PORTABLE_LEVEL, Bundle, BundleError, find
from ortprune.bundled import bundled
from ortprune.cli import main
from ortprune.embed import TextEmbedding
from ortprune.platform import cpu_flags
from ortprune.runtime import Session

MODEL = "all-MiniLM-L6-v2-int8"
TEXTS = ["ONNX Runtime, pruned to what the model needs.", "Hello, World!"]


@pytest.fixture(scope="module")
def official_lib() -> Path:
    """The official ONNX Runtime 1.21.0 release library (PyPI's wheel; downloaded once, cached)."""
    from ortprune.ortbuild.official import NoOfficialLibrary, official_library

    try:
        return Path(official_library("1.21.0").library)
    except NoOfficialLibrary as e:
        pytest.skip(f"the official 1.21.0 library cannot be had here: {e}")


@pytest.fixture(scope="module")
def onnx_bundle(official_lib: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ortprune.deploy import make_bundle

    try:
        bundled(MODEL).path()
    except Exception as e:  # the model package is not installed
        pytest.skip(f"{MODEL} is not installed: {e}")
    out = tmp_path_factory.mktemp("bundles") / "onnx"
    make_bundle([MODEL], official_lib, out, reference=official_lib)
    return out


def _copy(bundle: Path, dest: Path, edit: dict[str, object] | None = None) -> Path:
    """A copy of ``bundle`` (hard links: no 90 MB copy) with manifest fields replaced."""
    shutil.copytree(bundle, dest, symlinks=True, copy_function=os.link)
    if edit:
        manifest = dest / MANIFEST
        d = json.loads(manifest.read_text())
        manifest.unlink()  # a hard link: write a new file, never through to the original
        manifest.write_text(json.dumps({**d, **edit}))
    return dest


def test_made_whole(onnx_bundle: Path, official_lib: Path) -> None:
    b = Bundle.read(onnx_bundle)
    (m,) = b.models
    assert (b.level, b.cpu_features, b.load_level) == (PORTABLE_LEVEL, (), "disable")
    assert m.format == "onnx" and (onnx_bundle / m.file).stat().st_size == m.bytes
    assert m.max_abs_diff == 0.0 and (m.pooling, m.normalize) == ("mean", True)
    assert (onnx_bundle / b.library).read_bytes() == official_lib.read_bytes()
    assert os.readlink(onnx_bundle / "lib" / "libonnxruntime.so.1") == "libonnxruntime.so.1.21.0"
    assert {"tokenizer.json", "config.json"} <= set(m.tokenizer)
    assert {"ORT_DYLIB_PATH", "LD_LIBRARY_PATH", "python"} <= set(b.consumers)
    assert not [p for p in onnx_bundle.parent.iterdir() if p.name.startswith(".")]  # no work dir left


def test_text_embedding_loads_it_in_one_call(onnx_bundle: Path, official_lib: Path) -> None:
    emb = TextEmbedding(str(onnx_bundle))
    assert emb._optimization_level == "disable"
    assert Path(emb.session.lib.path).resolve() == (onnx_bundle / "lib/libonnxruntime.so.1.21.0").resolve()
    got = np.stack(list(emb.embed(TEXTS)))
    ref = np.stack(list(TextEmbedding(MODEL, lib=official_lib).embed(TEXTS)))
    assert np.abs(got - ref).max() == 0.0
    # the model directory and the same library given explicitly load it too
    again = TextEmbedding(onnx_bundle / MODEL, lib=official_lib)
    assert np.abs(np.stack(list(again.embed(TEXTS))) - ref).max() == 0.0


def test_session_loads_it_in_one_call(onnx_bundle: Path) -> None:
    with Session(onnx_bundle) as s:
        assert s.path == onnx_bundle / MODEL / "model.onnx"
        assert {"input_ids", "attention_mask"} <= set(s.input_names)
    assert find(onnx_bundle / MODEL / "model.onnx") is not None
    assert find(onnx_bundle.parent) is None


def test_refuses_another_library(onnx_bundle: Path, wheel_lib: Path) -> None:
    for load in (lambda: TextEmbedding(str(onnx_bundle), lib=wheel_lib), lambda: Session(onnx_bundle, wheel_lib)):
        with pytest.raises(BundleError, match="another library was given") as e:
            load()
        assert "\n" not in str(e.value) and "1.21.0" in str(e.value)


def test_refuses_a_replaced_library(onnx_bundle: Path, wheel_lib: Path, tmp_path: Path) -> None:
    copy = _copy(onnx_bundle, tmp_path / "b")
    target = copy / "lib/libonnxruntime.so.1.21.0"
    target.unlink()
    shutil.copy(wheel_lib, target)
    with pytest.raises(BundleError, match="its library was replaced"):
        TextEmbedding(str(copy))


def test_refuses_other_cpu_features(onnx_bundle: Path, tmp_path: Path) -> None:
    lacking = [f for f in ("avx512f", "avx512vnni", "amx_tile", "avx_vnni", "avx2") if f not in cpu_flags()]
    if not lacking:
        pytest.skip("this CPU has every feature the check knows: no bundle of another CPU can be simulated")
    copy = _copy(onnx_bundle, tmp_path / "b", {"cpu_features": [lacking[0]], "level": "all"})
    for load in (lambda: TextEmbedding(str(copy)), lambda: Session(copy / MODEL)):
        with pytest.raises(BundleError, match=f"CPU features this CPU lacks \\({lacking[0]};") as e:
            load()
        assert "\n" not in str(e.value)
    wrong_arch = _copy(onnx_bundle, tmp_path / "c", {"machine": "aarch64" if os.uname().machine != "aarch64" else "x"})
    with pytest.raises(BundleError, match="made for"):
        Session(wrong_arch)


def test_changed_model_is_refused(onnx_bundle: Path, tmp_path: Path) -> None:
    copy = _copy(onnx_bundle, tmp_path / "b")
    model = copy / MODEL / "model.onnx"
    model.unlink()  # a hard link: replace it, never write through to the original
    model.write_bytes(b"\0" * 10)
    with pytest.raises(BundleError, match="the bundle's model was changed"):
        Session(copy)


def test_damaged_manifest_is_one_error(onnx_bundle: Path, tmp_path: Path) -> None:
    copy = _copy(onnx_bundle, tmp_path / "b")
    (copy / MANIFEST).unlink()
    (copy / MANIFEST).write_text('{"ortprune_bundle": 1, "models": "x"}')
    with pytest.raises(BundleError, match="damaged bundle manifest"):
        Session(copy)
    (copy / MANIFEST).unlink()
    (copy / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="cannot read the bundle manifest"):
        TextEmbedding(str(copy / MODEL))


def test_host_ort_bundle(official_lib: Path, tmp_path: Path) -> None:
    """format ort, target CPU stated: level all, this CPU's features recorded, the .ort loads at disable."""
    from ortprune.deploy import make_bundle

    model = "paraphrase-MiniLM-L3-v2"
    try:
        bundled(model).path()
    except Exception as e:
        pytest.skip(f"{model} is not installed: {e}")
    b = make_bundle([model], official_lib, tmp_path / "b", reference=official_lib, model_format="ort",
                    target_cpu="host")  # fmt: skip
    (m,) = b.models
    assert (b.level, b.cpu_features, m.format, m.max_abs_diff) == ("all", cpu_flags(), "ort", 0.0)
    assert "ends in .ort" in b.consumers["model_file"]
    emb = TextEmbedding(str(tmp_path / "b"))
    ref = TextEmbedding(model, lib=official_lib)
    assert np.abs(np.stack(list(emb.embed(TEXTS))) - np.stack(list(ref.embed(TEXTS)))).max() == 0.0


def test_cli_refuses_without_touching(
    onnx_bundle: Path, official_lib: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in onnx_bundle.iterdir())
    for args in (
        [MODEL, "--lib", str(official_lib), "--out", str(onnx_bundle)],  # not empty
        [MODEL, "--lib", str(official_lib), "--out", str(onnx_bundle / "new"), "--format", "xyz"],
        [MODEL, "--lib", str(official_lib), "--out", str(onnx_bundle / "new"), "--target-cpu", "avx512"],
        [MODEL, "--lib", str(onnx_bundle / MANIFEST), "--out", str(onnx_bundle / "new")],
    ):
        with pytest.raises(SystemExit) as e:
            main(["bundle", *args])
        assert e.value.code == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err, err
    assert sorted(p.name for p in onnx_bundle.iterdir()) == before


def test_slim_checks_the_bundle_dir_before_building(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as e:
        main(["slim", MODEL, "--out", str(tmp_path / "out"), "--bundle", str(taken)])
    assert e.value.code == 1
    assert "not an empty directory" in capsys.readouterr().err
    assert (taken / "keep.txt").read_text() == "mine" and not (tmp_path / "out").exists()


needs_node = pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None,
                                reason="npm/node not installed: the onnxruntime-node client cannot run")  # fmt: skip


def _node_feeds(tokenizer_dir: Path) -> dict[str, np.ndarray]:
    from ortprune.tokenizer import load_tokenizer

    tok, _ = load_tokenizer(tokenizer_dir)
    enc = tok.encode_batch(["hello world", "a deploy bundle, loaded by node", ""])
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _node_on_bundle(bundle: Path, work: Path) -> float:
    """onnxruntime-node@1.21.0 with LD_LIBRARY_PATH=<bundle>/lib on the bundle's model file, against the
    same client on its own library and the source model: the max abs difference of the outputs."""
    from tests.runtime.node_client import NODE_ORT_VERSION, npm_package, run_node

    b = Bundle.read(bundle)
    (m,) = b.models
    modules = npm_package(NODE_ORT_VERSION)
    feeds = _node_feeds(bundle / m.name)
    own = run_node(modules, bundled(m.name).path(), feeds, work / "own")
    got = run_node(modules, bundle / m.file, feeds, work / "bundle", libdir=bundle / "lib")
    assert got["loaded"] == [str(b.library_path.resolve())], got["loaded"]  # the bundle's library, only it
    return max(float(np.abs(got["outputs"][k] - v).max()) for k, v in own["outputs"].items())


@needs_node
def test_onnxruntime_node_runs_the_bundle(onnx_bundle: Path, tmp_path: Path) -> None:
    assert _node_on_bundle(onnx_bundle, tmp_path) <= 1e-5


@pytest.mark.ortbuild
@needs_node
def test_onnxruntime_node_runs_a_minimal_bundle(official_lib: Path, tmp_path: Path) -> None:
    """Every cached minimal 1.21.0 build that runs the model, bundled with format ort: node loads the
    ``model.ort`` by path (the suffix tells a minimal build it is ORT format) from the bundle's lib."""
    from ortprune.cache import cache_dir
    from ortprune.deploy import make_bundle

    libs = [
        Path(json.loads(m.read_text())["library"])
        for m in sorted(cache_dir("builds").glob("1.21.0-minimal-*/manifest.json"))
    ]
    ran = []
    from ortprune.runtime._capi import c_api_pruned

    for lib in libs:
        if c_api_pruned(lib):
            continue  # built with --prune c-api: serves ortprune's runtime only (node gets ORT_NOT_IMPLEMENTED)
        try:
            make_bundle(
                [MODEL], lib, tmp_path / lib.parent.name, reference=official_lib, model_format="ort", tolerance=1e-5
            )
        except BundleError:
            continue  # a minimal build made for other models (or keep-quantized ones): it cannot run this one
        assert _node_on_bundle(tmp_path / lib.parent.name, tmp_path / f"{lib.parent.name}-node") <= 1e-5
        ran.append(lib)
    if not ran:
        pytest.skip(f"no cached minimal 1.21.0 build runs {MODEL}")
