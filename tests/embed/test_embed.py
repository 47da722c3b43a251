"""TextEmbedding on the real bundled models, against an independent onnxruntime + tokenizers pipeline."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from tokenizers import Tokenizer

from ortprune.embed import MODELS, Pooling, TextEmbedding, list_models, model_info
from ortprune.embed.registry import TOKENIZER_FILES
from ortprune.errors import ModelError, OrtpruneError, RuntimeLoadError
from ortprune.runtime import wheel_library

DOCS = [
    "Hello, World!",
    "This is an example passage.",
    "fastembed-rs is licensed under Apache-2.0",
    "Some other short text here blah blah blah",
    "",
    "A much longer sentence, so that the batch needs padding: the tokens of the short ones are masked out.",
]


@pytest.fixture(autouse=True)
def empty_model_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test here sees a model some earlier run left in fastembed's or the hub's cache."""
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", str(tmp_path / "fastembed_cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)


def reference_embeddings(
    model: Path, tokenizer_dir: Path, texts: list[str], output: int, normalize: bool
) -> np.ndarray:
    """Written independently of ortprune.embed: HF tokenizer, onnxruntime, numpy mean pooling."""
    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    tok.enable_truncation(512)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    feeds = {k: v for k, v in feeds.items() if k in {i.name for i in sess.get_inputs()}}
    hidden = sess.run(None, feeds)[output].astype(np.float64)
    m = mask[..., None].astype(np.float64)
    vec = (hidden * m).sum(1) / m.sum(1)
    if normalize:
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    return vec


def test_int8_model_matches_reference(int8_model: Path, tokenizer_dir: Path) -> None:
    emb = TextEmbedding("all-MiniLM-L6-v2-int8")
    got = np.stack(list(emb.embed(DOCS)))
    assert got.dtype == np.float32 and got.shape == (len(DOCS), 384) and emb.dim == 384
    np.testing.assert_allclose(got, reference_embeddings(int8_model, tokenizer_dir, DOCS, 0, True), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_fp32_model_matches_reference_and_its_pooled_output(fp32_model: Path, tokenizer_dir: Path) -> None:
    emb = TextEmbedding("paraphrase-MiniLM-L3-v2")
    assert emb.output == "onnx::Shape_422"  # token embeddings: the first float output of rank 3
    assert not emb.info.normalize  # its sentence-transformers pipeline has no Normalize module
    got = np.stack(list(emb.embed(DOCS)))
    np.testing.assert_allclose(got, reference_embeddings(fp32_model, tokenizer_dir, DOCS, 2, False), atol=1e-5)
    # the model also exports its own mean-pooled sentence embedding ("461"): ours equals it
    pooled = TextEmbedding("paraphrase-MiniLM-L3-v2", pooling="mean")
    pooled.info = dataclasses.replace(pooled.info, output="461")
    pooled.output = "461"
    np.testing.assert_allclose(got, pooled.embed_batch(DOCS), atol=1e-5)


def test_agrees_with_fastembed_published_values() -> None:
    """fastembed's own parity fixtures for all-MiniLM-L6-v2 (fp32 weights; ours are int8, hence 1e-2/2e-2)."""
    emb = TextEmbedding("all-MiniLM-L6-v2-int8")
    first = next(iter(emb.embed(["hello world", "flag embedding"])))
    np.testing.assert_allclose(first[:5], [-0.034478, 0.03102, 0.00673, 0.02611, -0.039362], atol=1e-2)
    sums = [float(v.sum()) for v in emb.embed(DOCS[:4])]  # fastembed-rs tests/text-embeddings.rs
    np.testing.assert_allclose(sums, [0.59605527, 0.36542925, -0.16450031, -0.40903988], atol=2e-2)


def test_embed_is_lazy_and_batched() -> None:
    emb = TextEmbedding("all-MiniLM-L6-v2-int8", threads=1)
    calls: list[int] = []
    run = emb.session.run

    def counting_run(feeds, outputs=None):  # type: ignore[no-untyped-def]
        calls.append(len(feeds["input_ids"]))
        return run(feeds, outputs)

    emb.session.run = counting_run  # type: ignore[method-assign]
    gen = emb.embed(iter(DOCS), batch_size=4)
    assert calls == []
    first = next(gen)
    assert calls == [4]
    rest = list(gen)
    assert calls == [4, 2] and len(rest) == len(DOCS) - 1
    whole = emb.embed_batch(DOCS)
    np.testing.assert_allclose(np.stack([first, *rest]), whole, atol=1e-5)  # padding length does not matter
    assert list(emb.embed([])) == []
    assert len(list(emb.embed("one string is one document"))) == 1
    with pytest.raises(OrtpruneError, match="batch_size must be >= 1"):
        next(emb.embed(DOCS, batch_size=0))


def test_truncation_at_512_tokens() -> None:
    emb = TextEmbedding("all-MiniLM-L6-v2-int8")
    assert emb.max_length == 512  # min(512, tokenizer_config.model_max_length=512)
    long = "word " * 2000
    assert len(emb.tokenizer.encode(long).ids) == 512
    assert emb.embed_batch([long, "short"]).shape == (2, 384)
    assert TextEmbedding("all-MiniLM-L6-v2-int8", max_length=16).tokenizer.encode(long).ids.__len__() == 16


def without_token_type_ids(model: Path, out: Path) -> Path:
    """The same model with token_type_ids computed inside the graph (zeros) instead of being an input."""
    m = onnx.load(str(model))
    keep = [i for i in m.graph.input if i.name != "token_type_ids"]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    zero = helper.make_tensor("ortprune_zero", TensorProto.INT64, [], [0])
    m.graph.initializer.append(zero)
    m.graph.node.insert(0, helper.make_node("Mul", ["input_ids", "ortprune_zero"], ["token_type_ids"]))
    onnx.save(m, str(out))
    return out


def model_dir(tmp: Path, model: Path, tokenizer_dir: Path, name: str = "model.onnx") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    if model.parent != tmp:
        (tmp / name).symlink_to(model)
    for f in (*TOKENIZER_FILES, "modules.json"):
        if (tokenizer_dir / f).exists():
            (tmp / f).symlink_to(tokenizer_dir / f)
    shutil.copytree(tokenizer_dir / "1_Pooling", tmp / "1_Pooling")
    return tmp


def test_token_type_ids_only_when_the_model_has_it(int8_model: Path, tokenizer_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "no-tti"
    d.mkdir()
    without_token_type_ids(int8_model, d / "model.onnx")
    emb = TextEmbedding(model_dir(d, d / "model.onnx", tokenizer_dir))
    assert emb.session.input_names == ["input_ids", "attention_mask"]  # Session.run rejects unknown inputs
    np.testing.assert_allclose(
        emb.embed_batch(DOCS), TextEmbedding("all-MiniLM-L6-v2-int8").embed_batch(DOCS), atol=1e-6
    )


def test_local_directory(int8_model: Path, tokenizer_dir: Path, tmp_path: Path) -> None:
    d = model_dir(tmp_path / "local", int8_model, tokenizer_dir)
    emb = TextEmbedding(d)
    assert emb.info.pooling is Pooling.MEAN and emb.info.normalize  # from 1_Pooling/ and modules.json
    np.testing.assert_allclose(
        emb.embed_batch(DOCS), TextEmbedding("all-MiniLM-L6-v2-int8").embed_batch(DOCS), atol=1e-6
    )
    # the .onnx file itself, tokenizer beside it
    assert TextEmbedding(d / "model.onnx").embed_batch(["x"]).shape == (1, 384)
    # sentence-transformers config says CLS: we follow it
    cfg = d / "1_Pooling" / "config.json"
    cfg.write_text(cfg.read_text().replace('"pooling_mode_cls_token": false', '"pooling_mode_cls_token": true'))
    cls = TextEmbedding(d)
    assert cls.info.pooling is Pooling.CLS
    hidden = cls.session.run(_feeds(cls, ["hello"]))["last_hidden_state"][:, 0]
    np.testing.assert_allclose(cls.embed_batch(["hello"]), hidden / np.linalg.norm(hidden), atol=1e-6)
    assert not TextEmbedding(d, normalize=False).info.normalize


def _feeds(emb: TextEmbedding, texts: list[str]) -> dict[str, np.ndarray]:
    enc = emb.tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def test_local_directory_errors(int8_model: Path, tokenizer_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(OrtpruneError, match="no such file or directory"):
        TextEmbedding(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OrtpruneError, match=r"empty: no \.onnx file"):
        TextEmbedding(empty)
    no_tok = tmp_path / "no-tok"
    no_tok.mkdir()
    (no_tok / "model.onnx").symlink_to(int8_model)
    with pytest.raises(OrtpruneError, match=r"no-tok: no tokenizer\.json"):
        TextEmbedding(no_tok)
    two = model_dir(tmp_path / "two", int8_model, tokenizer_dir, "a.onnx")
    (two / "b.onnx").symlink_to(int8_model)
    with pytest.raises(OrtpruneError, match=r"several \.onnx files \(a.onnx, b.onnx\)"):
        TextEmbedding(two)
    not_text = tmp_path / "not-text"
    not_text.mkdir()
    (not_text / "model.onnx").write_bytes(
        onnx.helper.make_model(
            onnx.helper.make_graph(
                [helper.make_node("Identity", ["x"], ["y"])],
                "g",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
            )
        ).SerializeToString()
    )
    for f in TOKENIZER_FILES:
        (not_text / f).symlink_to(tokenizer_dir / f)
    with pytest.raises(ModelError, match="not a text embedding model: no input 'input_ids'"):
        TextEmbedding(not_text)


def test_the_loading_thread_leaves_nothing(int8_model: Path, tokenizer_dir: Path, tmp_path: Path) -> None:
    """ORT loads the model in a thread while the tokenizer is read: a tokenizer error is the one raised and
    the session the thread made is released; a model error raised in the thread reaches the caller."""
    from ortprune.runtime import load_library

    lib = load_library(wheel_library())
    before = lib.live_handles().get("session", 0)
    d = tmp_path / "m"
    d.mkdir()
    (d / "model.onnx").symlink_to(int8_model)
    with pytest.raises(OrtpruneError, match=r"m: no tokenizer\.json"):
        TextEmbedding(d, lib=lib)
    assert lib.live_handles().get("session", 0) == before
    bad = model_dir(tmp_path / "bad", int8_model, tokenizer_dir, "model.onnx")
    (bad / "model.onnx").unlink()
    (bad / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(OrtpruneError, match=r"bad/model\.onnx: ONNX Runtime .* could not load the model"):
        TextEmbedding(bad, lib=lib)
    assert lib.live_handles().get("session", 0) == before


def test_registry() -> None:
    names = [m.name for m in MODELS]
    assert len(names) == len(set(names))
    for required in [
        "BAAI/bge-small-en-v1.5",
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L12-v2",
        "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
        "all-MiniLM-L6-v2-int8",
        "paraphrase-MiniLM-L3-v2",
    ]:
        assert required in names
    bge = model_info("baai/BGE-small-en-v1.5")
    assert (bge.hf, bge.onnx_file, bge.dim, bge.pooling, bge.normalize) == (
        "Qdrant/bge-small-en-v1.5-onnx-Q",
        "model_optimized.onnx",
        384,
        Pooling.CLS,
        True,
    )
    assert model_info("sentence-transformers/all-MiniLM-L6-v2").pooling is Pooling.MEAN
    with pytest.raises(dataclasses.FrozenInstanceError):
        bge.dim = 1  # type: ignore[misc]
    assert list_models() == list(MODELS)
    assert [d["model"] for d in TextEmbedding.list_supported_models()] == names
    for m in MODELS:
        assert (m.hf is None) != (m.bundled is None), m.name


def test_unknown_model_name() -> None:
    with pytest.raises(OrtpruneError, match=r"unknown model 'no-such-model': pass a directory .* BAAI/bge-small"):
        TextEmbedding("no-such-model")


def test_hub_model_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(OrtpruneError) as e:
        TextEmbedding("BAAI/bge-small-en-v1.5")
    msg = str(e.value)
    assert "HF_HUB_OFFLINE is set and it is not in the Hugging Face cache" in msg
    assert "https://huggingface.co/Qdrant/bge-small-en-v1.5-onnx-Q" in msg and "specific_model_path=" in msg


def test_hub_model_without_huggingface_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", types.ModuleType("huggingface_hub"))  # no snapshot_download
    with pytest.raises(
        OrtpruneError,
        match=r"huggingface_hub is not installed: pip install 'ortprune\[hub\]', or "
        r"download model_optimized.onnx, tokenizer.json",
    ):
        TextEmbedding("BAAI/bge-small-en-v1.5")


def test_lib_parameter(tmp_path: Path) -> None:
    real = wheel_library()
    assert real is not None
    assert TextEmbedding("all-MiniLM-L6-v2-int8", lib=real).session.lib.path == str(real)
    with pytest.raises(RuntimeLoadError, match="no such file"):
        TextEmbedding("all-MiniLM-L6-v2-int8", lib=tmp_path / "libonnxruntime.so")


def test_import_leaves_numpy_to_the_constructor(wheel_lib: Path) -> None:
    """Cold start: ``import ortprune.embed`` does not import numpy (its import is as long as ORT's load,
    so the constructor runs them side by side); constructing and embedding then works as usual."""
    script = (
        "import sys\n"
        "import ortprune.embed, ortprune.runtime\n"
        "assert 'numpy' not in sys.modules, 'numpy imported by ortprune.embed'\n"
        "assert 'tokenizers' not in sys.modules, 'tokenizers imported by ortprune.embed'\n"
        f"e = ortprune.embed.TextEmbedding('all-MiniLM-L6-v2-int8', lib={str(wheel_lib)!r}, threads=1)\n"
        "v = e.embed_batch(['hello world'])\n"
        "print(type(v).__module__, v.shape, v.dtype)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["numpy", "(1,", "384)", "float32"]
