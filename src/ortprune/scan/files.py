"""Find model files in the paths a user gives."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ortprune._io import input_problem
from ortprune.errors import ModelError, NoModelsError

MODEL_SUFFIXES = (".onnx", ".ort")


def _walk(root: Path) -> Iterator[Path]:
    """Every entry under ``root``, as ``Path.rglob("*")`` gives them (symlinked directories are not entered),
    with a stack instead of recursion: a tree deeper than Python's recursion limit is searched too."""
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                yield Path(e.path)
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))


def find_models(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, directories searched recursively for ``*.onnx`` and ``*.ort`` (any case); sorted, no
    duplicates."""
    found: dict[Path, None] = {}
    for p in map(Path, paths):
        if p.is_dir():
            try:  # is_file() follows links: a FIFO or a loop inside the directory is skipped, not opened
                models = sorted(f for f in _walk(p) if f.suffix.lower() in MODEL_SUFFIXES and f.is_file())
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
