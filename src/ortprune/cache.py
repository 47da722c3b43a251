"""Where ortprune keeps downloads, sources, builds and derived models (~/.cache/ortprune)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ortprune.errors import OrtpruneError


def env_path(name: str) -> str | None:
    """The path in environment variable ``name`` (None when unset or empty), with a leading ``~`` expanded:
    a shell leaves ``~`` alone inside quotes or in a config file, and no one means a directory named ``~``."""
    value = os.environ.get(name)
    return os.path.expanduser(value) if value else None


def cache_dir(*parts: str) -> Path:
    """``$ORTPRUNE_CACHE`` or ``$XDG_CACHE_HOME/ortprune`` or ``~/.cache/ortprune``, joined with ``parts``."""
    root = env_path("ORTPRUNE_CACHE")
    base = Path(root) if root else Path(env_path("XDG_CACHE_HOME") or Path.home() / ".cache") / "ortprune"
    if base.exists() and not base.is_dir():  # a file or device: every use would fail with a stranger message
        what = "$ORTPRUNE_CACHE" if root else "the cache directory"
        raise OrtpruneError(f"{what} is not a directory; point it at a directory", base)
    return base.joinpath(*parts)


def file_digest(path: str | Path, length: int = 16) -> str:
    """SHA-256 of a file's bytes (streamed), shortened to ``length`` hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]
