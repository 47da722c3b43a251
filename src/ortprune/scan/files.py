"""Find model files in the paths a user gives."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ortprune.errors import ModelError, NoModelsError

MODEL_SUFFIXES = (".onnx", ".ort")


def find_models(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, directories searched recursively for ``*.onnx`` and ``*.ort`` (any case); sorted, no
    duplicates."""
    found: dict[Path, None] = {}
    for p in map(Path, paths):
        if p.is_dir():
            models = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MODEL_SUFFIXES)
            if not models:
                raise NoModelsError("directory contains no .onnx or .ort model files", p)
            found.update(dict.fromkeys(m.resolve() for m in models))
        elif p.is_file():
            found[p.resolve()] = None
        else:
            raise ModelError("no such file or directory", p)
    if not found:
        raise NoModelsError("no model paths given")
    return list(found)
