"""ORT-format (``.ort``, flatbuffers) model files: recognise them, read who made them, list their ops.

Read with the flatbuffers classes the onnxruntime wheel generates from ORT's own schema
(``onnxruntime.tools.ort_format_model``), the same reader ORT's ``create_reduced_build_config.py`` uses.

An ``.ort`` file records only the ORT *format* version (``InferenceSession.ort_version``, "6" for years
of releases), not the release that wrote it. ``ortprune convert`` therefore stores the converter's
release in the model's metadata (:data:`META_ORT_VERSION`), and :func:`check_runtime` compares it with
the library about to load the file.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ortprune.errors import ModelError, OrtpruneError

ORT_SUFFIX = ".ort"
#: flatbuffers file identifier of ORT-format models (bytes 4..8 of the file).
FILE_IDENTIFIER = b"ORTM"
#: Metadata keys ``ortprune convert`` writes into the model before ORT serializes it.
META_ORT_VERSION = "ortprune.converter_ort_version"
META_LEVEL = "ortprune.optimization_level"
META_SOURCE = "ortprune.source_sha256"
META_KEEP_QUANTIZED = "ortprune.keep_quantized"


class OrtFormatError(ModelError):
    """An ``.ort`` file that cannot be used: not ORT format, or made by another ONNX Runtime release."""


def is_ort_format(path: str | Path) -> bool:
    """True if ``path`` is a regular file that starts like an ORT-format model (flatbuffers identifier
    ``ORTM``). Anything else (a FIFO, which would block, a device) is not opened."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == FILE_IDENTIFIER


@dataclass(frozen=True)
class OrtModelInfo:
    """What an ``.ort`` file says about itself."""

    path: Path
    format_version: str
    producer: str
    opsets: dict[str, int]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def converter_version(self) -> str | None:
        """The ONNX Runtime release that wrote the file, if ``ortprune convert`` made it."""
        return self.metadata.get(META_ORT_VERSION)


def _fbs() -> Any:
    try:
        import onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs as fbs
    except ImportError:
        raise OrtpruneError(
            "reading .ort models needs the flatbuffers readers of the onnxruntime wheel: pip install 'ortprune[ort]'"
        ) from None
    return fbs


def read_info(path: str | Path) -> OrtModelInfo:
    """The header of an ``.ort`` file (memory-mapped: the weights are not read)."""
    path = Path(path)
    fbs = _fbs()
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if len(mm) < 8 or bytes(mm[4:8]) != FILE_IDENTIFIER:
                raise OrtFormatError("not an ORT-format model (no 'ORTM' flatbuffers identifier)", path)
            try:
                session = fbs.InferenceSession.InferenceSession.GetRootAs(mm, 0)
                model = session.Model()
                if model is None:
                    raise OrtFormatError("ORT-format file without a model", path)
                opsets = {}
                for i in range(model.OpsetImportLength()):
                    o = model.OpsetImport(i)
                    opsets[(o.Domain() or b"").decode() or "ai.onnx"] = int(o.Version())
                meta = {}
                for i in range(model.MetadataPropsLength()):
                    p = model.MetadataProps(i)
                    meta[(p.Key() or b"").decode()] = (p.Value() or b"").decode()
                return OrtModelInfo(
                    path=path,
                    format_version=(session.OrtVersion() or b"").decode(),
                    producer=(model.ProducerName() or b"").decode(),
                    opsets=opsets,
                    metadata=meta,
                )
            except (IndexError, ValueError, TypeError, struct.error) as e:  # a truncated or garbled buffer
                raise OrtFormatError(f"corrupt ORT-format model: {e}", path) from None
    except (OSError, ValueError) as e:
        raise OrtFormatError(f"cannot read: {e}", path) from None


def check_runtime(path: str | Path, library_version: str) -> OrtModelInfo:
    """Refuse an ``.ort`` file converted by another ONNX Runtime release than ``library_version``.

    The graph in an ``.ort`` file is what *that* release's optimizer made, and a minimal build keeps only
    the kernels (and types) of exactly that graph: another release's file may need kernels the library
    lacks, or load with different rewrites. Files without ortprune's metadata pass (nothing to compare)."""
    info = read_info(path)
    made_by = info.converter_version
    if made_by is not None and made_by != library_version:
        raise OrtFormatError(
            f"converted by ONNX Runtime {made_by}, but this library is ONNX Runtime {library_version}: "
            f"convert the .onnx again with the same release (ortprune convert MODEL --lib <full {library_version} "
            "library>)",
            path,
        )
    return info


def ops_and_types(path: str | Path, with_types: bool = True) -> tuple[dict[str, dict[int, set[str]]], Any]:
    """The kernels an ``.ort`` model needs, as ORT's own config script computes them: domain → the
    kernel's since-version → op names, and (``with_types``) ORT's OperatorTypeUsageManager for the
    per-op element types. Returns ``(required_ops, manager_or_None)``."""
    path = Path(path)
    _fbs()
    from onnxruntime.tools.ort_format_model import OperatorTypeUsageManager
    from onnxruntime.tools.ort_format_model.ort_model_processor import OrtFormatModelProcessor

    if not is_ort_format(path):
        raise OrtFormatError("not an ORT-format model (no 'ORTM' flatbuffers identifier)", path)
    required: dict[str, dict[int, set[str]]] = {}
    manager = OperatorTypeUsageManager() if with_types else None
    try:
        OrtFormatModelProcessor(str(path), required, manager).process()
    except (IndexError, ValueError, TypeError, RuntimeError, struct.error) as e:
        raise OrtFormatError(f"corrupt ORT-format model: {e}", path) from None
    return required, manager
