"""fastembed's text embedding API on the ctypes runtime: ``TextEmbedding(model).embed(texts)``."""

from ortprune.embed.registry import (
    MODELS,
    DenseModelDescription,
    ModelInfo,
    ModelSource,
    Pooling,
    PoolingType,
    list_models,
    model_info,
)
from ortprune.embed.text import DEFAULT_MODEL, TextEmbedding, l2_normalize, load_tokenizer, pool, resolve_model

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "DenseModelDescription",
    "ModelInfo",
    "ModelSource",
    "Pooling",
    "PoolingType",
    "TextEmbedding",
    "l2_normalize",
    "list_models",
    "load_tokenizer",
    "model_info",
    "pool",
    "resolve_model",
]
