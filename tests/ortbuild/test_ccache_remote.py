"""ccache's remote storage as the build passes it through (``--ccache-remote``), against real servers on
127.0.0.1: redis-server and nginx (ccache's http storage is plain GET/PUT). A few small C++ files are
compiled through ccache on one "machine" (an empty local cache), then on another (a different empty local
cache): the second compiles nothing, every object is a remote hit."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ortprune.errors import BuildError
from ortprune.ortbuild import runner
from tests import servers

SOURCES = {
    "add.cpp": "int add(int a, int b) { return a + b; }\n",
    "vec.cpp": "#include <vector>\nstd::vector<int> make(int n) { return std::vector<int>(n, 7); }\n",
    "str.cpp": '#include <string>\nstd::string greet(const std::string& s) { return "hi " + s; }\n',
}


def stats(env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run(["ccache", "--print-stats"], env=env, capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, v in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def compile_all(src: Path, remote: str, local_cache: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Compile SOURCES through ccache with the environment ``runner.build_env`` gives an ORT build."""
    monkeypatch.setenv("CCACHE_DIR", str(local_cache))
    monkeypatch.setenv("ORTPRUNE_CACHE", str(src.parent))  # CCACHE_BASEDIR: the tree is hashed relative to it
    env = runner.build_env(remote)
    assert env["CCACHE_REMOTE_STORAGE"] == remote
    for name in SOURCES:
        subprocess.run(["ccache", "c++", "-O1", "-c", name, "-o", name + ".o"], cwd=src, env=env, check=True)
    return stats(env)


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    if not shutil.which("ccache") or not shutil.which("c++"):
        pytest.skip("ccache and a C++ compiler are needed (apt-get install ccache g++)")
    src = tmp_path / "tree" / "src"
    src.mkdir(parents=True)
    for name, text in SOURCES.items():
        (src / name).write_text(text)
    return src


@pytest.fixture(params=["redis", "http"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    features = subprocess.run(["ccache", "--version"], capture_output=True, text=True).stdout
    if request.param == "redis":
        if "redis-storage" not in features:
            pytest.skip("this ccache is built without redis storage")
        with servers.redis(tmp_path / "redis") as url:
            yield url
    else:
        if "http-storage" not in features:
            pytest.skip("this ccache is built without http storage")
        with servers.nginx(tmp_path / "nginx") as n:
            yield n.ccache_url.rstrip("/")


def test_second_machine_gets_every_object_from_the_remote(
    sources: Path, remote: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = compile_all(sources, remote, tmp_path / "machine-a-ccache", monkeypatch)
    assert first.get("cache_miss", 0) == len(SOURCES) and first.get("remote_storage_hit", 0) == 0
    for o in sources.glob("*.o"):
        o.unlink()
    second = compile_all(sources, remote, tmp_path / "machine-b-ccache", monkeypatch)
    assert second.get("remote_storage_hit", 0) == len(SOURCES), second
    assert second.get("cache_miss", 0) == 0 and second.get("local_storage_hit", 0) == 0
    assert all((sources / (n + ".o")).stat().st_size > 0 for n in SOURCES)


def test_remote_that_is_down_only_costs_misses(sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A redis URL nothing listens on: ccache compiles locally and counts remote errors; the build goes on."""
    url = f"redis://127.0.0.1:{servers.free_port()}"
    got = compile_all(sources, url, tmp_path / "ccache", monkeypatch)
    assert got.get("cache_miss", 0) == len(SOURCES)
    assert got.get("remote_storage_error", 0) >= 1
    assert all((sources / (n + ".o")).is_file() for n in SOURCES)


def test_ccache_remote_url_is_checked() -> None:
    with pytest.raises(BuildError, match="remote_storage URL"):
        runner.build_env("ftp://cache.example:21")
    assert "CCACHE_REMOTE_STORAGE" not in runner.build_env(None) or os.environ.get("CCACHE_REMOTE_STORAGE")
