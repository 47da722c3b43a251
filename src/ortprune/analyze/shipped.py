"""What a deployment ships per variant: the library (stripped, as distributed) + every model file it
needs (``.onnx``, or ``.ort`` for a minimal build) + the tokenizer files, ranked by total bytes."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ortprune.results.size import Shipped, ShippedFile
from ortprune.tokenizer import TOKENIZER_FILES

#: Tokenizer files a text embedding model ships with (fastembed's list; tokenizer.json is the big one).


def stripped_size(lib: str | Path) -> int | None:
    """Size after ``strip`` (what a distribution would ship), computed on a temp copy; None without strip.
    A library of another target is stripped with that target's binutils (``aarch64-linux-gnu-strip``):
    the host's strip does not read it."""
    from ortprune.runtime.emulated import foreign_target

    foreign = foreign_target(lib)
    strip = shutil.which(f"{foreign.triple}-strip" if foreign else "strip")
    if not strip:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "lib.so"
        shutil.copy2(lib, copy)
        if subprocess.run([strip, str(copy)], capture_output=True).returncode != 0:
            return None
        return copy.stat().st_size


def tokenizer_files(directory: str | Path) -> list[Path]:
    d = Path(directory)
    return [d / n for n in TOKENIZER_FILES if (d / n).is_file()]


def shipped(
    variant: str,
    library: str | Path,
    models: Iterable[str | Path],
    tokenizer_dirs: Iterable[str | Path],
    verified: bool,
    stripped_bytes: int | None = None,
) -> Shipped:
    """Measure one variant. A library already stripped at link (minimal builds) counts as its own size;
    tokenizer files shared by several models (same path) count once."""
    lib = Path(library)
    size = lib.stat().st_size
    if stripped_bytes is None:
        stripped_bytes = stripped_size(lib) or size
    files = [ShippedFile("model", str(m), Path(m).stat().st_size) for m in models]
    seen: set[Path] = set()
    for d in tokenizer_dirs:
        for f in tokenizer_files(d):
            if f.resolve() not in seen:
                seen.add(f.resolve())
                files.append(ShippedFile("tokenizer", str(f), f.stat().st_size))
    return Shipped(variant, str(lib), size, min(stripped_bytes, size), files, verified)


def ranked(items: Iterable[Shipped]) -> list[Shipped]:
    """Smallest shipped total first."""
    return sorted(items, key=lambda s: (s.total, s.variant))


def recommended(items: Iterable[Shipped]) -> Shipped | None:
    """The smallest shipped total among the variants that verified."""
    return next((s for s in ranked(items) if s.verified), None)
