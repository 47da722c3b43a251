"""fastembed drop-in: the calls a fastembed user writes work here too, and fail the way fastembed's fail.

* the whole dense text catalogue of the installed fastembed is carried as data, every name resolves, and
  fails offline only because its files are not here (with the repo to get them from);
* fastembed's keywords (``enable_cpu_mem_arena``, ``**kwargs``), ``_list_supported_models()``, ``.model``,
  ``PoolingType``/``ModelSource`` from ``ortprune.embed``;
* a call fastembed answers with ValueError/TypeError raises an OrtpruneError that is also one, and the
  Python API's other wrong arguments are OrtpruneErrors too (fastembed accepts some of them silently).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ortprune.bundled import bundled
from ortprune.embed import ModelSource, PoolingType, TextEmbedding
from ortprune.embed import fastembed_catalogue as catalogue
from ortprune.embed.registry import TOKENIZER_FILES, RegistryError, model_info
from ortprune.errors import ArgumentTypeError, ArgumentValueError, OrtpruneError

fastembed = pytest.importorskip("fastembed", reason="the dev extra installs fastembed; these tests compare with it")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("m")
    (d / "model.onnx").symlink_to(bundled("all-MiniLM-L6-v2-int8").path())
    tok = bundled("all-MiniLM-L6-v2-int8").tokenizer()
    for f in TOKENIZER_FILES:
        (d / f).symlink_to(tok / f)
    return d


@pytest.fixture(scope="module")
def name() -> str:
    """One custom model registered in both libraries (mean pooling, normalized), run from model_dir."""
    from fastembed.common.model_description import ModelSource as TheirSource
    from fastembed.common.model_description import PoolingType as TheirPooling

    n = f"ortprune-test/compat-{uuid.uuid4().hex[:8]}"
    fastembed.TextEmbedding.add_custom_model(n, pooling=TheirPooling.MEAN, normalization=True,
                                             sources=TheirSource(hf=n), dim=384, model_file="model.onnx")  # fmt: skip
    TextEmbedding.add_custom_model(n, pooling=PoolingType.MEAN, normalization=True, sources=ModelSource(hf=n),
                                   dim=384, model_file="model.onnx")  # fmt: skip
    return n


# -- the catalogue ------------------------------------------------------------------------------------------
def test_the_catalogue_data_is_the_installed_fastembeds() -> None:
    """The committed data equals what the generator reads from the installed fastembed (same order, every
    field, and how each class runs its models); regenerate with ``python -m ortprune.embed.fastembed_catalogue``."""
    assert catalogue.load() == catalogue.read_installed()
    assert catalogue.load()["fastembed_version"] == fastembed.__version__


def test_every_fastembed_name_resolves_with_fastembeds_description() -> None:
    theirs = fastembed.TextEmbedding.list_supported_models()
    ours = {m["model"]: m for m in TextEmbedding.list_supported_models()}
    assert len(theirs) >= 40
    for t in theirs:
        assert ours[t["model"]] == t, t["model"]
        assert TextEmbedding.get_embedding_size(t["model"].upper()) == t["dim"]
    described = {d.model: d for d in TextEmbedding._list_supported_models()}
    for d in fastembed.TextEmbedding._list_supported_models():
        o = described[d.model]
        assert (o.dim, o.model_file, o.sources.hf, o.sources.url, o.additional_files, o.tasks) == (
            d.dim, d.model_file, d.sources.hf, d.sources.url, d.additional_files, d.tasks)  # fmt: skip
        assert o.sources.deprecated_tar_struct == d.sources.deprecated_tar_struct


def test_pooling_and_normalization_follow_the_fastembed_class() -> None:
    """Spot checks of what the class decides (read from fastembed's source): CLS+L2, mean+L2, mean without
    L2, the CLIP/built-in outputs as they are, SigLIP's named output and full-length padding."""
    expect = {
        "BAAI/bge-small-en-v1.5": ("cls", True, None, 0),
        "sentence-transformers/all-MiniLM-L6-v2": ("mean", True, None, 0),
        "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2": ("mean", False, None, 0),
        "Qdrant/clip-ViT-B-32-text": ("disabled", False, None, 0),
        "google/embeddinggemma-300m": ("disabled", False, None, 1),
        "Qwen/Qwen3-Embedding-0.6B": ("last_token", True, None, 0),
        "google/siglip2-base-patch16-224": ("cls", True, "pooler_output", None),
        "jinaai/jina-embeddings-v3": ("mean", True, None, 0),
    }
    for name, (pooling, normalize, output, index) in expect.items():
        m = model_info(name)
        assert (m.pooling.value, m.normalize, m.output, m.output_index) == (pooling, normalize, output, index), name
    assert model_info("google/siglip2-base-patch16-224").pad_to_max_length
    assert model_info("jinaai/jina-embeddings-v3").tasks["retrieval.query"] == 0


@pytest.mark.parametrize("how", ["local_files_only", "HF_HUB_OFFLINE"])
def test_every_name_fails_offline_only_for_want_of_its_files(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    if how == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for t in fastembed.TextEmbedding._list_supported_models():
        with pytest.raises(OrtpruneError) as e:
            TextEmbedding(t.model, cache_dir=str(tmp_path / "c"), local_files_only=how == "local_files_only")
        message = str(e.value)
        if t.model_file.endswith(".safetensors"):  # model2vec: an embedding matrix, no ONNX graph
            assert isinstance(e.value, RegistryError) and "static embedding model" in message, message
            continue
        assert f"cannot get model {t.model!r} ({t.sources.hf})" in message, message
        assert f"{how}" in message.replace("=True", "") and t.model_file in message, message
    assert not (tmp_path / "c").exists()  # nothing written while failing


# -- fastembed's keywords and attributes ----------------------------------------------------------------------
def test_fastembed_keywords_attributes_and_imports(name: str, model_dir: Path, tmp_path: Path) -> None:
    kw: dict[str, Any] = {"cache_dir": str(tmp_path), "specific_model_path": str(model_dir)}
    theirs = fastembed.TextEmbedding(name, enable_cpu_mem_arena=False, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fastembed's own keywords (mmap: static models) pass quietly
        ours = TextEmbedding(name, enable_cpu_mem_arena=False, mmap=False, device_id=0, **kw)
    texts = ["hello world", "an arena-less session", "x " * 300]
    a, b = np.stack(list(theirs.embed(texts))), np.stack(list(ours.embed(texts)))
    assert float(np.abs(a - b).max()) <= 1e-6
    with pytest.warns(UserWarning, match="ignores the keyword argument.s. no_such_option"):
        TextEmbedding(name, no_such_option=1, **kw)  # fastembed takes **kwargs: accepted, but said
    for arena in (True, False):
        assert ours.session._cpu_mem_arena is False and TextEmbedding(name, enable_cpu_mem_arena=arena, **kw)
    assert ours.model is ours and ours.model.model_name == theirs.model.model_name == name
    assert ours.model.model_description.dim == theirs.model.model_description.dim == 384
    assert ours.model.tokenizer is ours.tokenizer
    assert ours.model_description.model_file == "model.onnx"
    assert PoolingType.MEAN is PoolingType("MEAN") is PoolingType("mean")
    assert ModelSource(hf="a/b").deprecated_tar_struct is False


# -- errors: fastembed's ValueError/TypeError, and ours ---------------------------------------------------------
def _cases(name: str, model_dir: Path, tmp: Path) -> dict[str, Callable[[Any, Any], object]]:
    kw = {"cache_dir": str(tmp), "specific_model_path": str(model_dir)}

    def mk(te: Any, **more: Any) -> Any:
        return te(name, **kw, **more)

    return {
        "unknown model": lambda te, src: te("no-such/model"),
        "empty model name": lambda te, src: te(""),
        "get_embedding_size of an unknown model": lambda te, src: te.get_embedding_size("no-such/model"),
        "add_custom_model twice": lambda te, src: te.add_custom_model(
            name.upper(), pooling="MEAN", normalization=True, sources=src(hf="x/y"), dim=3),
        "ModelSource without a source": lambda te, src: src(),
        "threads='2'": lambda te, src: mk(te, threads="2"),
        "threads=1.5": lambda te, src: mk(te, threads=1.5),
        "cache_dir=123": lambda te, src: te(name, cache_dir=123, specific_model_path=str(model_dir)),
        "specific_model_path=123": lambda te, src: te(name, specific_model_path=123),
        "providers='CPUExecutionProvider'": lambda te, src: mk(te, providers="CPUExecutionProvider"),
        "providers=[unknown]": lambda te, src: mk(te, providers=["NoSuchExecutionProvider"]),
        "providers=[1]": lambda te, src: mk(te, providers=[1]),
        "enable_cpu_mem_arena='x'": lambda te, src: mk(te, enable_cpu_mem_arena="x"),
        "embed(None)": lambda te, src: list(mk(te).embed(None)),
        "embed(123)": lambda te, src: list(mk(te).embed(123)),
        "embed([1])": lambda te, src: list(mk(te).embed([1])),
        "embed([None])": lambda te, src: list(mk(te).embed(["ok", None])),
        "batch_size=0": lambda te, src: list(mk(te).embed(["a"], batch_size=0)),
        "batch_size=-1": lambda te, src: list(mk(te).embed(["a"], batch_size=-1)),
        "batch_size='x'": lambda te, src: list(mk(te).embed(["a"], batch_size="x")),
        "batch_size=10**20": lambda te, src: list(mk(te).embed(["a"], batch_size=10**20)),
        "query_embed(None)": lambda te, src: list(mk(te).query_embed(None)),
        "passage_embed(None)": lambda te, src: list(mk(te).passage_embed(None)),
        "token_count(None)": lambda te, src: mk(te).token_count(None),
        "token_count([1])": lambda te, src: mk(te).token_count([1]),
    }  # fmt: skip


def test_fastembeds_value_and_type_errors_are_ours_too(name: str, model_dir: Path, tmp_path: Path) -> None:
    """Every call fastembed answers with ValueError or TypeError: ours raises an OrtpruneError that is the
    same kind, so ``except ValueError`` code written for fastembed keeps working."""
    from fastembed.common.model_description import ModelSource as TheirSource

    for case, call in _cases(name, model_dir, tmp_path).items():
        try:
            call(fastembed.TextEmbedding, TheirSource)
        except (ValueError, TypeError) as e:
            kind: type[Exception] = ValueError if isinstance(e, ValueError) else TypeError
        else:
            raise AssertionError(f"{case}: fastembed accepted it")
        with pytest.raises(OrtpruneError) as ours:
            call(TextEmbedding, ModelSource)
        assert isinstance(ours.value, kind), (case, kind, ours.value)
        assert "\n" not in str(ours.value) and len(str(ours.value)) < 600, (case, str(ours.value))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model_name": None}, ArgumentTypeError, "model_name must be a model name or a path, got NoneType"),
        ({"model_name": 123}, ArgumentTypeError, "model_name must be a model name or a path, got int"),
        ({"threads": -1}, ArgumentValueError, "threads must be between 0 and"),
        ({"max_length": 0}, ArgumentValueError, "max_length must be >= 1, got 0"),
        ({"max_length": "x"}, ArgumentTypeError, "max_length must be an integer, got 'x'"),
        ({"pooling": "bogus"}, ArgumentValueError, "unknown pooling 'bogus'; choose one of CLS, MEAN"),
        ({"pooling": 3}, ArgumentTypeError, "pooling must be one of CLS, MEAN, LAST_TOKEN, DISABLED, got 3"),
        ({"normalize": "yes"}, ArgumentTypeError, "normalize must be True or False, got 'yes'"),
        ({"lazy_load": "x"}, ArgumentTypeError, "lazy_load must be True or False"),
        ({"cuda": "bogus"}, ArgumentValueError, "cuda must be False, 'auto' or 'cpu'"),
        ({"cuda": True}, ArgumentValueError, "CPUExecutionProvider only"),
        ({"providers": [()]}, ArgumentTypeError, "a provider is a name or a .name, options. pair"),
        ({"device_ids": "0"}, ArgumentTypeError, "device_ids must be a list of integers"),
        ({"query_prefix": 1}, ArgumentTypeError, "query_prefix must be a str, got int"),
        ({"optimization_level": 1.5}, ArgumentTypeError, "optimization level must be one of"),  # None: the default
        ({"task_id": -1}, ArgumentValueError, "task_id must be >= 0"),
    ],
)
def test_wrong_arguments_fastembed_lets_through_are_refused(
    kwargs: dict[str, Any], error: type[Exception], message: str, name: str, model_dir: Path, tmp_path: Path
) -> None:
    args = {"model_name": name, "cache_dir": str(tmp_path), "specific_model_path": str(model_dir), **kwargs}
    with pytest.raises(error, match=message):
        TextEmbedding(**args)


def test_add_custom_model_and_embed_arguments_are_checked(name: str, model_dir: Path, tmp_path: Path) -> None:
    src = ModelSource(hf="x/y")
    for kwargs, error, message in [
        ({"pooling": "bogus"}, ArgumentValueError, "unknown pooling 'bogus'"),
        ({"dim": -1}, ArgumentValueError, "dim must be >= 1, got -1"),
        ({"dim": "384"}, ArgumentTypeError, "dim must be an integer, got '384'"),
        ({"model": None}, ArgumentTypeError, "model must be a str, got NoneType"),
        ({"normalization": "yes"}, ArgumentTypeError, "normalization must be True or False"),
        ({"sources": {"hf": 5}}, ArgumentTypeError, "sources.hf must be a str, got int"),
    ]:
        args = {"model": f"x/{uuid.uuid4().hex}", "pooling": "mean", "normalization": True, "sources": src,
                "dim": 384, **kwargs}  # fmt: skip
        with pytest.raises(error, match=message):
            TextEmbedding.add_custom_model(**args)
    with pytest.raises(ArgumentTypeError, match=r"ModelSource\.hf must be a non-empty str or None, got 5"):
        ModelSource(hf=5)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="model_name must be a str, got NoneType"):
        TextEmbedding.get_embedding_size(None)  # type: ignore[arg-type]
    emb = TextEmbedding(name, cache_dir=str(tmp_path), specific_model_path=str(model_dir))
    for call, error, message in [
        (lambda: list(emb.embed(["a"] * 3, batch_size=1, parallel=-1)), ArgumentValueError, "parallel must be"),
        (lambda: list(emb.embed(["a"] * 3, batch_size=1, parallel="2")), ArgumentTypeError, "parallel must be an"),
        (lambda: list(emb.embed(b"bytes")), ArgumentTypeError, "documents must be a str or an iterable of str"),
        (lambda: emb.token_count(["a"], batch_size=0), ArgumentValueError, "batch_size must be >= 1"),
        (lambda: emb.embed_batch("abc"), ArgumentTypeError, "texts must be a list of str, got str"),
        (lambda: emb.embed_batch(None), ArgumentTypeError, "texts must be a list of str, got NoneType"),
    ]:
        with pytest.raises(error, match=message):
            call()


# -- catalogue entries that fastembed runs its own way, run side by side on stand-in files ------------------
def _stand_in(kind: str, root: Path) -> Path:
    """A directory laid out as the catalogue entry expects, holding the bundled int8 MiniLM with the graph
    around it that the entry's class relies on: jina-v3's scalar ``task_id`` input (added to the hidden
    state), the built-in sentence embedding as a second output, SigLIP's ``pooler_output`` taken at the last
    position (pad tokens included, so the padding length shows)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(bundled("all-MiniLM-L6-v2-int8").path())
    g = model.graph
    hidden = g.output[0].name
    dim = 384
    if kind == "jina":
        g.input.append(helper.make_tensor_value_info("task_id", TensorProto.INT64, []))
        g.node.extend([helper.make_node("Cast", ["task_id"], ["task_f"], to=TensorProto.FLOAT),
                       helper.make_node("Add", [hidden, "task_f"], ["shifted"])])  # fmt: skip
        del g.output[:]
        g.output.append(helper.make_tensor_value_info("shifted", TensorProto.FLOAT, ["b", "s", dim]))
        onnx_file = "onnx/model.onnx"
    elif kind == "builtin":
        g.node.append(helper.make_node("ReduceMean", [hidden], ["pooled"], axes=[1], keepdims=0))
        g.output.append(helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["b", dim]))
        onnx_file = "onnx/model.onnx"
    else:  # siglip
        g.initializer.append(helper.make_tensor("last", TensorProto.INT64, [], [-1]))
        g.node.append(helper.make_node("Gather", [hidden, "last"], ["pooler_output"], axis=1))
        g.output.append(helper.make_tensor_value_info("pooler_output", TensorProto.FLOAT, ["b", dim]))
        onnx_file = "onnx/text_model.onnx"
    d = root / kind
    (d / "onnx").mkdir(parents=True)
    onnx.save(model, d / onnx_file)
    tok = bundled("all-MiniLM-L6-v2-int8").tokenizer()
    for f in TOKENIZER_FILES:
        (d / f).symlink_to(tok / f)
    return d


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("jina", "jinaai/jina-embeddings-v3"),
        ("builtin", "google/embeddinggemma-300m"),
        ("siglip", "google/siglip2-base-patch16-224"),
    ],
)
def test_catalogue_entries_run_as_fastembed_runs_them(kind: str, name: str, tmp_path: Path) -> None:
    d = _stand_in(kind, tmp_path)
    kw = {"cache_dir": str(tmp_path / "c"), "specific_model_path": str(d)}
    theirs, ours = fastembed.TextEmbedding(name, **kw), TextEmbedding(name, **kw)
    texts = ["short", "a somewhat longer text to pad the others against", "x " * 40]

    def same(a: Any, b: Any) -> None:
        a, b = np.stack(list(a)), np.stack(list(b))
        assert a.shape == b.shape and float(np.abs(a.astype(np.float64) - b).max()) <= 1e-5

    same(theirs.embed(texts), ours.embed(texts))
    same(theirs.query_embed(texts), ours.query_embed(texts))
    same(theirs.passage_embed(texts), ours.passage_embed(texts))
    if kind == "jina":  # the task changes the vectors, as it does in fastembed
        same(theirs.embed(texts, task_id=3), ours.embed(texts, task_id=3))
        q, p = next(ours.query_embed(texts[:1])), next(ours.passage_embed(texts[:1]))
        assert float(np.abs(q - p).max()) > 1e-3
        same(
            fastembed.TextEmbedding(name, task_id=2, **kw).embed(texts),
            TextEmbedding(name, task_id=2, **kw).embed(texts),
        )
    if kind == "siglip":  # padded to the full length: a text's vector does not depend on its batch
        alone = next(ours.embed(texts[:1]))
        np.testing.assert_allclose(alone, next(ours.embed(texts)), atol=1e-6)
