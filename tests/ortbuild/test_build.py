"""ortprune build without a real ORT build: deps.txt mapping, build.py arguments, progress, failures,
resumption and the manifest, against a stand-in source tree and ninja."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from ortprune.cache import cache_dir
from ortprune.catalog import VARIANTS
from ortprune.errors import BuildError
from ortprune.ortbuild import deps as deps_mod
from ortprune.ortbuild import runner
from ortprune.ortbuild.deps import DepsDir, extract_deb, make_utf8_range_archive, rewrite_deps_txt
from ortprune.ortbuild.variants import BuildSpec, build_py_args
from tests.ortbuild import fake_ort

DEPS_TXT = """\
#Name;Url;SHA1
#URLs can be either https URLs or local file paths
abseil_cpp;https://github.com/abseil/abseil-cpp/archive/refs/tags/20240722.0.zip;36ee53eb1466fb6e593fc5c286680de31f8a494a
eigen;https://gitlab.com/libeigen/eigen/-/archive/1d8b/eigen-1d8b.zip;5ea4d05e62d7f954a46b3213f9b2535bdd866803
protobuf;https://github.com/protocolbuffers/protobuf/archive/refs/tags/v21.12.zip;7cf2733949036c7d52fda017badcab093fe73bfa
pybind11;https://github.com/pybind/pybind11/archive/refs/tags/v2.13.6.zip;f780292da9db273c8ef06ccf5fd4b623624143e9
"""
SEED_CONFIG = "ai.onnx;17;Add,MatMul\ncom.microsoft;1;FusedMatMul\n"


def test_deps_txt_points_at_local_archives_with_their_own_sha1(tmp_path: Path) -> None:
    a = tmp_path / "abseil.tar.gz"
    a.write_bytes(b"abseil bytes")
    e = tmp_path / "eigen.tar.bz2"
    e.write_bytes(b"eigen bytes")
    out = rewrite_deps_txt(DEPS_TXT, {"abseil_cpp": a, "eigen": e})
    lines = {line.split(";")[0]: line.split(";") for line in out.splitlines() if not line.startswith("#")}
    assert lines["abseil_cpp"][1:] == [str(a), hashlib.sha1(b"abseil bytes").hexdigest()]
    assert lines["eigen"][1:] == [str(e), hashlib.sha1(b"eigen bytes").hexdigest()]
    # untouched entries and comments stay as they were
    assert lines["pybind11"] == DEPS_TXT.splitlines()[5].split(";")
    assert out.splitlines()[:2] == DEPS_TXT.splitlines()[:2]


def test_deps_txt_rejects_unknown_names_and_missing_archives(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no entry named abseil"):
        rewrite_deps_txt(DEPS_TXT, {"abseil": tmp_path / "x"})
    with pytest.raises(BuildError, match="archive for 'eigen' is missing"):
        rewrite_deps_txt(DEPS_TXT, {"eigen": tmp_path / "nope.tar"})


def test_apply_deps_keeps_the_original(tmp_path: Path) -> None:
    src = fake_ort.make_source(tmp_path / "ort", DEPS_TXT)
    a = tmp_path / "abseil.tar.gz"
    a.write_bytes(b"x")
    d = DepsDir(tmp_path, {"abseil_cpp": a}, tmp_path)
    deps_mod.apply_deps(src, d)
    deps_mod.apply_deps(src, d)  # idempotent: maps from the kept original
    assert (src / "cmake/deps.txt.orig").read_text() == DEPS_TXT
    assert str(a) in (src / "cmake/deps.txt").read_text()


def test_utf8_range_archive_is_reproducible(tmp_path: Path) -> None:
    proto = tmp_path / "protobuf.tar.gz"
    with tarfile.open(proto, "w:gz") as tar:
        for name, data in [
            ("protobuf-3.21.12/third_party/utf8_range/utf8_range.h", b"/* h */"),
            ("protobuf-3.21.12/third_party/utf8_range/naive.c", b"int x;"),
            ("protobuf-3.21.12/src/other.cc", b""),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    a = make_utf8_range_archive(proto, tmp_path / "a.tar.gz")
    with tarfile.open(a) as tar:
        assert sorted(tar.getnames()) == ["utf8_range/CMakeLists.txt", "utf8_range/naive.c", "utf8_range/utf8_range.h"]
        cm = tar.extractfile("utf8_range/CMakeLists.txt")
        assert cm is not None and b"add_library(utf8_range INTERFACE)" in cm.read()
    b = make_utf8_range_archive(proto, tmp_path / "b.tar.gz")
    assert deps_mod.sha1(a) != "" and a.read_bytes()[10:] == b.read_bytes()[10:]  # gzip header holds no name/time


def test_extract_deb(tmp_path: Path) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        info = tarfile.TarInfo("./usr/include/safeint/SafeInt.hpp")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"// si"))
    body = data.getvalue()

    def member(name: str, payload: bytes) -> bytes:
        head = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(payload):<10}`\n".encode()
        return head + payload + (b"\n" if len(payload) % 2 else b"")

    deb = tmp_path / "x.deb"
    deb.write_bytes(b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("data.tar.xz", body))
    out = extract_deb(deb, tmp_path / "unpacked")
    assert (out / "usr/include/safeint/SafeInt.hpp").read_text() == "// si"
    (tmp_path / "bad.deb").write_bytes(b"PK\x03\x04")
    with pytest.raises(BuildError, match=r"not a \.deb"):
        extract_deb(tmp_path / "bad.deb", tmp_path / "u2")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_build_py_args_per_variant(tmp_path: Path, name: str) -> None:
    typed = 'ai.onnx;17;Add{"inputs": {"0": ["float"]}}\n'
    config = typed if VARIANTS[name].needs_config else None
    keep = ("ConstantFolding",) if "optimizers" in VARIANTS[name].prune else ()
    spec = BuildSpec(
        "1.21.0", name, config, ("--enable_lto",), cmake_defines=("safeint_SOURCE_DIR=/s",), keep_transformers=keep
    )
    args = build_py_args(spec, tmp_path / "b", tmp_path / "ops.config" if config else None, parallel=2, as_root=True)
    assert args[:4] == ["--build_dir", str(tmp_path / "b"), "--config", "MinSizeRel"]
    for flag in ["--build_shared_lib", "--skip_tests", "--update", "--allow_running_as_root", "--enable_lto"]:
        assert flag in args
    assert args[args.index("--cmake_generator") + 1] == "Ninja"
    defines = args[args.index("--cmake_extra_defines") + 1 :]
    assert "onnxruntime_BUILD_UNIT_TESTS=OFF" in defines and "safeint_SOURCE_DIR=/s" in defines
    assert "CMAKE_CXX_COMPILER_LAUNCHER=ccache" in defines
    expected = {
        "full": set(),
        "no-contrib": {"--disable_contrib_ops"},
        "reduced": {"--include_ops_by_config"},
        "reduced-types": {"--include_ops_by_config", "--enable_reduced_operator_type_support"},
        "reduced-pruned": {"--include_ops_by_config"},  # + source transforms (ortbuild.prune), no build.py flag
        "reduced-max": {"--include_ops_by_config", "--disable_ml_ops", "--disable_rtti"},
        "minimal": {
            "--include_ops_by_config",
            "--enable_reduced_operator_type_support",
            "--minimal_build",
            "--disable_exceptions",
            "--disable_ml_ops",
            "--disable_rtti",
        },
    }[name]
    optional = {
        "--disable_contrib_ops",
        "--include_ops_by_config",
        "--enable_reduced_operator_type_support",
        "--minimal_build",
        "--disable_exceptions",
        "--disable_ml_ops",
        "--disable_rtti",
    }
    assert {a for a in args if a in optional} == expected
    if config:
        assert args[args.index("--include_ops_by_config") + 1] == str(tmp_path / "ops.config")


def test_spec_validation() -> None:
    with pytest.raises(BuildError, match="needs --config"):
        BuildSpec("1.21.0", "reduced")
    with pytest.raises(BuildError, match="takes no --config"):
        BuildSpec("1.21.0", "full", SEED_CONFIG)
    with pytest.raises(BuildError, match="per-op type info"):
        BuildSpec("1.21.0", "reduced-types", SEED_CONFIG)
    with pytest.raises(BuildError, match="unsupported extra flag"):
        BuildSpec("1.21.0", "full", extra_flags=("--use_cuda",))
    with pytest.raises(BuildError, match="unknown variant"):
        BuildSpec("1.21.0", "tiny")
    with pytest.raises(BuildError, match="minimal build"):
        BuildSpec("1.21.0", "minimal", SEED_CONFIG, wheel=True)
    # the cache key follows everything that changes the output (a comment in the config does not)
    specs = [
        BuildSpec("1.21.0", "reduced", SEED_CONFIG),
        BuildSpec("1.21.0", "reduced", SEED_CONFIG + "ai.onnx;17;Relu\n"),
        BuildSpec("1.21.0", "full"),
        BuildSpec("1.21.0", "full", extra_flags=("--enable_lto",)),
    ]
    keys = {s.key() for s in specs}
    assert len(keys) == 4
    assert BuildSpec("1.21.0", "reduced", SEED_CONFIG + "#\n").key() == specs[0].key()


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in source tree, ninja on PATH, the cache in tmp, and tool checks passed."""
    bindir = tmp_path / "bin"
    fake_ort.make_ninja(bindir)
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_LIB", fake_ort.system_lib())
    real_env = runner.build_env  # its ccache and distcc variables, with the fake ninja first on PATH
    monkeypatch.setattr(
        runner,
        "build_env",
        lambda ccache_remote=None, distcc=None: dict(
            real_env(ccache_remote, distcc), PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}"
        ),
    )
    monkeypatch.setattr(runner, "check_tools", lambda env, cxx="c++": ("g++ (fake) 12", "cmake version 3.31"))
    return fake_ort.make_source(tmp_path / "ort", DEPS_TXT)


def test_build_runs_reports_progress_and_writes_manifest(fake_env: Path) -> None:
    seen: list[tuple[int, int]] = []
    spec = BuildSpec("1.21.0", "reduced", SEED_CONFIG)
    result = runner.build(spec, fake_env, progress=lambda i, n, what: seen.append((i, n)), log=lambda s: None)
    assert seen == [(i, 10) for i in range(1, 11)]
    assert result.library_bytes == Path(fake_ort.system_lib()).stat().st_size
    assert result.variant == "reduced" and result.config == SEED_CONFIG and result.steps == 10
    assert "--include_ops_by_config" in result.build_py_args
    assert Path(result.build_dir, "ops.config").read_text() == SEED_CONFIG
    assert set(result.needed) <= {"libc.so.6", "ld-linux-x86-64.so.2"}
    again = runner.build(spec, fake_env, log=lambda s: None)  # cached: no configure, no ninja
    assert again == result
    assert Path(result.build_dir, "build_py_calls.txt").read_text().count("\n") == 1


def test_interrupted_build_continues(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = BuildSpec("1.21.0", "full")
    monkeypatch.setenv("FAKE_NINJA_FAIL_AT", "6")
    with pytest.raises(BuildError) as e:
        runner.build(spec, fake_env, log=lambda s: None)
    message = str(e.value)
    assert "ninja failed" in message and "error: something broke in kernel 6" in message
    assert "build.log" in message
    monkeypatch.delenv("FAKE_NINJA_FAIL_AT")
    seen: list[int] = []
    result = runner.build(spec, fake_env, progress=lambda i, n, w: seen.append(i), log=lambda s: None)
    assert seen == [6, 7, 8, 9, 10]  # continued, not restarted
    assert result.steps == 10
    bdir = Path(result.build_dir)
    assert bdir.joinpath("build_py_calls.txt").read_text().count("\n") == 1  # configured once
    assert len(result.runs) == 2 and result.wall_time_s == pytest.approx(sum(r["seconds"] for r in result.runs))


def test_configure_failure_shows_the_last_40_lines(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CONFIGURE_FAIL", "1")
    with pytest.raises(BuildError) as e:
        runner.build(BuildSpec("1.21.0", "no-contrib"), fake_env, log=lambda s: None)
    lines = str(e.value).splitlines()
    assert "build.py failed (exit 1)" in lines[0]
    assert lines[-1] == "CMake Error: Could NOT find SomethingImportant"
    assert len(lines) == 1 + 40 and lines[1] == "cmake noise line 21"
    log = Path(lines[0].split("full log: ")[1])
    assert "cmake noise line 0" in log.read_text()  # the whole output is kept


def test_non_system_dependency_is_refused(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "dt_needed", lambda lib: ["libc.so.6", "libprotobuf.so.32"])
    with pytest.raises(BuildError, match=r"libprotobuf\.so\.32"):
        runner.build(BuildSpec("1.21.0", "full"), fake_env, log=lambda s: None)


def test_check_tools_names_every_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORTPRUNE_SYSTEM_INCLUDE", "/nonexistent")
    with pytest.raises(BuildError) as e:
        runner.check_tools({"PATH": "/nonexistent"})
    text = str(e.value)
    assert "pip install 'cmake<4'" in text and "pip install ninja" in text and "libmsgsl-dev" in text


def test_export_for_ort_dylib_path(fake_env: Path, tmp_path: Path) -> None:
    result = runner.build(BuildSpec("1.21.0", "full"), fake_env, log=lambda s: None)
    lib = runner.export(result, tmp_path / "out")
    assert lib.name == "libonnxruntime.so" and lib.stat().st_size == result.library_bytes
    assert runner.BuildResult.load(tmp_path / "out" / "manifest.json") == result


def test_results_table_in_the_seed_form(fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ortprune.analyze.builds import find_manifests, measured_builds
    from ortprune.report.results import results_markdown

    full = runner.build(BuildSpec("1.21.0", "full"), fake_env, log=lambda s: None)
    reduced = runner.build(BuildSpec("1.21.0", "reduced", SEED_CONFIG), fake_env, log=lambda s: None)
    # make the reduced library really smaller, as a real one is
    Path(reduced.library).write_bytes(Path(reduced.library).read_bytes()[: full.library_bytes // 2])
    reduced.library_bytes = full.library_bytes // 2
    reduced.save(Path(reduced.build_dir) / "manifest.json")
    found = find_manifests("1.21.0")
    assert {r.variant for r in found} == {"full", "reduced"}
    monkeypatch.chdir(tmp_path)
    Path("seed.config").write_text(SEED_CONFIG)
    text = results_markdown(measured_builds("1.21.0", {"seed 13-op config": Path("seed.config")}))
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| Build | Size (bytes) | Size (MiB) | vs Full")
    assert rows[1].startswith(f"| full | {full.library_bytes:,} |") and "| baseline |" in rows[1]
    assert rows[2].startswith(f"| reduced: seed 13-op config | {reduced.library_bytes:,} |") and "| -50.0% |" in rows[2]
    assert "`ortprune build --source debian:1.21.0 --variant reduced --config seed.config`" in text
    assert SEED_CONFIG.strip() in text

    # with the official release library of the version in the cache, it is the first row and the baseline
    import hashlib

    from ortprune.cache import cache_dir
    from ortprune.ortbuild.official import OfficialLibrary
    from ortprune.platform import host_target

    where = cache_dir("official", f"1.21.0-{host_target()}")
    where.mkdir(parents=True)
    lib = where / "libonnxruntime.so.1.21.0"
    lib.write_bytes(Path(full.library).read_bytes() * 2)
    data = lib.read_bytes()
    record = OfficialLibrary("1.21.0", host_target(), "onnxruntime-1.21.0-cp311-cp311-manylinux.whl", "0" * 64,
                             str(lib), hashlib.sha256(data).hexdigest(), len(data))  # fmt: skip
    (where / "official.json").write_text(json.dumps(record.to_dict()))
    text = results_markdown(measured_builds("1.21.0", {"seed 13-op config": Path("seed.config")}))
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| Build | Size (bytes) | Size (MiB) | vs official release")
    assert rows[1].startswith(f"| official release | {len(data):,} |") and "| baseline |" in rows[1]
    assert "| full |" in rows[2] and "| -50.0% |" in rows[2] and "| -75.0% |" in rows[3]
    assert "pip download onnxruntime==1.21.0" in text


def test_results_names_a_build_by_its_config_ops_not_its_comments(fake_env: Path, tmp_path: Path) -> None:
    """A committed config whose comment lines were edited (e.g. the scanned models' paths) still names the
    build made from it: the build key ignores comments, so the results page must too."""
    from ortprune.analyze.builds import measured_builds

    runner.build(BuildSpec("1.21.0", "full"), fake_env, log=lambda s: None)
    built_from = "# - /somewhere/model.onnx\n" + SEED_CONFIG
    runner.build(BuildSpec("1.21.0", "reduced", built_from), fake_env, log=lambda s: None)
    edited = tmp_path / "seed.config"
    edited.write_text("# - <site-packages>/model.onnx\n" + SEED_CONFIG)
    names = [m.label for m in measured_builds("1.21.0", {"seed": edited})]
    assert names == ["full", "reduced: seed"]
    other = tmp_path / "other.config"
    other.write_text("# - /somewhere/model.onnx\nai.onnx;17;Add\n")
    assert [m.label for m in measured_builds("1.21.0", {"other": other})] == ["full"]


def test_debian_deps_map_onto_ort_1_21_deps_txt(tmp_path: Path) -> None:
    """The real thing, minus the compile: fetch the pool's archives (cached) and map them onto the
    deps.txt of ORT 1.21.0's own source tarball."""
    from ortprune.ortbuild.deps import fetch_debian
    from ortprune.ortbuild.sources import download, release

    deps = fetch_debian("1.21.0", tmp_path / "deps", quiet=True)
    assert set(deps.archives) == {"abseil_cpp", "protobuf", "onnx", "re2", "flatbuffers", "eigen", "utf8_range"}
    assert (deps.safeint_include / "SafeInt.hpp").is_file()
    with tarfile.open(download(release("1.21.0").source, quiet=True)) as tar:
        member = next(m for m in tar if m.name.endswith("/cmake/deps.txt"))
        f = tar.extractfile(member)
        assert f is not None
        original = f.read().decode()
    assert original == release("1.21.0").deps_txt()  # the recorded copy that names debian: builds offline
    mapped = rewrite_deps_txt(original, deps.archives)
    entries = {line.split(";")[0]: line.split(";") for line in mapped.splitlines() if not line.startswith("#")}
    for name, path in deps.archives.items():
        assert entries[name][1] == str(path.resolve()) and entries[name][2] == deps_mod.sha1(path)
    assert entries["pybind11"][1].startswith("https://")  # not needed offline: left alone
    assert deps_mod.load_deps_dir(tmp_path / "deps", "1.21.0").archives == deps.archives


@pytest.fixture
def include_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A system include dir the test controls (the machine's /usr/include must not decide the verdict)."""
    d = tmp_path / "include"
    d.mkdir()
    monkeypatch.setenv("ORTPRUNE_SYSTEM_INCLUDE", str(d))
    return d


def test_wheel_build_without_dlpack_names_the_debian_package(fake_env: Path, include_dir: Path) -> None:
    with pytest.raises(BuildError, match="libdlpack-dev") as e:
        runner.build(BuildSpec("1.21.0", "reduced", SEED_CONFIG, wheel=True), fake_env, log=lambda s: None)
    assert str(include_dir / "dlpack/dlpack.h") in str(e.value)
    assert not (fake_env.parent / "cache" / "builds").exists()  # refused before anything started
    assert deps_mod.missing_system_headers(wheel=True) == [*(p for _, p in deps_mod.SYSTEM_HEADERS.values()),
                                                           "libdlpack-dev"]  # fmt: skip


def test_wheel_build_finds_pybind11_from_pypi_and_runs_build_py_build(fake_env: Path, include_dir: Path) -> None:
    pytest.importorskip("pybind11")
    (include_dir / "dlpack").mkdir()
    (include_dir / "dlpack" / "dlpack.h").write_text("/* dlpack */\n")
    result = runner.build(BuildSpec("1.21.0", "reduced", SEED_CONFIG, wheel=True), fake_env, log=lambda s: None)
    calls = Path(result.build_dir, "build_py_calls.txt").read_text().splitlines()
    assert len(calls) == 2  # configure, then build.py --build --build_wheel (setup.py bdist_wheel)
    assert "--update" in calls[0].split() and "--build" in calls[1].split() and "--update" not in calls[1].split()
    assert all("--build_wheel" in c.split() for c in calls)
    assert "pybind11_project_DIR=" in calls[0]
    assert result.wheel_file and result.wheel_file.endswith(".whl")
    runner.export(result, fake_env.parent / "out")
    assert (fake_env.parent / "out" / Path(result.wheel_file).name).read_bytes() == b"PK fake wheel"


def test_pruned_build_transforms_only_its_build_tree(fake_env: Path) -> None:
    from tests.ortbuild.test_prune import ML, ONNX, fake_source, opset_header

    fake_source(fake_env)
    config = "ai.onnx;17;Add,Gather\ncom.microsoft;1;BiasGelu\n"
    spec = BuildSpec("1.21.0", "reduced-pruned", config, keep_transformers=("ConstantFolding",))
    defs = cache_dir("builds", spec.key(), "MinSizeRel", "_deps", "onnx-src", "onnx", "defs")
    defs.mkdir(parents=True)  # what configure extracts from onnx's archive
    (defs / "operator_sets.h").write_text(opset_header("Onnx", ONNX))
    (defs / "operator_sets_ml.h").write_text(opset_header("OnnxML", ML))
    source_before = {p: p.read_bytes() for p in fake_env.rglob("*") if p.is_file()}
    result = runner.build(spec, fake_env, log=lambda s: None)
    assert result.prune == ["optimizers", "pch", "schemas", "sources"] and result.keep_transformers == [
        "ConstantFolding"
    ]
    assert any(a.startswith("CMAKE_PROJECT_onnxruntime_INCLUDE=") for a in result.build_py_args)
    summary = json.loads(Path(result.build_dir, "prune.json").read_text())
    # Add-14, Gather-13 and the Transpose-13 ORT's layout transformer may insert (read from the source tree)
    assert summary["schemas"][str(defs / "operator_sets.h")] == {"kept": 3, "dropped": len(ONNX) - 3}
    assert summary["schemas"][str(defs / "operator_sets_ml.h")] == {"kept": 0, "dropped": len(ML)}
    assert "GeluFusion" in summary["transformers_dropped"]
    assert {p: p.read_bytes() for p in fake_env.rglob("*") if p.is_file()} == source_before
    assert result.stripped_bytes and Path(result.stripped_library or "").is_file()


def test_reduced_build_compiles_only_the_kernels_it_keeps(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sources lever (every config-built variant): kernel sources none of whose ops the config keeps leave
    their targets (the overlay's drop list). A link that misses one (ld: undefined reference, as ORT links with
    --no-undefined) gets it back, recorded in the build's state, and the build finishes."""
    spec = BuildSpec("1.21.0", "reduced", "ai.onnx;17;Add\ncom.microsoft;1;BiasGelu\n")
    assert spec.prune == ("pch", "sources")
    conv = fake_env / "onnxruntime/core/providers/cpu/nn/conv.cc"
    monkeypatch.setenv("FAKE_NINJA_NEEDS", str(conv))  # conv.cc also defines a helper some kept code calls
    logs: list[str] = []
    result = runner.build(spec, fake_env, log=logs.append)
    summary = json.loads(Path(result.build_dir, "prune.json").read_text())
    assert summary["sources"] == {"dropped": [], "restored": ["onnxruntime/core/providers/cpu/nn/conv.cc"]}
    assert any("the link needs 1 dropped kernel source(s) back: conv.cc" in s for s in logs)
    state = json.loads(Path(result.build_dir, "state.json").read_text())
    assert state["restored_sources"] == ["onnxruntime/core/providers/cpu/nn/conv.cc"]
    assert Path(result.library).is_file()
    # the finished build keeps no precompiled header (about 1.5 GB for a real reduced build)
    assert not list(Path(result.build_dir).rglob("*.gch"))
    assert any("removed 2 precompiled headers" in s for s in logs)

    # without that need, conv.cc is never compiled; add.cc and the contrib BiasGelu (behind a local macro) are
    other = BuildSpec("1.21.0", "reduced", "ai.onnx;17;Add,Mul\ncom.microsoft;1;BiasGelu\n")
    monkeypatch.delenv("FAKE_NINJA_NEEDS")
    done = runner.build(other, fake_env, log=lambda s: None)
    assert json.loads(Path(done.build_dir, "prune.json").read_text())["sources"]["dropped"] == [
        "onnxruntime/core/providers/cpu/nn/conv.cc"
    ]
    overlay = (Path(done.build_dir) / "ortprune.generated/overlay.cmake").read_text()
    assert f'set(_drop "{conv}")' in overlay


def test_a_link_error_no_dropped_source_explains_still_fails(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = BuildSpec("1.21.0", "reduced", "ai.onnx;17;Add\n")
    monkeypatch.setenv("FAKE_NINJA_FAIL_AT", "3")
    with pytest.raises(BuildError, match="ninja failed"):
        runner.build(spec, fake_env, log=lambda s: None)
    state = json.loads((Path(os.environ["ORTPRUNE_CACHE"]) / "builds" / spec.key() / "state.json").read_text())
    assert "restored_sources" not in state


# ---- the cache does not trust itself (issue 12) ---------------------------------------------------------
def test_corrupt_build_state_is_named_with_the_fix(fake_env: Path) -> None:
    spec = BuildSpec("1.21.0", "full")
    state = Path(os.environ["ORTPRUNE_CACHE"]) / "builds" / spec.key() / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"runs": [')
    with pytest.raises(BuildError, match=r"state.json: corrupt build state .*delete it"):
        runner.build(spec, fake_env, log=lambda s: None)


def test_a_tampered_download_is_fetched_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real HTTP server on 127.0.0.1 plays the Debian mirror; the cached copy was changed after download."""
    import http.server
    import threading

    from ortprune.ortbuild.sources import PoolFile, download

    good = b"the real archive bytes\n" * 100
    (tmp_path / "pool" / "main" / "x").mkdir(parents=True)
    (tmp_path / "pool" / "main" / "x" / "x_1.orig.tar.gz").write_bytes(good)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ORTPRUNE_DEBIAN_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
        pf = PoolFile("x/x_1.orig.tar.gz", hashlib.sha256(good).hexdigest())
        first = download(pf, quiet=True)
        assert first.read_bytes() == good
        first.write_bytes(b"tampered")
        again = download(pf, quiet=True)
        assert again.read_bytes() == good  # re-hashed, found changed, fetched again
        bad = PoolFile("x/x_1.orig.tar.gz", "0" * 64)
        with pytest.raises(BuildError, match="SHA-256 mismatch"):
            download(bad, quiet=True)
    finally:
        server.shutdown()


def test_source_tarballs_are_cached_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ortprune.ortbuild.sources import resolve_source

    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    trees = []
    for n, version in enumerate(("1.21.0", "1.22.0")):
        src = fake_ort.make_source(tmp_path / f"t{n}" / "onnxruntime", DEPS_TXT)
        (src / "VERSION_NUMBER").write_text(version + "\n")
        (tmp_path / f"d{n}").mkdir()
        with tarfile.open(tmp_path / f"d{n}" / "myort.tar.gz", "w:gz") as tar:
            tar.add(src, arcname="onnxruntime")
        trees.append(resolve_source(tmp_path / f"d{n}" / "myort.tar.gz"))
    assert trees[0] != trees[1]
    assert [(t / "VERSION_NUMBER").read_text().strip() for t in trees] == ["1.21.0", "1.22.0"]


@pytest.mark.parametrize("tag", ["../../etc", "v1/../../x", "-rf", "a b", ""])
def test_git_tags_cannot_escape_the_cache(tag: str) -> None:
    from ortprune.errors import OrtpruneError
    from ortprune.ortbuild.sources import resolve_source

    with pytest.raises(OrtpruneError, match="invalid git tag"):
        resolve_source(f"git:{tag}")


def test_disable_types_is_one_token_expanded_for_build_py(tmp_path: Path) -> None:
    spec = BuildSpec("1.21.0", "reduced", SEED_CONFIG, ("--disable_types=sparsetensor,float8", "--disable_rtti"))
    # equal sets of types are one build: one normalized token, one key
    same = BuildSpec("1.21.0", "reduced", SEED_CONFIG, ("--disable_rtti", "--disable_types=float8,sparsetensor,float8"))
    assert spec.key() == same.key()
    assert "--disable_types=float8,sparsetensor" in spec.extra_flags
    assert spec.key() != BuildSpec("1.21.0", "reduced", SEED_CONFIG, ("--disable_rtti",)).key()
    args = build_py_args(spec, tmp_path / "b", tmp_path / "ops.config", parallel=2, as_root=True)
    i = args.index("--disable_types")
    assert args[i + 1 : i + 3] == ["float8", "sparsetensor"] and args[i + 3].startswith("--")
    # build.py's own parser takes what we pass (its argparse: nargs="+", choices)
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--disable_types", nargs="+", default=[], choices=["float8", "optional", "sparsetensor"])
    parser.add_argument("--disable_rtti", action="store_true")
    known, _ = parser.parse_known_args(args)
    assert known.disable_types == ["float8", "sparsetensor"] and known.disable_rtti


def test_disable_types_is_checked() -> None:
    with pytest.raises(BuildError, match="--disable_types takes float8, optional, sparsetensor"):
        BuildSpec("1.21.0", "reduced", SEED_CONFIG, ("--disable_types=float16",))
    with pytest.raises(BuildError, match="--disable_types takes"):
        BuildSpec("1.21.0", "reduced", SEED_CONFIG, ("--disable_types=",))
    with pytest.raises(BuildError, match=r"OptionalHasElement \(needs optional\)"):
        BuildSpec("1.21.0", "reduced", SEED_CONFIG + "ai.onnx;18;OptionalHasElement\n", ("--disable_types=optional",))


def test_results_pages_keep_targets_apart(fake_env: Path) -> None:
    """A cross build's manifest joins only its target's page (named in the title and the command)."""
    from ortprune.analyze.builds import measured_builds
    from ortprune.report.results import results_markdown

    native = runner.build(BuildSpec("1.21.0", "full"), fake_env, log=lambda s: None)
    cross = BuildSpec("1.21.0", "full", target="linux-aarch64")
    result = dataclasses.replace(native, key=cross.key(), target="linux-aarch64")
    result.save(cache_dir("builds", cross.key(), "manifest.json"))
    assert [m.build.target for m in measured_builds("1.21.0")] == [None]
    (row,) = measured_builds("1.21.0", target="linux-aarch64")
    assert row.command.endswith("--variant full --target linux-aarch64")
    assert results_markdown([row]).startswith("# ONNX Runtime 1.21.0 on linux-aarch64: measured builds (cross-built")
