"""Making a deploy bundle (:mod:`ortprune.bundle` describes the format and opens one): the library, the models
optimized for it by a reference library of the same release, their tokenizer files and the manifest."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ortprune.bundle import (
    HOST_LEVEL,
    LIB_DIR,
    MANIFEST,
    MODEL_FORMATS,
    PORTABLE_LEVEL,
    Bundle,
    BundleError,
    BundleModel,
    library_id,
)
from ortprune.errors import OrtpruneError


# -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    name: str
    path: Path
    tokenizer_dir: Path  # its tokenizer files are copied when present
    pooling: str
    normalize: bool


def _sources(models: Sequence[str | Path]) -> list[_Source]:
    """Each model with its name, tokenizer directory, pooling and normalization (bundled names and the
    bundled models' files by the registry, other files by their directory, as TextEmbedding reads them)."""
    from ortprune.bundled import BUNDLED, BundledModel
    from ortprune.embed.registry import model_info
    from ortprune.embed.text import _local

    bundled: dict[Path, BundledModel] = {}
    for entry in BUNDLED:
        try:
            bundled[entry.path().resolve()] = entry
        except OrtpruneError:  # not installed: only its name can match, and then path() says so
            continue
    by_name = {entry.name: entry for entry in BUNDLED}
    out: list[_Source] = []
    for m in models:
        b = by_name.get(str(m)) or bundled.get(Path(m).resolve())
        if b is not None:
            info = model_info(b.name)
            src = _Source(b.name, b.path(), b.tokenizer(), info.pooling.value, info.normalize)
        else:
            if not Path(m).exists():
                raise BundleError("no such model file or directory (nor a bundled model name)", m)
            resolved = _local(Path(m))
            src = _Source(resolved.onnx.stem, resolved.onnx, resolved.tokenizer_dir, resolved.info.pooling.value,
                          resolved.info.normalize)  # fmt: skip
        name = src.name
        while any(s.name == name for s in out):
            name += "_"
        out.append(_Source(name, src.path, src.tokenizer_dir, src.pooling, src.normalize))
    return out


def check_out(out: str | Path, inputs: Sequence[str | Path] = ()) -> Path:
    """``out`` can take a new bundle: absent or an empty directory, not one of ``inputs`` nor inside one;
    checked before anything is built (``slim --bundle``)."""
    from ortprune._io import check_outputs

    out = Path(out)
    check_outputs([out / MANIFEST], inputs)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleError("exists and is not an empty directory; refusing to mix a bundle into it", out)
    return out


def make_bundle(
    models: Sequence[str | Path],
    library: str | Path,
    out: str | Path,
    *,
    reference: str | Path | None = None,
    model_format: str = "onnx",
    target_cpu: str | None = None,
    keep_quantized: bool = False,
    tolerance: float = 0.0,
) -> Bundle:
    """Write a bundle of ``models`` for ``library`` into ``out`` (created whole, or not at all).

    ``reference``: the library that optimizes the models (a full build or the official release library of
    the same version; default ``library`` itself, which a minimal build cannot be). ``model_format``: "onnx"
    (an optimized ``model.onnx``) or "ort" (for a minimal build). ``target_cpu``: None (portable, level
    extended) or "host" (level all; this CPU's features recorded and required). Each bundled model is then
    loaded by ``library`` at level disable and compared with its source on ``reference`` at level all: a
    difference above ``tolerance`` (default: none at all) stops the bundle."""
    from ortprune._io import _umask, output_dir
    from ortprune.analyze.shipped import tokenizer_files
    from ortprune.cache import file_digest
    from ortprune.convert import convert_model
    from ortprune.elf import ElfFile
    from ortprune.platform import cpu_flags
    from ortprune.runtime import load_library
    from ortprune.runtime._capi import c_api_pruned
    from ortprune.verify import verify

    if model_format not in MODEL_FORMATS:
        raise BundleError(f"model format must be one of {', '.join(MODEL_FORMATS)}, not {model_format!r}")
    if target_cpu not in (None, "host"):
        raise BundleError(f"--target-cpu takes 'host' (this machine's CPU), not {target_cpu!r}: ORT rewrites "
                          "for the CPU it runs on, so another CPU's bundle is made on that CPU")  # fmt: skip
    if not models:
        raise BundleError("no models to bundle")
    out = Path(out)
    lib_path = Path(library)
    ref_path = Path(reference) if reference is not None else lib_path
    sources = _sources(models)
    check_out(out, [lib_path, ref_path, *(s.path for s in sources)])
    lib = load_library(lib_path)
    ref = load_library(ref_path)
    if lib.version != ref.version:
        raise BundleError(f"the reference is ONNX Runtime {ref.version}, the library {lib.version}: models "
                          "optimized by one release are made for that release", ref_path)  # fmt: skip
    level = HOST_LEVEL if target_cpu == "host" else PORTABLE_LEVEL
    parent = output_dir(out.parent if str(out.parent) else Path("."))
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        os.chmod(work, 0o777 & ~_umask())  # mkdtemp makes it 0700: the bundle gets the user's usual mode
        with ElfFile(lib_path, sections=False) as elf:
            soname = elf.soname
        lib_name = f"libonnxruntime.so.{lib.version}"
        (work / LIB_DIR).mkdir()
        shutil.copy2(lib_path, work / LIB_DIR / lib_name)
        for alias in {soname, "libonnxruntime.so"} - {None, lib_name}:
            assert alias is not None
            os.symlink(lib_name, work / LIB_DIR / alias)
        entries = []
        for s in sources:
            d = work / s.name
            d.mkdir()
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                c = convert_model(s.path, ref, tmp, level, keep_quantized, optimized_onnx=model_format == "onnx")
                made = c.ort if model_format == "ort" else c.optimized_onnx
                assert made is not None
                target = d / f"model.{model_format}"
                os.replace(made, target)
            tok = []
            for f in tokenizer_files(s.tokenizer_dir):
                shutil.copy2(f, d / f.name)
                tok.append(f.name)
            report = verify(work / LIB_DIR / lib_name, [target], ref_path, "all", tolerance,
                            reference_model=s.path, pruned_level="disable")  # fmt: skip
            verdict = report.models[0]
            if verdict.side == "pruned" and "ONNX format model is not supported" in verdict.detail:
                raise BundleError("loads only ORT-format models (a minimal build): bundle with --format ort", lib_path)
            if verdict.status != "ok":
                raise BundleError(f"the bundled model on {lib_path} does not match the model on {ref_path}: "
                                  f"{verdict.status} {verdict.detail}".strip(), s.path)  # fmt: skip
            entries.append(BundleModel(
                name=s.name, file=f"{s.name}/{target.name}", format=model_format, sha256=file_digest(target, 64),
                bytes=target.stat().st_size, source_sha256=file_digest(s.path, 64), pooling=s.pooling,
                normalize=s.normalize, tokenizer=tuple(tok), max_abs_diff=verdict.max_abs_diff,
            ))  # fmt: skip
        lib_file = f"{LIB_DIR}/{lib_name}"
        bundle = Bundle(
            root=out,
            library=lib_file,
            library_id=library_id(work / lib_file),
            library_sha256=file_digest(work / lib_file, 64),
            library_version=lib.version,
            library_bytes=(work / lib_file).stat().st_size,
            soname=soname,
            level=level,
            cpu_features=tuple(cpu_flags()) if target_cpu == "host" else (),
            machine=platform.machine(),
            made_by={"version": ref.version, "library_id": library_id(ref_path)},
            models=tuple(entries),
            consumers=consumers(entries, lib_file, soname, c_api_pruned(work / lib_file)),
        )
        (work / MANIFEST).write_text(json.dumps(bundle.to_dict(), indent=1) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return bundle


def consumers(
    models: Sequence[BundleModel], lib_file: str, soname: str | None, c_api_only: bool = False
) -> dict[str, str]:
    """What each kind of consumer sets to run the bundle (paths relative to the bundle's root).
    ``c_api_only``: the library was built with ``--prune c-api``, so only ortprune's runtime can use it."""
    first = models[0]
    ort = first.format == "ort"
    out = {
        "python": f"TextEmbedding('<bundle>/{first.name}') or Session('<bundle>/{first.file}'): the bundle's "
        "library and level disable by default; TextEmbedding(..., lib=...) with another library is refused",
        "ORT_DYLIB_PATH": f"<bundle>/{lib_file} (fastembed-rs and the ort crate with load-dynamic)",
        "LD_LIBRARY_PATH": f"<bundle>/{LIB_DIR} (clients linked against {soname or 'libonnxruntime.so'}, "
        "e.g. onnxruntime-node's binding)",
        "optimization_level": "disable (ORT_DISABLE_ALL): the models are already optimized",
    }
    if c_api_only:
        for key in ("ORT_DYLIB_PATH", "LD_LIBRARY_PATH"):
            out[key] = ("not with this library: built with --prune c-api, it serves ortprune's runtime only "
                        "(other clients' calls return ORT_NOT_IMPLEMENTED)")  # fmt: skip
    if ort:
        out["model_file"] = (
            f"{first.file}: a minimal build loads ORT format by path only when the name ends in .ort (or with "
            "session config session.load_model_format=ORT), and from bytes under any name; a client that "
            "opens model.onnx by a fixed name cannot use it unless it loads from memory"
        )
    else:
        out["model_file"] = f"{first.file}: loads under any name, on any ORT of this release"
    return out
