"""``--distcc``: ccache's misses compile on distcc helpers (``CCACHE_PREFIX=distcc``), against a real distccd
on 127.0.0.1. A small CMake + ninja project, configured as ORT's build is (ccache as the compiler launcher,
MinSizeRel), is compiled with exactly the environment ``runner.build_env`` gives an ORT build; distccd's log
says which objects it compiled."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ortprune.errors import BuildError
from ortprune.ortbuild import distcc, runner
from ortprune.ortbuild.variants import BuildSpec
from tests import servers
from tests.ortbuild.test_build import fake_env  # noqa: F401
from tests.ortbuild.test_ccache_remote import stats

SOURCES = {
    "add.cpp": "int add(int a, int b) { return a + b; }\n",
    "vec.cpp": "#include <vector>\nstd::vector<int> make(int n) { return std::vector<int>(n, 7); }\n",
    "str.cpp": '#include <string>\nstd::string greet(const std::string& s) { return "hi " + s; }\n',
}
CMAKELISTS = """cmake_minimum_required(VERSION 3.28)
project(tiny CXX)
add_library(tiny STATIC add.cpp vec.cpp str.cpp)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sources under a cache root (CCACHE_BASEDIR) and distcc's state dir in tmp."""
    if not shutil.which("ccache") or not shutil.which("c++"):
        pytest.skip("ccache and a C++ compiler are needed (apt-get install ccache g++)")
    root = tmp_path / "cache"
    src = root / "src"
    src.mkdir(parents=True)
    for name, text in {**SOURCES, "CMakeLists.txt": CMAKELISTS}.items():
        (src / name).write_text(text)
    monkeypatch.setenv("ORTPRUNE_CACHE", str(root))
    (tmp_path / "distcc-state").mkdir()
    monkeypatch.setenv("DISTCC_DIR", str(tmp_path / "distcc-state"))
    for var in ("CCACHE_PREFIX", "DISTCC_HOSTS", "CCACHE_REMOTE_STORAGE"):
        monkeypatch.delenv(var, raising=False)
    return src


def build_tree(src: Path, bdir: Path, env: dict[str, str]) -> dict[str, bytes]:
    """Configure ``src`` as ORT's build is configured and build it with ninja's default ``-j`` for ``env``."""
    for tool in ("cmake", "ninja"):
        if not shutil.which(tool, path=env["PATH"]):
            pytest.skip(f"{tool} is needed (pip install 'cmake<4' ninja)")
    configure = ["cmake", "-G", "Ninja", "-S", str(src), "-B", str(bdir), "-DCMAKE_BUILD_TYPE=MinSizeRel"]
    configure += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"]
    subprocess.run(configure, env=env, check=True, capture_output=True)
    jobs = distcc.default_jobs(env) or 1
    subprocess.run(["ninja", "-C", str(bdir), f"-j{jobs}"], env=env, check=True, capture_output=True)
    return {o.name.removesuffix(".o"): o.read_bytes() for o in bdir.rglob("*.cpp.o")}


def test_objects_compile_on_the_helper_and_equal_local_ones(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with servers.distccd(tmp_path / "distccd", jobs=3) as helper:
        monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "ccache-a"))
        env = runner.build_env(None, helper.hosts)
        assert Path(env["CCACHE_PREFIX"]).name == "distcc" and env["DISTCC_HOSTS"] == helper.hosts
        assert distcc.default_jobs(env) == 3  # distcc -j: the helper's job limit
        assert distcc.check_helpers(env, "c++", log=lambda s: None) == {helper.hosts: "ok"}
        assert helper.compiled() == ["canary.cpp"]

        remote = build_tree(project, project.parent / "build-distcc", env)
        assert sorted(helper.compiled()[1:]) == sorted(SOURCES)  # every object compiled by distccd
        assert sum("COMPILE_OK" in line for line in helper.text()) == 1 + len(SOURCES)
        assert stats(env).get("cache_miss", 0) == len(SOURCES)

        # the same compiler gives the same bytes: a local build (no distcc, empty ccache) matches exactly
        monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "ccache-b"))
        local_env = runner.build_env()
        assert "DISTCC_HOSTS" not in local_env and "CCACHE_PREFIX" not in local_env
        local = build_tree(project, project.parent / "build-local", local_env)
        assert sorted(remote) == sorted(local) == sorted(SOURCES) and remote == local

        # ccache answers before distcc: a rebuild with the first cache sends nothing to the helper
        monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "ccache-a"))
        env = runner.build_env(None, helper.hosts)
        subprocess.run(["ninja", "-C", str(project.parent / "build-distcc"), "-t", "clean"], env=env, check=True)
        again = build_tree(project, project.parent / "build-distcc", env)
        assert again == remote and len(helper.compiled()) == 1 + len(SOURCES)
        assert stats(env).get("direct_cache_hit", 0) + stats(env).get("preprocessed_cache_hit", 0) == len(SOURCES)


def test_a_helper_that_is_down_only_costs_local_compiles(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not shutil.which("distcc"):
        pytest.skip("distcc is not installed (apt-get install distcc; make test-servers)")
    monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "ccache"))
    hosts = f"127.0.0.1:{servers.free_port()}"  # nothing listens there
    env = runner.build_env(None, hosts)
    notes: list[str] = []
    status = distcc.check_helpers(env, "c++", log=notes.append)
    assert status[hosts].startswith("left out") and hosts in notes[0]
    assert "CCACHE_PREFIX" not in env and "DISTCC_HOSTS" not in env  # none left: plain ccache
    objects = build_tree(project, project.parent / "build", env)
    assert sorted(objects) == sorted(SOURCES) and all(objects.values())


def test_helpers_that_are_down_or_hang_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One live helper, one refusing connections, one accepting and never answering: the build keeps the first."""
    (tmp_path / "distcc-state").mkdir()
    monkeypatch.setenv("DISTCC_DIR", str(tmp_path / "distcc-state"))
    monkeypatch.setattr(distcc, "CANARY_TIMEOUT", 2)
    down = f"127.0.0.1:{servers.free_port()}"
    with servers.distccd(tmp_path / "distccd") as helper, servers.raw_server(None) as silent_url:
        silent = silent_url.removeprefix("http://").split("/")[0]
        env = runner.build_env(None, f"--randomize {down} {helper.hosts} {silent}/4")
        status = distcc.check_helpers(env, "c++", log=lambda s: None)
    assert status[helper.hosts] == "ok" and status[down].startswith("left out")
    assert status[f"{silent}/4"].startswith("left out") and "IO timeout" in status[f"{silent}/4"] + str(status)
    assert env["DISTCC_HOSTS"] == f"--randomize {helper.hosts}"


def test_a_helper_with_another_compiler_is_refused(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Here the local c++ is the odd one (it drops the compiler's ident from .comment): the helper's test object
    differs, so its objects would not be this machine's under the same build key."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    real = shutil.which("c++")
    (bindir / "c++").write_text(f'#!/bin/sh\nexec {real} -fno-ident "$@"\n')
    (bindir / "c++").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with servers.distccd(tmp_path / "distccd") as helper:
        env = runner.build_env(None, helper.hosts)
        with pytest.raises(BuildError, match=rf"distcc helper {helper.hosts} compiles with another compiler"):
            distcc.check_helpers(env, "c++", log=lambda s: None)


@pytest.mark.parametrize(
    "hosts, message",
    [
        ("", "names no host"),
        ("   ", "names no host"),
        ("--randomize", "names no host"),
        ("build1:99999", "port 99999 .* not between 1 and 65535"),
        ("build1:0", "port 0"),
        ("build1/0", "job limit 0"),
        ("build1/100000", "job limit 100000"),
        ("--localslots=0 build1", "slot count 0"),
        ("999.1.1.1", "not a valid IPv4"),
        ("[::zz]:3632", "not a distcc host"),
        ("http://build1:3632", "not a distcc host"),
        ("build1 build2;rm", "'build2;rm' is not a distcc host"),
        ("build1,gzip", "not a distcc host"),
    ],
)
def test_host_lists_are_checked(hosts: str, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        distcc.parse_hosts(hosts)


def test_host_list_forms_of_distcc_1() -> None:
    for hosts in (
        "localhost/2 build1 build2:4000/8,lzo",
        "10.0.0.1/4:3632",
        "user@build1/8:/usr/bin/distccd,lzo @build2",
        "[::1]:3632/2",
        "--randomize --localslots=2 build1 build2",
        "+zeroconf",
    ):
        assert distcc.parse_hosts(hosts) == hosts
    assert distcc.parse_hosts("  build1 \n build2 ") == "build1 build2"


def test_distcc_missing_is_named_before_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no distcc (build_env adds only this interpreter's bin)
    if shutil.which("distcc", path=runner.build_env()["PATH"]):
        pytest.skip("distcc is installed beside this interpreter")
    with pytest.raises(BuildError, match="apt-get install distcc"):
        runner.build_env(None, "build1")
    with pytest.raises(BuildError, match="names no host"):  # a bad list is named even without distcc
        runner.build_env(None, "")


def test_distcc_changes_neither_the_key_nor_the_cached_build(
    fake_env: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ORT's build (stand-in build.py and ninja) with and without distcc: one key, one build; a distcc build
    checks its helper, runs ninja with ``distcc -j`` jobs and records the hosts in its run."""
    (tmp_path / "distcc-state").mkdir()
    monkeypatch.setenv("DISTCC_DIR", str(tmp_path / "distcc-state"))
    spec = BuildSpec("1.21.0", "full")
    with servers.distccd(tmp_path / "distccd", jobs=3) as helper:
        notes: list[str] = []
        result = runner.build(spec, fake_env, log=notes.append, distcc=helper.hosts)
        assert helper.compiled() == ["canary.cpp"]  # the helper was checked before the build
        assert any("(ninja -j3 onnxruntime)" in n for n in notes), notes
        assert result.key == spec.key() and result.runs[-1]["distcc"] == helper.hosts
        plain = runner.build(spec, fake_env, log=notes.append)  # the same build, found by the same key
        assert plain == result and notes[-1].startswith("cached:")
        again = runner.build(BuildSpec("1.21.0", "full"), fake_env, log=notes.append, distcc=helper.hosts)
        assert again == result and helper.compiled() == ["canary.cpp"]  # cached: no helper check either
    other = BuildSpec("1.21.0", "no-contrib")
    notes.clear()
    runner.build(other, fake_env, log=notes.append)
    assert any(f"(ninja -j{os.cpu_count()} onnxruntime)" in n for n in notes) and "distcc" not in str(notes)


def test_slim_passes_the_hosts_to_every_build() -> None:
    from ortprune.slim import default_stages

    stages = default_stages(distcc="build1:3632/8")
    assert getattr(stages.build, "keywords", {}).get("distcc") == "build1:3632/8"
