"""One exception family for everything a user can cause; the CLI prints it in one line."""

from __future__ import annotations

from pathlib import Path


class OrtpruneError(Exception):
    """An error the user can fix: the message names the file and the problem."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


class ModelError(OrtpruneError):
    """A model file that cannot be read as ONNX (truncated, not ONNX, missing external data...)."""


class NoModelsError(OrtpruneError):
    """A path that holds no model files."""


class ConfigError(OrtpruneError):
    """A reduced-build config that does not follow ORT's grammar."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        where = path if line is None else f"{path or '<config>'}:{line}"
        super().__init__(message, where)
        self.line = line


class BuildError(OrtpruneError):
    """An ORT build that failed or cannot start."""


class RuntimeLoadError(OrtpruneError):
    """A shared library that is not a usable ONNX Runtime."""


class ElfError(OrtpruneError):
    """A file that cannot be analyzed as an ELF shared library (missing, not ELF, truncated)."""


class StoreError(OrtpruneError):
    """An artifact store that cannot be used: down, hanging, refusing writes, or holding a bad artifact."""


class OutputError(OrtpruneError):
    """An output path that cannot be written safely (a device, a FIFO, a directory, one of the inputs...)."""


class UsageError(OrtpruneError):
    """Arguments that do not fit together (a value of the wrong form, a missing companion option)."""


class ArgumentTypeError(OrtpruneError, TypeError):
    """A Python API argument of the wrong type (also a TypeError, which is what Python and fastembed raise).

    Not a UsageError: through the CLI such a value comes from the user's data (a document, a model's
    file), an error to fix like a bad file (exit 1), not a malformed command line (exit 2)."""


class ArgumentValueError(OrtpruneError, ValueError):
    """A Python API argument of the right type but a value it cannot take (also a ValueError, as in fastembed)."""
