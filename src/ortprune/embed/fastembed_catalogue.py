"""fastembed's dense text model catalogue, carried as data: ``ortprune/data/fastembed-text-models.json``.

Each entry is fastembed's own description of the model (``asdict`` of its ``DenseModelDescription``:
name, dim, sources, model file, additional files, description, license, size, tasks) plus how fastembed
runs it, which fastembed decides by the class that lists the model (:data:`CLASSES`): the pooling,
whether vectors are L2-normalized, which output is pooled, and whether batches are padded to the
model's full length. ``tests/embed/test_fastembed_compat.py`` compares the file with the installed
fastembed's catalogue.

Regenerate after a fastembed upgrade (fastembed must be installed)::

    python -m ortprune.embed.fastembed_catalogue
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent.parent / "data" / "fastembed-text-models.json"

#: fastembed's text model classes → how their models are run (read from fastembed 0.9.1's source):
#: ``pooling``/``normalize`` of ``_post_process_onnx_output``; ``output_index``: the output fastembed
#: pools (``run(None)[i]``) or ``output``: its name (``ONNX_OUTPUT_NAMES``); ``pad_to_max_length``:
#: SigLIP pools the last position, so fastembed pads every batch to the truncation length; ``kind``
#: "static": a model2vec embedding matrix in safetensors, no ONNX graph.
CLASSES: dict[str, dict[str, Any]] = {
    "OnnxTextEmbedding": {"pooling": "cls", "normalize": True, "output_index": 0},
    "CLIPOnnxEmbedding": {"pooling": "disabled", "normalize": False, "output_index": 0},
    "SiglipOnnxTextEmbedding": {"pooling": "cls", "normalize": True, "output": "pooler_output",
                                "pad_to_max_length": True},
    "PooledNormalizedEmbedding": {"pooling": "mean", "normalize": True, "output_index": 0},
    "PooledEmbedding": {"pooling": "mean", "normalize": False, "output_index": 0},
    "JinaEmbeddingV3": {"pooling": "mean", "normalize": True, "output_index": 0},  # + a task_id input
    "BuiltinSentenceEmbedding": {"pooling": "disabled", "normalize": False, "output_index": 1},
    "LastTokenNormalizedEmbedding": {"pooling": "last_token", "normalize": True, "output_index": 0},
    "StaticTextEmbedding": {"pooling": "mean", "normalize": True, "kind": "static"},
}  # fmt: skip
#: fastembed classes with no models of their own (user-registered ones).
SKIPPED = {"CustomTextEmbedding"}


def read_installed() -> dict[str, Any]:
    """The catalogue of the installed fastembed, in this module's JSON shape."""
    import fastembed
    from fastembed import TextEmbedding

    models = []
    for cls in TextEmbedding.EMBEDDINGS_REGISTRY:
        if cls.__name__ in SKIPPED:
            continue
        if cls.__name__ not in CLASSES:
            raise RuntimeError(f"fastembed's {cls.__name__} is new: describe how it runs its models in CLASSES")
        for description in cls._list_supported_models():
            models.append({**asdict(description), "fastembed_class": cls.__name__, **CLASSES[cls.__name__]})
    return {"fastembed_version": fastembed.__version__, "models": models}


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return data


def main() -> None:
    DATA.write_text(json.dumps(read_installed(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(DATA)


if __name__ == "__main__":
    main()
