"""Libraries built with gcc at test time (once per session) and the onnxruntime wheel's library."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.analyze.libs import BuiltLib, build_c, build_cxx_ort, have_gcc


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not have_gcc():
        pytest.skip("gcc/g++ not installed")
    return tmp_path_factory.mktemp("toylibs")


@pytest.fixture(
    scope="session",
    params=[(False, False), (True, False), (False, True), (True, True)],
    ids=["plain", "debug", "stripped", "debug-stripped"],
)
def toy(request: pytest.FixtureRequest, toy_dir: Path) -> BuiltLib:
    debug, stripped = request.param
    return build_c(toy_dir, debug, stripped)


@pytest.fixture(scope="session")
def toy_debug(toy_dir: Path) -> BuiltLib:
    return build_c(toy_dir, True, False)


@pytest.fixture(scope="session")
def toy_plain(toy_dir: Path) -> BuiltLib:
    return build_c(toy_dir, False, False)


@pytest.fixture(scope="session")
def miniort(toy_dir: Path) -> Path:
    return build_cxx_ort(toy_dir)
