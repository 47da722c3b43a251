"""convert: ONNX models → ORT-format (``.ort``) models, optimized by the full library of the exact release.

ORT writes the files itself (session config ``session.save_model_format=ORT`` and
``SetOptimizedModelFilePath``), through :mod:`ortprune.runtime`: the converter is any libonnxruntime,
so a ``.ort`` for a minimal build of 1.21.0 is made by the full 1.21.0 build, not by whatever Python
onnxruntime is installed. The converter's release is written into the model's metadata so a library of
another release can refuse the file (:func:`ortprune.ortformat.check_runtime`).

Quantized weights: at level ``basic`` and above ORT's ConstantFolding turns weight-only quantized
weights (int8 → Cast → Mul(scale), or DequantizeLinear) into fp32 initializers, so the ``.ort`` of the
int8 all-MiniLM-L6-v2 is 3.9× its ``.onnx``. ``keep_quantized`` leaves ConstantFolding out; the weights
are then dequantized on every run, and MatMul can no longer pre-pack them (ORT pre-packs only constant
initializers), which changes MLAS's summation order: see docs/results/ort-format.md for the measured
size, load time, throughput and output difference of each choice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ortprune._io import check_output_dir, check_outputs, commit_staged, staged_outputs
from ortprune.cache import file_digest
from ortprune.errors import ModelError, OrtpruneError, OutputError
from ortprune.ortformat import (
    META_KEEP_QUANTIZED,
    META_LEVEL,
    META_ORT_VERSION,
    META_SOURCE,
    ORT_SUFFIX,
    is_ort_format,
)

#: Session config that keeps weight-only quantized weights quantized in the saved model.
KEEP_QUANTIZED_CONFIG = {"optimization.disable_specified_optimizers": "ConstantFolding"}


@dataclass(frozen=True)
class Converted:
    """One converted model."""

    source: Path
    ort: Path
    optimized_onnx: Path | None
    ort_version: str
    level: str
    keep_quantized: bool
    source_bytes: int
    ort_bytes: int
    seconds: float

    @property
    def ratio(self) -> float:
        """``.ort`` bytes / ``.onnx`` bytes."""
        return self.ort_bytes / self.source_bytes if self.source_bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update({k: str(v) if isinstance(v, Path) else v for k, v in d.items()})
        d["ratio"] = round(self.ratio, 4)
        return d


def save_config(fmt: str, keep_quantized: bool) -> dict[str, str]:
    """Session config entries that make ORT save the optimized model in ``fmt`` ("ORT" or "ONNX")."""
    config = {"session.save_model_format": fmt}
    if keep_quantized:
        config.update(KEEP_QUANTIZED_CONFIG)
    return config


def tagged_model_bytes(path: Path, ort_version: str, level: str, keep_quantized: bool) -> bytes:
    """The model's bytes with ortprune's conversion metadata added (ORT copies metadata_props into the
    ``.ort``). Models with external data are refused: ORT would resolve it against no directory."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError, OSError, ...: all mean "not a readable model"
        raise ModelError(f"cannot read as ONNX: {e}", path) from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise ModelError("models with external data are not supported by convert; save it as one file", path)
    meta = {
        META_ORT_VERSION: ort_version,
        META_LEVEL: level,
        META_SOURCE: file_digest(path, 64),
        META_KEEP_QUANTIZED: "1" if keep_quantized else "0",
    }
    kept = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    return bytes(model.SerializeToString())


def convert_model(
    model: str | Path,
    lib: Any,
    out_dir: str | Path,
    level: str = "all",
    keep_quantized: bool = False,
    optimized_onnx: bool = False,
) -> Converted:
    """Write ``out_dir/<stem>.ort`` (and ``<stem>.optimized.onnx``) for ``model``, optimized at ``level``
    by ``lib``. Outputs appear whole or not at all (see :func:`convert`)."""
    src = Path(model)
    if not src.is_file():
        raise ModelError("no such file", src)
    return convert([src], lib, out_dir, level, keep_quantized, optimized_onnx)[0]


def convert(
    models: Iterable[str | Path],
    lib: Any,
    out_dir: str | Path,
    level: str = "all",
    keep_quantized: bool = False,
    optimized_onnx: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Converted]:
    """Convert every model (files or directories of ``.onnx``); two models may not share a file stem.

    The run's outputs appear together or not at all: each is checked first (not one of the models or the
    library, not a file ``convert`` did not write), every model is converted into a hidden directory
    beside ``out_dir``, and only when all succeeded is ``out_dir`` created and the files renamed into it,
    with Ctrl-C held until the renames are done (a ``.ort`` and its ``.optimized.onnx`` stay a pair).
    ``progress(done, total, model)`` hears of each model as it starts."""
    from ortprune.runtime import Session, load_library
    from ortprune.scan.files import find_models

    models = list(models)
    explicit = {Path(m).resolve() for m in models if Path(m).is_file()}
    files = [p for p in find_models(models) if p in explicit or not is_ort_format(p)]  # dirs: skip .ort files
    if not files:
        raise ModelError("no .onnx models to convert", Path(os.fspath(models[0])) if models else None)
    stems: dict[str, Path] = {}
    for f in files:
        if f.suffix.lower() == ORT_SUFFIX or is_ort_format(f):
            raise ModelError("already an ORT-format model; convert the .onnx it was made from", f)
        if f.stem in stems:
            raise ModelError(f"two models would both become {f.stem}{ORT_SUFFIX}: {stems[f.stem]} and {f}", f)
        stems[f.stem] = f
    library = load_library(lib)
    out = check_output_dir(out_dir)
    plan = [(f, [(out / (f.stem + ORT_SUFFIX), "ORT")] + ([(out / f"{f.stem}.optimized.onnx", "ONNX")]
                                                           if optimized_onnx else [])) for f in files]  # fmt: skip
    outputs = [target for _, targets in plan for target, _ in targets]
    check_outputs(outputs, [*files, library.path])
    for target in outputs:
        _check_ours(target)
    done: list[Converted] = []
    with staged_outputs(out) as stage:
        for src, targets in plan:
            if progress is not None:
                progress(len(done), len(plan), str(src))
            t0 = time.monotonic()
            data = tagged_model_bytes(src, library.version, level, keep_quantized)
            for target, fmt in targets:
                try:
                    Session(
                        data,
                        library,
                        optimization_level=level,
                        log_level="error",
                        optimized_model_path=stage / target.name,
                        config=save_config(fmt, keep_quantized),
                    ).close()
                except OrtpruneError as e:
                    raise ModelError(f"ONNX Runtime {library.version} could not convert it: {e}", src) from None
                if not (stage / target.name).is_file():
                    raise ModelError(f"ONNX Runtime {library.version} wrote no {fmt} file for it", src)
            done.append(
                Converted(
                    source=src,
                    ort=targets[0][0],
                    optimized_onnx=targets[1][0] if optimized_onnx else None,
                    ort_version=library.version,
                    level=level,
                    keep_quantized=keep_quantized,
                    source_bytes=src.stat().st_size,
                    ort_bytes=(stage / targets[0][0].name).stat().st_size,
                    seconds=round(time.monotonic() - t0, 3),
                )
            )
        commit_staged(stage, out, [target.name for target in outputs])
    return done


def _check_ours(target: Path) -> None:
    """An existing file at an output name must be one ``convert`` wrote (a rerun replaces it); anything
    else there (the user's own model of that name) is refused, never replaced."""
    if not target.exists():
        return
    try:
        if target.suffix == ORT_SUFFIX:
            from ortprune.ortformat import read_info

            ours = META_SOURCE in read_info(target).metadata
        else:
            import onnx

            meta = onnx.load(str(target), load_external_data=False).metadata_props
            ours = any(p.key == META_SOURCE for p in meta)
    except Exception:  # not a model at all (onnx and the flatbuffers reader raise many types): not ours
        ours = False
    if not ours:
        raise OutputError("exists and was not written by ortprune convert; refusing to replace it "
                          "(move it, or choose another --out)", target)  # fmt: skip
