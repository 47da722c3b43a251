"""Atomic output: a failed run never leaves a partial file behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Write to a temp file beside ``path``; rename over it only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def atomic_copy(src: str | Path, dest: str | Path) -> Path:
    """Copy ``src`` over ``dest`` (bytes and mode) so a reader never sees a half-copied file."""
    with atomic_open(dest, "wb") as f, open(src, "rb") as g:
        shutil.copyfileobj(g, f, 1 << 20)
    shutil.copymode(src, dest)
    return Path(dest)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside ``path`` for a writer that opens files itself (ORT saving a model); renamed
    over ``path`` only if the block succeeds, removed otherwise. Refuses to replace a non-regular file."""
    path = Path(path)
    if path.exists() and not path.is_file():
        from ortprune.errors import OrtpruneError

        raise OrtpruneError("exists and is not a regular file; refusing to replace it", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if not tmp.is_file():
            from ortprune.errors import OrtpruneError

            raise OrtpruneError("the writer produced no file", path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
