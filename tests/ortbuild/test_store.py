"""The artifact store against real servers (nginx WebDAV on 127.0.0.1, and a shared directory): a build
published by one machine is fetched by another with an empty cache and nothing compiled; every bad answer
(wrong key, truncated or altered file, forged index, no write permission, garbage, a hanging server) is
refused with one line and leaves nothing in the local cache. The build itself is the stand-in ORT tree and
ninja of test_build, linking the onnxruntime wheel's real library (the store checks that it loads)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import onnxruntime
import pytest

from ortprune.elf import ElfFile
from ortprune.errors import StoreError
from ortprune.ortbuild import build_variant, runner
from ortprune.ortbuild import store as st
from ortprune.ortbuild.identity import source_id, toolchain_id, tree_digest
from ortprune.ortbuild.variants import BuildSpec
from ortprune.platform import TARGETS, host_target
from ortprune.runtime import wheel_library
from tests import servers
from tests.ortbuild import fake_ort
from tests.ortbuild.test_build import DEPS_TXT, SEED_CONFIG

VERSION = onnxruntime.__version__


@pytest.fixture
def fake_src(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in ORT tree of the wheel's version whose 'build' links the wheel's real libonnxruntime.so."""
    lib = wheel_library()
    assert lib is not None
    bindir = tmp_path / "bin"
    fake_ort.make_ninja(bindir)
    monkeypatch.setenv("FAKE_LIB", str(lib))
    monkeypatch.setattr(runner, "check_tools", lambda env, cxx="c++": ("c++ (fake) 12", "cmake version 3.31.10"))
    real_env = runner.build_env
    monkeypatch.setattr(
        runner,
        "build_env",
        lambda ccache_remote=None, distcc=None: dict(
            real_env(ccache_remote, distcc), PATH=f"{bindir}{os.pathsep}{real_env()['PATH']}"
        ),
    )
    src = fake_ort.make_source(tmp_path / "ort", DEPS_TXT)
    (src / "VERSION_NUMBER").write_text(VERSION + "\n")
    return src


def use_cache(monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    """A machine's own local cache (ORTPRUNE_CACHE)."""
    monkeypatch.setenv("ORTPRUNE_CACHE", str(path))
    return path


def ninja_runs(cache: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in cache.glob("builds/*/ninja_runs.txt"))


def store_lines(lines: list[str]) -> list[str]:
    """What the build said about the store (not its configure/compile progress)."""
    return [line for line in lines if "store" in line]


def nothing_half_written(cache: Path, key: str) -> None:
    builds = cache / "builds"
    assert not list(builds.glob(".fetch-*")), "a fetch left its temp dir"
    assert not (builds / key / "manifest.json").exists()
    assert not list(builds.glob(f"{key}/store/*"))


@pytest.fixture
def dav(tmp_path: Path) -> Iterator[servers.Nginx]:
    with servers.nginx(tmp_path / "nginx") as n:
        yield n


@pytest.fixture(params=["nginx", "dir"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "dir":
        yield str(tmp_path / "shared-volume" / "store")
    else:
        with servers.nginx(tmp_path / "nginx") as n:
            yield n.url


# ------------------------------------------------------------------------------------------------ keys
def test_key_holds_what_changes_the_bytes_and_nothing_else(tmp_path: Path) -> None:
    a = fake_ort.make_source(tmp_path / "alice" / "ort", DEPS_TXT)
    b = fake_ort.make_source(tmp_path / "bob" / "src" / "onnxruntime", DEPS_TXT)
    # same content at different paths (other users, other cache roots): same identity, same key
    assert tree_digest(a) == tree_digest(b)
    assert source_id(a, a, "1.21.0") == source_id(b, b, "1.21.0")
    # what ortprune itself writes into the tree (deps.txt mapped to local paths) is not an input
    (b / "cmake" / "deps.txt").write_text("abseil_cpp;/home/bob/x.tar.gz;0000\n")
    assert tree_digest(a) == tree_digest(b)
    (b / "tools" / "ci_build" / "build.py").write_text("# patched\n")
    assert tree_digest(a) != tree_digest(b)
    # the compiler's name as invoked does not matter, its version and target do
    gxx = toolchain_id("g++ (Debian 12.2.0-14) 12.2.0", "cmake version 3.31.10", "x86_64-linux-gnu")
    cxx = toolchain_id("c++ (Debian 12.2.0-14) 12.2.0", "cmake version 3.31.10", "x86_64-linux-gnu")
    assert gxx == cxx
    base = BuildSpec("1.21.0", "reduced", SEED_CONFIG, source_id="s1", toolchain=cxx)
    variants = [
        base,
        BuildSpec("1.21.0", "reduced", SEED_CONFIG, source_id="s2", toolchain=cxx),
        BuildSpec(
            "1.21.0",
            "reduced",
            SEED_CONFIG,
            source_id="s1",
            toolchain=toolchain_id("c++ (Debian 13.1.0-1) 13.1.0", "cmake version 3.31.10", "x86_64-linux-gnu"),
        ),
        BuildSpec(
            "1.21.0",
            "reduced",
            SEED_CONFIG,
            source_id="s1",
            toolchain=toolchain_id("c++ (Debian 12.2.0-14) 12.2.0", "cmake version 3.31.10", "aarch64-linux-gnu"),
        ),
        BuildSpec("1.21.0", "reduced", SEED_CONFIG + "ai.onnx;17;Relu\n", source_id="s1", toolchain=cxx),
        BuildSpec("1.21.0", "reduced", SEED_CONFIG, ("--enable_lto",), source_id="s1", toolchain=cxx),
        BuildSpec(
            "1.21.0", "reduced-types", 'ai.onnx;17;Add{"inputs": {"0": ["float"]}}\n', source_id="s1", toolchain=cxx
        ),
    ]
    assert len({s.key() for s in variants}) == len(variants)
    # a config's comments (scan writes the models' paths there) are not an input; its op lines are
    commented = BuildSpec(
        "1.21.0", "reduced", "# from /home/alice/m.onnx\n" + SEED_CONFIG, source_id="s1", toolchain=cxx
    )
    assert commented.key() == base.key() and commented.config_hash != base.config_hash
    # the pre-#17 key is still computed (the lead's full build lives under it)
    assert BuildSpec("1.21.0", "full").legacy_key() == "1.21.0-full-538e61d37e"
    assert len(base.key().rsplit("-", 1)[1]) == 12 != len(base.legacy_key().rsplit("-", 1)[1])


def test_debian_source_is_identified_without_downloading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_cache(monkeypatch, tmp_path / "empty")
    one = source_id("debian:1.21.0", None, "1.21.0")
    assert one == source_id("debian:1.21.0", None, "1.21.0")
    assert not (tmp_path / "empty").exists()  # no download, no extraction


@pytest.mark.parametrize(("variant", "old_config", "config"), [
    ("full", None, None),
    # the old key hashed the config's comments (the models' paths on the machine that scanned them)
    ("reduced", "# from /home/alice/model.onnx\n" + SEED_CONFIG, "# from /home/bob/model.onnx\n" + SEED_CONFIG),
])  # fmt: skip
def test_a_build_under_the_legacy_key_is_found_and_rekeyed(fake_src: Path, tmp_path: Path, variant: str,
                                                          old_config: str | None, config: str | None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    use_cache(monkeypatch, tmp_path / "cache")
    legacy = runner.build(BuildSpec(VERSION, variant, old_config, source_id="x", toolchain="y"), fake_src,
                          log=lambda s: None)  # fmt: skip
    # make it look like a build from before: under the old key, no source/toolchain in the manifest
    old_key = BuildSpec(VERSION, variant, old_config).legacy_key()
    old_dir = tmp_path / "cache" / "builds" / old_key
    Path(legacy.build_dir).rename(old_dir)
    lib = old_dir / "MinSizeRel" / Path(legacy.library).name
    data = json.loads((old_dir / "manifest.json").read_text())
    data.update(key=old_key, source_id="", toolchain="", library=str(lib), build_dir=str(old_dir))
    (old_dir / "manifest.json").write_text(json.dumps(data))
    machine = json.loads(toolchain_id("c++ (fake) 12", "cmake version 3.31.10", "m"))[1]
    spec = BuildSpec(VERSION, variant, config, source_id=source_id(fake_src, fake_src, VERSION),
                     toolchain=toolchain_id("c++ (fake) 12", "cmake version 3.31.10", machine))  # fmt: skip
    assert spec.legacy_key() != old_key or config is None
    found = runner.find_cached(spec, fake_src)
    assert found is not None and found.key == spec.key() and found.library == str(lib)
    assert (old_dir / "manifest.json").exists() and not (tmp_path / "cache" / "builds" / spec.key()).exists()
    other = toolchain_id("c++ (Debian 13.1.0-1) 13.1.0", "cmake version 3.31.10", machine)
    assert runner.find_cached(BuildSpec(VERSION, variant, config, source_id=spec.source_id, toolchain=other),
                              fake_src) is None  # fmt: skip
    assert runner.find_cached(spec, tmp_path / "elsewhere") is None


# --------------------------------------------------------------------------------------- the round trip
def test_build_once_fetch_everywhere(
    fake_src: Path, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []
    cfg = tmp_path / "ops.config"
    cfg.write_text(SEED_CONFIG)
    a = use_cache(monkeypatch, tmp_path / "machine-a")
    built = build_variant(fake_src, "reduced", cfg, store=store_url, log=lines.append)
    assert ninja_runs(a) == 1 and built.fetched_from is None
    assert lines[0].endswith("building here") and lines[-1].startswith(f"published {built.key}")

    b = use_cache(monkeypatch, tmp_path / "machine-b")  # a teammate: empty cache, same inputs
    lines.clear()
    got = build_variant(fake_src, "reduced", cfg, store=store_url, log=lines.append)
    assert ninja_runs(b) == 0, "the teammate compiled"
    assert lines == [
        f"fetched {built.key} from store {st.open_store(store_url).url} ({built.library_bytes:,} bytes, no compile)"
    ]
    assert got.key == built.key and got.fetched_from
    assert Path(got.library).read_bytes() == Path(built.library).read_bytes()
    assert got.config == SEED_CONFIG and len(got.build_py_args) == len(built.build_py_args)
    assert "<cache>/builds/" + built.key in got.build_py_args  # the publisher's paths are not published
    assert Path(got.library).is_relative_to(b)
    # the published artifact: library, stripped library, manifest and config, hashed as a whole
    index = st.open_store(store_url).index(built.key)
    assert set(index.files) == {st.LIBRARY, st.STRIPPED, st.MANIFEST, st.CONFIG}
    assert 0 < int(index.files[st.STRIPPED]["size"]) < built.library_bytes  # type: ignore[call-overload]
    assert (b / "builds" / built.key / "store" / st.CONFIG).read_text() == SEED_CONFIG
    manifest_text = tmp_path / "m.json"
    st.open_store(store_url).download(built.key, index, st.MANIFEST, manifest_text)
    assert str(tmp_path) not in manifest_text.read_text(), "a local path was published"
    # publishing what the store already holds, byte for byte, changes nothing and says nothing
    quiet: list[str] = []
    assert st.publish_or_warn(st.open_store(store_url), got, quiet.append) and quiet == []
    assert st.open_store(store_url).index(built.key) == index
    # a third run on machine b: from its local cache, the store is not asked
    lines.clear()
    again = build_variant(fake_src, "reduced", cfg, store=str(tmp_path / "no-such-store"), log=lines.append)
    assert again.library == got.library and lines[0].startswith("cached:")


def test_stage_results_travel_with_the_build(
    dav: servers.Nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_cache(monkeypatch, tmp_path / "a")
    result = _published(dav.url, tmp_path, monkeypatch)
    stage = tmp_path / "a" / "stages" / "probe-0123.json"
    stage.parent.mkdir(parents=True)
    stage.write_text('{"counts": {"missing": 0}}\n')
    store = st.open_store(dav.url)
    assert st.publish_or_warn(store, result, lambda s: None, {st.stage_file_name(stage): stage})
    use_cache(monkeypatch, tmp_path / "b")
    st.fetch_build(store, result.key)
    assert (tmp_path / "b" / "stages" / "probe-0123.json").read_text() == stage.read_text()


def _published(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> runner.BuildResult:
    """A real library as a finished build of the wheel's version, published to ``url``."""
    lib = wheel_library()
    assert lib is not None
    own = tmp_path / "built" / "libonnxruntime.so"
    own.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(lib, own)
    spec = BuildSpec(VERSION, "full", source_id="src-1", toolchain=toolchain_id("c++ (x) 1", "cmake version 3", "m"))
    result = runner.BuildResult(
        VERSION,
        "full",
        spec.key(),
        [],
        [],
        None,
        None,
        "c++ (x) 1",
        "cmake version 3",
        str(tmp_path / "src"),
        str(own.parent),
        str(own),
        own.stat().st_size,
        [],
        1.0,
        source_id=spec.source_id,
        toolchain=spec.toolchain,
    )
    st.publish_build(st.open_store(url), result)
    return result


# ------------------------------------------------------------------------------------------ bad answers
def _fetch_refused(url: str, key: str, cache: Path, match: str) -> None:
    with pytest.raises(StoreError, match=match):
        st.fetch_build(st.open_store(url, timeout=2), key)
    nothing_half_written(cache, key)


def test_truncated_download_is_refused(dav: servers.Nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _published(dav.url, tmp_path, monkeypatch)
    (blob,) = [p for p in (dav.root / r.key).iterdir() if p.name.endswith("-" + st.LIBRARY)]
    blob.write_bytes(blob.read_bytes()[: blob.stat().st_size // 2])  # the upload broke off half way
    cache = use_cache(monkeypatch, tmp_path / "fresh")
    _fetch_refused(dav.url, r.key, cache, r"truncated")


def test_altered_file_is_refused(dav: servers.Nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _published(dav.url, tmp_path, monkeypatch)
    (blob,) = [p for p in (dav.root / r.key).iterdir() if p.name.endswith("-" + st.LIBRARY)]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    blob.write_bytes(bytes(data))
    cache = use_cache(monkeypatch, tmp_path / "fresh")
    _fetch_refused(dav.url, r.key, cache, r"SHA-256 mismatch")


def test_edited_index_is_refused(dav: servers.Nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _published(dav.url, tmp_path, monkeypatch)
    index = dav.root / r.key / st.INDEX
    data = json.loads(index.read_text())
    data["files"][st.LIBRARY]["size"] += 1
    index.write_text(json.dumps(data))
    cache = use_cache(monkeypatch, tmp_path / "fresh")
    _fetch_refused(dav.url, r.key, cache, r"content hash mismatch")


def test_wrong_key_is_refused(dav: servers.Nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _published(dav.url, tmp_path, monkeypatch)
    other = BuildSpec(VERSION, "no-contrib", source_id="src-1", toolchain=r.toolchain).key()
    # an artifact copied under another key
    shutil.copytree(dav.root / r.key, dav.root / other)
    cache = use_cache(monkeypatch, tmp_path / "fresh")
    _fetch_refused(dav.url, other, cache, rf"is for key '{r.key}'")
    # a consistent index rewritten for the other key: the manifest's own inputs still hash to the first key
    index = json.loads((dav.root / other / st.INDEX).read_text())
    index["key"] = other
    index["content_hash"] = st.content_hash(other, index["files"])
    (dav.root / other / st.INDEX).write_text(json.dumps(index))
    _fetch_refused(dav.url, other, cache, r"describes another build")


def test_garbage_answer_falls_back_to_building(fake_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = use_cache(monkeypatch, tmp_path / "cache")
    lines: list[str] = []
    html = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 20\r\n\r\n<html>welcome</html>"
    with servers.raw_server(html) as url:
        result = build_variant(fake_src, "full", store=url, log=lines.append)
    assert ninja_runs(cache) == 1 and Path(result.library).is_file()
    (line,) = store_lines(lines)
    assert "store unusable, building here and not publishing" in line and "answered garbage" in line
    assert not list((cache / "builds").glob(".fetch-*"))


def test_hanging_server_times_out_and_falls_back(
    fake_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = use_cache(monkeypatch, tmp_path / "cache")
    lines: list[str] = []
    with servers.raw_server(None) as url:
        t0 = time.monotonic()
        with pytest.raises(StoreError, match=r"no answer within 1 s"):
            st.fetch_build(st.open_store(url, timeout=1), "1.21.0-full-000000000000")
        assert time.monotonic() - t0 < 10
        result = build_variant(fake_src, "full", store=st.open_store(url, timeout=1), log=lines.append)
    assert ninja_runs(cache) == 1 and Path(result.library).is_file()
    (line,) = store_lines(lines)
    assert "no answer within 1 s" in line


def test_store_that_is_down_falls_back(fake_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_cache(monkeypatch, tmp_path / "cache")
    lines: list[str] = []
    url = f"http://127.0.0.1:{servers.free_port()}/store/"  # nothing listens there
    build_variant(fake_src, "full", store=url, log=lines.append)
    (line,) = store_lines(lines)
    assert "store unusable" in line and "Connection refused" in line


def test_store_without_write_permission(
    fake_src: Path, dav: servers.Nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_cache(monkeypatch, tmp_path / "cache")
    lines: list[str] = []
    result = build_variant(fake_src, "full", store=dav.readonly_url, log=lines.append)
    assert Path(result.library).is_file()  # the build stands
    assert "could not publish" in lines[-1] and "HTTP 403 (no permission)" in lines[-1]
    assert list(dav.root.iterdir()) == [], "something was written through a read-only store"
    with pytest.raises(StoreError, match="403"):
        st.publish_build(st.open_store(dav.readonly_url), result)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file modes; the HTTP 403 case covers it as root")
def test_directory_store_without_write_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="no write permission"):
            _published(str(root), tmp_path, monkeypatch)
    finally:
        root.chmod(0o755)
    assert list(root.iterdir()) == []


# ------------------------------------------------------------------------------------------ ls / gc / CLI
def test_ls_gc_push_pull(fake_src: Path, dav: servers.Nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ortprune.cli import app

    a = use_cache(monkeypatch, tmp_path / "a")
    built = build_variant(fake_src, "full", log=lambda s: None)  # no store: push it afterwards
    cli = CliRunner()
    res = cli.invoke(app, ["store", "push", "--store", dav.url])
    assert res.exit_code == 0, res.output
    assert f"pushed {built.key}" in res.output
    res = cli.invoke(app, ["store", "ls", "--store", dav.url])
    (row,) = [line.split("\t") for line in res.output.splitlines()]
    assert (
        row[:2] == [built.key, str(built.library_bytes)] and row[3] == "3" and row[-1] == "ok"
    )  # lib, stripped, manifest
    # leftovers: a key whose index never arrived, a temp upload, a blob no index references
    (dav.root / "1.21.0-full-aaaaaaaaaaaa").mkdir()
    (dav.root / "1.21.0-full-aaaaaaaaaaaa" / "0123-libonnxruntime.so").write_bytes(b"half")
    (dav.root / built.key / "_tmp-1234-index.json").write_text("{")
    (dav.root / built.key / "ffff-old.so").write_bytes(b"old")
    store = st.open_store(dav.url)
    assert st.gc(store) == []  # all younger than the grace period: maybe a publish in progress
    listed = {x.key: x for x in st.ls(store)}
    assert not listed["1.21.0-full-aaaaaaaaaaaa"].ok and listed[built.key].ok
    removed = st.gc(store, now=time.time() + 7200)
    assert sorted(removed) == sorted(
        ["1.21.0-full-aaaaaaaaaaaa/", f"{built.key}/_tmp-1234-index.json", f"{built.key}/ffff-old.so"]
    )
    assert store.artifact_keys() == [built.key]
    # pull on another machine
    b = use_cache(monkeypatch, tmp_path / "b")
    res = cli.invoke(app, ["store", "pull", "--store", dav.url, built.key])
    assert res.exit_code == 0, res.output
    assert (b / "builds" / built.key / "manifest.json").exists()
    assert ninja_runs(a) == 1 and ninja_runs(b) == 0
    assert st.gc(store, older_than_days=0.0, now=time.time() + 10) == []  # published a moment ago: kept
    assert st.gc(store, older_than_days=0.0, now=time.time() + 10, force=True) == [f"{built.key}/"]
    assert store.artifact_keys() == []


# ------------------------------------------------------------------------------------------- cross builds
def test_a_cross_build_is_published_and_fetched_back(
    aarch64_official: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A linux-aarch64 library cannot be loaded into this x86-64 process: the publish check runs it the way
    the rest of ortprune runs the target's libraries (under qemu-user), and the stripped copy is made with the
    target's strip. The official aarch64 library stands in for a cross build's result."""
    use_cache(monkeypatch, tmp_path / "a")
    own = tmp_path / "built" / "libonnxruntime.so"
    own.parent.mkdir()
    shutil.copy2(aarch64_official, own)
    spec = BuildSpec("1.21.0", "full", source_id="src-1", toolchain=toolchain_id("gcc (x) 1", "cmake 3", "m"),
                     target="linux-aarch64")  # fmt: skip
    result = runner.BuildResult("1.21.0", "full", spec.key(), [], [], None, None, "gcc (x) 1", "cmake 3",
                                str(tmp_path / "src"), str(own.parent), str(own), own.stat().st_size, [], 1.0,
                                source_id=spec.source_id, toolchain=spec.toolchain, target="linux-aarch64")  # fmt: skip
    url = str(tmp_path / "shared-volume" / "store")
    lines: list[str] = []
    assert st.publish_or_warn(st.open_store(url), result, lines.append)
    assert lines == [f"published {spec.key()} to store {url}"]
    use_cache(monkeypatch, tmp_path / "b")
    got = st.fetch_build(st.open_store(url), spec.key(), spec)
    assert got.target == "linux-aarch64" and got.fetched_from
    assert Path(got.library).read_bytes() == own.read_bytes()
    with ElfFile(got.stripped_library or "", sections=False) as stripped:  # made by the target's strip
        assert stripped.machine == TARGETS["linux-aarch64"].elf_machine
    assert 0 < (got.stripped_bytes or 0) < got.library_bytes
    # a library that is not the build it claims to be is still refused, for a cross build too
    result.ort_version = "1.20.0"
    with pytest.raises(StoreError, match=r"does not load as ORT 1\.20\.0 \(it is 1\.21\.0\)"):
        st.publish_build(st.open_store(tmp_path / "other-store"), result)


def test_a_cross_build_is_refused_when_its_library_is_for_another_machine_or_cannot_be_stripped(
    aarch64_official: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_cache(monkeypatch, tmp_path / "a")
    lib = wheel_library()
    assert lib is not None
    own = tmp_path / "built" / "libonnxruntime.so"
    own.parent.mkdir()
    shutil.copy2(lib, own)  # this machine's library, claimed to be a linux-aarch64 build
    at = (str(tmp_path), str(own.parent), str(own), own.stat().st_size)
    result = runner.BuildResult("1.21.0", "full", "k", [], [], None, None, "gcc", "cmake", *at, [], 1.0,
                                target="linux-aarch64")  # fmt: skip
    lines: list[str] = []
    assert not st.publish_or_warn(st.open_store(tmp_path / "store"), result, lines.append)
    assert len(lines) == 1 and f"is built for {host_target()}, the build is for linux-aarch64" in lines[0]
    # the real aarch64 library, on a machine with qemu and the cross compiler but not the cross strip
    shutil.copy2(aarch64_official, own)
    result.library_bytes = own.stat().st_size
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for exe in ("aarch64-linux-gnu-gcc", TARGETS["linux-aarch64"].qemu):
        (bindir / exe).symlink_to(shutil.which(exe) or exe)
    monkeypatch.setenv("PATH", str(bindir))
    lines.clear()
    assert not st.publish_or_warn(st.open_store(tmp_path / "store"), result, lines.append)
    assert (
        len(lines) == 1
        and "no stripped copy to publish: --target linux-aarch64 needs aarch64-linux-gnu-strip" in lines[0]
    )
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("index.json"))
