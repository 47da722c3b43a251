"""ortprune: the smallest ONNX Runtime that still runs your models — exactly, fast, and provably."""

from ortprune.errors import OrtpruneError
from ortprune.opconfig import OpConfig

__all__ = ["OpConfig", "OrtpruneError", "__version__"]
__version__ = "0.1.0"
