"""The real fastembed (PyPI, installed by `make venv` from the dev extra) and ortprune.embed, run on the same
local model files and texts through the same calls, give the same vectors (<= 1e-6).

Both run the bundled models' real files: fastembed through ``add_custom_model`` + ``specific_model_path``
(and through a registry name found in a Hugging Face cache laid out on disk), ortprune the same way.
fastembed runs on the onnxruntime wheel's Python binding, ortprune on the same wheel's libonnxruntime.so.
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import fastembed
import numpy as np
import pytest
from fastembed.common.model_description import ModelSource, PoolingType

from ortprune.bundled import bundled
from ortprune.embed import TextEmbedding
from ortprune.embed.registry import TOKENIZER_FILES

TOL = 1e-6

# Varied texts: empty, one word, punctuation, numbers, accents, CJK, emoji, mixed case, and texts over
# 128 and over 512 tokens (truncated), so batches need padding and truncation.
_WORDS = ["embedding", "ONNX", "runtime", "pruned", "Qdrant", "vector", "naïve", "café", "数据", "🙂", "1.21.0"]
TEXTS = [
    "",
    "hello world",
    "flag embedding",
    "Hello, World!",
    "This is an example passage.",
    "fastembed-rs is licensed under Apache-2.0",
    "Ünïcödé ÀÉÎÕÜ façade — “quotes” and ‘apostrophes’",
    "中文句子和日本語の文、한국어 문장",
    "emoji 🙂🚀 and symbols #$%&*()[]{}",
    "   leading and trailing spaces   ",
    "UPPER lower MiXeD",
    "3.14159 2.71828 42 1e-6 0x1F",
    "word " * 150,
    "long text " * 400,
    *(" ".join(itertools.islice(itertools.cycle(_WORDS), i, i + 3 + i % 17)) for i in range(40)),
]


def _model_dir(root: Path, name: str, onnx_file: Path) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "model.onnx").symlink_to(onnx_file)
    tok = bundled("all-MiniLM-L6-v2-int8").tokenizer()
    for f in TOKENIZER_FILES:
        (d / f).symlink_to(tok / f)
    return d


# (bundled model, pooling, normalization, output_name): the int8 model has one output; the fp32 one has
# four, its token embeddings are "onnx::Shape_422" (fastembed would pool output 0 without output_name).
CASES = {
    "int8": ("all-MiniLM-L6-v2-int8", PoolingType.MEAN, True, None),
    "fp32": ("paraphrase-MiniLM-L3-v2", PoolingType.MEAN, False, "onnx::Shape_422"),
}


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path]]:
    """Each case registered in both libraries under one fresh name, with its model directory."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for case, (model, pooling, norm, output) in CASES.items():
        name = f"ortprune-test/{case}-{uuid.uuid4().hex[:8]}"
        for cls in (fastembed.TextEmbedding, TextEmbedding):
            cls.add_custom_model(name, pooling=pooling, normalization=norm, sources=ModelSource(hf=name), dim=384,
                                 model_file="model.onnx", output_name=output)  # fmt: skip
        out[case] = (name, _model_dir(root, case, bundled(model).path()))
    return out


def _both(name: str, model_dir: Path, cache: Path, **kw: Any) -> tuple[Any, TextEmbedding]:
    theirs = fastembed.TextEmbedding(model_name=name, cache_dir=str(cache), specific_model_path=str(model_dir), **kw)
    ours = TextEmbedding(model_name=name, cache_dir=str(cache), specific_model_path=str(model_dir), **kw)
    return theirs, ours


def _same(a: Any, b: Any) -> float:
    a, b = np.stack(list(a)), np.stack(list(b))
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    diff = float(np.abs(a.astype(np.float64) - b).max())
    assert diff <= TOL, diff
    return diff


@pytest.mark.parametrize("case", list(CASES))
def test_same_vectors_through_the_same_calls(case: str, registered: dict[str, tuple[str, Path]],
                                             tmp_path: Path) -> None:  # fmt: skip
    name, model_dir = registered[case]
    theirs, ours = _both(name, model_dir, tmp_path, threads=1, lazy_load=True)
    assert _same(theirs.embed(TEXTS), ours.embed(TEXTS)) <= TOL
    _same(theirs.embed(TEXTS, batch_size=7), ours.embed(TEXTS, batch_size=7))
    _same(theirs.embed(iter(TEXTS[:5])), ours.embed(iter(TEXTS[:5])))
    _same(theirs.embed("just one string"), ours.embed("just one string"))
    _same(theirs.query_embed("a query"), ours.query_embed("a query"))
    _same(theirs.query_embed(TEXTS[:6]), ours.query_embed(TEXTS[:6]))
    _same(theirs.passage_embed(TEXTS[6:12]), ours.passage_embed(TEXTS[6:12]))
    assert theirs.token_count(TEXTS) == ours.token_count(TEXTS) > 512
    assert theirs.token_count("hello world", batch_size=1) == ours.token_count("hello world", batch_size=1) == 4
    assert theirs.embedding_size == ours.embedding_size == 384
    assert fastembed.TextEmbedding.get_embedding_size(name) == TextEmbedding.get_embedding_size(name) == 384
    [entry] = [m for m in fastembed.TextEmbedding.list_supported_models() if m["model"] == name]
    assert [m for m in TextEmbedding.list_supported_models() if m["model"] == name] == [entry]


def test_parallel_workers_give_the_same_vectors(registered: dict[str, tuple[str, Path]], tmp_path: Path) -> None:
    """embed(parallel=2): two worker processes (forkserver), results in input order."""
    name, model_dir = registered["int8"]
    theirs, ours = _both(name, model_dir, tmp_path)
    texts = TEXTS * 2
    _same(theirs.embed(texts, batch_size=8), ours.embed(texts, batch_size=8, parallel=2))


def _hub_cache(root: Path, repo_dir: str, onnx_file: str) -> Path:
    """A Hugging Face hub cache holding one snapshot, laid out as huggingface_hub writes it."""
    snap = root / repo_dir / "snapshots" / "0123456789abcdef"
    snap.mkdir(parents=True)
    (snap / onnx_file).symlink_to(bundled("all-MiniLM-L6-v2-int8").path())
    tok = bundled("all-MiniLM-L6-v2-int8").tokenizer()
    for f in TOKENIZER_FILES:
        (snap / f).symlink_to(tok / f)
    (root / repo_dir / "refs").mkdir()
    (root / repo_dir / "refs" / "main").write_text("0123456789abcdef")
    return snap


def test_registry_name_found_offline_in_the_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fastembed's default model name, its files in a hub cache under the repo's real case: both find it
    offline and run its registry entry (CLS pooling, normalized) the same way. The ONNX file there is the
    bundled int8 MiniLM standing in for bge-small (same inputs and output; the point is the lookup and
    the pipeline, not bge's weights)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "no-hf-home"))
    cache = tmp_path / "cache"
    _hub_cache(cache, "models--Qdrant--bge-small-en-v1.5-onnx-Q", "model_optimized.onnx")
    theirs = fastembed.TextEmbedding("BAAI/bge-small-en-v1.5", cache_dir=str(cache), local_files_only=True)
    ours = TextEmbedding("BAAI/bge-small-en-v1.5", cache_dir=str(cache), local_files_only=True)
    assert ours.model_path.parent.name == "0123456789abcdef"
    _same(theirs.embed(TEXTS), ours.embed(TEXTS))
    # fastembed 0.8 wrote lower-case repo ids (models--qdrant--...): ortprune finds those too
    lower = tmp_path / "lower"
    _hub_cache(lower, "models--qdrant--bge-small-en-v1.5-onnx-q", "model_optimized.onnx")
    _same(ours.embed(TEXTS[:8]), TextEmbedding("BAAI/bge-small-en-v1.5", cache_dir=str(lower)).embed(TEXTS[:8]))


def test_registry_entries_match_fastembed() -> None:
    """Every model both registries list has the same repo (same case), file, dimension and dict shape."""
    theirs = {m["model"]: m for m in fastembed.TextEmbedding.list_supported_models()}
    ours = {m["model"]: m for m in TextEmbedding.list_supported_models()}
    shared = sorted(set(theirs) & set(ours))
    assert len(shared) >= 5, shared
    for name in shared:
        t, o = theirs[name], ours[name]
        assert o.keys() == t.keys(), name
        for key in ("model_file", "dim", "additional_files", "license", "size_in_GB"):
            assert o[key] == t[key], (name, key)
        assert o["sources"]["hf"] == t["sources"]["hf"], name
        assert TextEmbedding.get_embedding_size(name) == fastembed.TextEmbedding.get_embedding_size(name)
