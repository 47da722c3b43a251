"""Libraries ortprune built (~/.cache/ortprune/builds): they must load through the ctypes runtime.

Skipped when no build is present (builds take hours; `make demo` makes them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ortprune.cache import cache_dir
from ortprune.runtime import Library, Session
from ortprune.runtime._capi import MAX_API_VERSION
from tests.runtime.test_session import TEXTS, tokenize


def built_libraries() -> list[Path]:
    root = cache_dir("builds")
    if not root.is_dir():
        return []
    from ortprune.runtime.emulated import foreign_target

    found = (p for p in root.rglob("libonnxruntime.so*") if p.is_file() and not p.is_symlink())
    return sorted(p for p in found if foreign_target(p) is None)  # a cross build's runs under qemu elsewhere


@pytest.mark.ortbuild
@pytest.mark.parametrize("path", built_libraries() or [None], ids=lambda p: "none" if p is None else p.parent.name)
def test_built_library_loads_and_runs(path: Path | None, int8_model: Path, tokenizer_dir: Path) -> None:
    if path is None:
        pytest.skip("no ORT build in ~/.cache/ortprune/builds")
    lib = Library(path)
    minor = int(lib.version.split(".")[1])
    assert lib.api_version == min(minor, MAX_API_VERSION)
    assert "CPUExecutionProvider" in lib.available_providers()
    if "full" not in path.parts:
        return  # a pruned library need not run this model; verify/ checks what it can run
    feeds = tokenize(tokenizer_dir, TEXTS)
    with Session(int8_model, lib, threads=1) as built, Session(int8_model, threads=1) as wheel:
        a, b = built.run(feeds)["last_hidden_state"], wheel.run(feeds)["last_hidden_state"]
    np.testing.assert_allclose(a, b, atol=1e-3)  # different ORT versions: same kernels, not bit-identical
