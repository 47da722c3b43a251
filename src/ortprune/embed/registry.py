"""Text embedding models as data, like fastembed's registry: where the files are and how to pool them.

Names, repos and files follow fastembed (Python, PyPI fastembed 0.9.1) where it lists the model, else
fastembed-rs 6.0.0; Hugging Face repo ids are written in their real case (fastembed writes some in lower
case; the hub cache lookup in :mod:`ortprune.embed.text` ignores case). Normalization follows each model's
sentence-transformers definition (fastembed Python does the same; fastembed-rs L2-normalizes every model,
which differs for the paraphrase-multilingual entries).

Query/passage prefixes: fastembed (0.9.1, read from its source) applies none for these models -- its
``query_embed`` is ``embed`` -- so none are set here and ``query_embed`` gives fastembed's vectors. A
model that defines them (``add_custom_model(..., query_prefix="query: ")``) gets them prepended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ortprune.bundled import BUNDLED
from ortprune.errors import OrtpruneError
from ortprune.tokenizer import TOKENIZER_FILES  # noqa: F401  (also imported from here)


class Pooling(str, Enum):
    CLS = "cls"  # first token of the last hidden state
    MEAN = "mean"  # mean over tokens, weighted by the attention mask
    LAST_TOKEN = "last_token"  # the last unmasked token
    DISABLED = "disabled"  # the output is already one vector per text

    @classmethod
    def _missing_(cls, value: object) -> Pooling | None:
        # fastembed's PoolingType values are upper case ("CLS", "MEAN", ...)
        return cls.__members__.get(str(value).upper()) if isinstance(value, str) else None


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
    license: str = ""
    size_in_GB: float = 0.0
    url: str | None = None  # fastembed's tar.gz source, for its cache layout
    deprecated_tar_struct: bool = False
    query_prefix: str = ""
    passage_prefix: str = ""
    tasks: dict[str, Any] = field(default_factory=dict)

    def as_fastembed_dict(self) -> dict[str, Any]:
        """This entry in the shape of fastembed's ``list_supported_models()`` (``asdict`` of its
        DenseModelDescription)."""
        return {
            "model": self.name,
            "sources": {"hf": self.hf, "url": self.url, "_deprecated_tar_struct": self.deprecated_tar_struct},
            "model_file": self.onnx_file,
            "description": self.description,
            "license": self.license,
            "size_in_GB": self.size_in_GB,
            "additional_files": list(self.additional_files),
            "dim": self.dim,
            "tasks": dict(self.tasks),
        }


#: Tokenizer files fastembed downloads beside the model (tokenizer.json is required, the rest optional).

_EN = "Text embeddings, Unimodal (text), English, 512 input tokens truncation"
_HUB: tuple[ModelInfo, ...] = (
    ModelInfo("BAAI/bge-small-en-v1.5", 384, Pooling.CLS, True, "model_optimized.onnx",
              hf="Qdrant/bge-small-en-v1.5-onnx-Q", license="mit", size_in_GB=0.067,
              description=f"{_EN}, Prefixes for queries/documents: not so necessary, 2023 year."),
    ModelInfo("BAAI/bge-base-en-v1.5", 768, Pooling.CLS, True, "model_optimized.onnx",
              hf="Qdrant/bge-base-en-v1.5-onnx-Q", license="mit", size_in_GB=0.21,
              deprecated_tar_struct=True,
              description=f"{_EN}, Prefixes for queries/documents: not so necessary, 2023 year."),
    ModelInfo("BAAI/bge-large-en-v1.5", 1024, Pooling.CLS, True, hf="Qdrant/bge-large-en-v1.5-onnx",
              license="mit", size_in_GB=1.20,
              description=f"{_EN}, Prefixes for queries/documents: not so necessary, 2023 year."),
    ModelInfo("Xenova/bge-small-en-v1.5", 384, Pooling.CLS, True, "onnx/model.onnx", hf="Xenova/bge-small-en-v1.5",
              license="mit", description="fastembed-rs BGESmallENV15 (plain export)"),
    ModelInfo("sentence-transformers/all-MiniLM-L6-v2", 384, Pooling.MEAN, True, hf="Qdrant/all-MiniLM-L6-v2-onnx",
              license="apache-2.0", size_in_GB=0.09, deprecated_tar_struct=True,
              description="Text embeddings, Unimodal (text), English, 256 input tokens truncation, "
                          "Prefixes for queries/documents: not necessary, 2021 year."),
    ModelInfo("Xenova/all-MiniLM-L6-v2-quantized", 384, Pooling.MEAN, True, "onnx/model_quantized.onnx",
              hf="Xenova/all-MiniLM-L6-v2", license="apache-2.0",
              description="fastembed-rs AllMiniLML6V2Q (dynamic int8)"),
    ModelInfo("sentence-transformers/all-MiniLM-L12-v2", 384, Pooling.MEAN, True, "onnx/model.onnx",
              hf="Xenova/all-MiniLM-L12-v2", license="apache-2.0", description="fastembed-rs AllMiniLML12V2"),
    ModelInfo("Xenova/all-MiniLM-L12-v2-quantized", 384, Pooling.MEAN, True, "onnx/model_quantized.onnx",
              hf="Xenova/all-MiniLM-L12-v2", license="apache-2.0",
              description="fastembed-rs AllMiniLML12V2Q (dynamic int8)"),
    ModelInfo("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", 384, Pooling.MEAN, False,
              "model_optimized.onnx", hf="Qdrant/paraphrase-multilingual-MiniLM-L12-v2-onnx-Q",
              license="apache-2.0", size_in_GB=0.22,
              description="Text embeddings, Unimodal (text), Multilingual (~50 languages), 128 input tokens "
                          "truncation, Prefixes for queries/documents: not necessary, 2019 year."),
    ModelInfo("Xenova/paraphrase-multilingual-MiniLM-L12-v2", 384, Pooling.MEAN, True, "onnx/model.onnx",
              hf="Xenova/paraphrase-multilingual-MiniLM-L12-v2", license="apache-2.0",
              description="fastembed-rs ParaphraseMLMiniLML12V2 (L2-normalized there)"),
)  # fmt: skip

# The bundled PyPI models (`ortprune[models]`); sentence-transformers' all-MiniLM-L6-v2 ends in a
# Normalize module, paraphrase-MiniLM-L3-v2 does not.
_BUNDLED_NORMALIZE = {"all-MiniLM-L6-v2-int8": True, "paraphrase-MiniLM-L3-v2": False}
_BUNDLED: tuple[ModelInfo, ...] = tuple(
    ModelInfo(m.name, m.dim, Pooling(m.pooling), _BUNDLED_NORMALIZE.get(m.name, True), onnx_file=m.onnx_file,
              bundled=m.name, description=m.description)
    for m in BUNDLED
)  # fmt: skip

MODELS: tuple[ModelInfo, ...] = _HUB + _BUNDLED
#: Models added at run time with :func:`add_model` (fastembed's ``TextEmbedding.add_custom_model``).
_CUSTOM: list[ModelInfo] = []


class RegistryError(OrtpruneError, ValueError):
    """A model name the registry does not know (also a ValueError, which is what fastembed raises)."""


def list_models() -> list[ModelInfo]:
    return [*MODELS, *_CUSTOM]


def model_info(name: str) -> ModelInfo:
    """The registry entry called ``name`` (case-insensitive, as fastembed matches names)."""
    for m in list_models():
        if m.name.lower() == name.lower():
            return m
    raise RegistryError(
        f"unknown model {name!r}: pass a directory with an .onnx file and tokenizer.json, or one of "
        + ", ".join(m.name for m in list_models())
    )


def add_model(info: ModelInfo) -> ModelInfo:
    """Register ``info`` for this process; a name already known (any case) is an error, as in fastembed."""
    if any(m.name.lower() == info.name.lower() for m in list_models()):
        raise RegistryError(f"model {info.name!r} is already registered; add it under another name")
    if info.hf is None and info.bundled is None and info.url is None:
        raise RegistryError(f"model {info.name!r} needs a source: a Hugging Face repo (sources.hf) or a url")
    _CUSTOM.append(info)
    return info


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
