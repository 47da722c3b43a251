"""Find model files in the paths a user gives."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ortprune._io import input_problem, walk
from ortprune.errors import ModelError, NoModelsError

MODEL_SUFFIXES = (".onnx", ".ort")


def _raise(e: OSError) -> None:
    raise e


def find_models(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, directories searched recursively for ``*.onnx`` and ``*.ort`` (any case); sorted, no
    duplicates."""
    found: dict[Path, None] = {}
    for p in map(Path, paths):
        if p.is_dir():
            try:  # is_file() follows links: a FIFO or a loop inside the directory is skipped, not opened
                models = sorted(
                    f for d, _, names in walk(p, _raise) for n in names
                    if (f := Path(d, n)).suffix.lower() in MODEL_SUFFIXES and f.is_file()
                )  # fmt: skip
            except OSError as e:
                raise ModelError(f"cannot search the directory: {e.strerror or e}", e.filename or p) from None
            if not models:
                raise NoModelsError("directory contains no .onnx or .ort model files", p)
            found.update(dict.fromkeys(m.resolve() for m in models))
        elif (problem := input_problem(p)) is None:
            found[p.resolve()] = None
        else:
            raise ModelError(problem, p)
    if not found:
        raise NoModelsError("no model paths given")
    return list(found)
