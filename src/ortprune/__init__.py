"""ortprune: the smallest ONNX Runtime that still runs your models — exactly, fast, and provably."""

from __future__ import annotations

from typing import Any

from ortprune.errors import OrtpruneError

__all__ = ["OpConfig", "OrtpruneError", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``ortprune.OpConfig`` on first use: ``import ortprune.embed`` (cold start) need not load the config
    grammar."""
    if name == "OpConfig":
        from ortprune.opconfig import OpConfig

        return OpConfig
    raise AttributeError(f"module 'ortprune' has no attribute {name!r}")
