"""Any ORT version's cmake/deps.txt mapped onto offline archives, without a network.

ortprune/data/deps-1.21.0.txt is ORT 1.21.0's own cmake/deps.txt, recorded from the source tarball in
Debian's pool (test_build.py::test_debian_deps_map_onto_ort_1_21_deps_txt compares it with the live one).
The "newer" layout below is synthetic: 1.21.0's file with the kinds of change a new release makes (versions
bumped, an entry renamed, one added, one dropped); it is not a copy of any real release's file (no newer
deps.txt could be fetched here).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ortprune.errors import BuildError, OrtpruneError
from ortprune.ortbuild import deps_for, depsmap
from ortprune.ortbuild.deps import fetch_debian, load_deps_dir
from ortprune.ortbuild.depsmap import DepEntry, parse_deps_txt, plan_deps
from ortprune.ortbuild.identity import debian_deps_id, source_id
from ortprune.ortbuild.sources import PoolFile, release

DEPS_1_21 = release("1.21.0").deps_txt()

#: What ORT 1.21.0's offline build used before the mapping read deps.txt (the per-release table it replaced):
#: the mapping must choose exactly these, or the real cached builds would neither build nor be found again.
OLD_1_21_ARCHIVES = {
    "abseil_cpp": PoolFile("a/abseil/abseil_20240722.0.orig.tar.gz",
                           "df6d1f5ef540725f3851201176a60486aab332410788465c9877910bb471c34a"),
    "protobuf": PoolFile("p/protobuf/protobuf_3.21.12.orig.tar.gz",
                         "930c2c3b5ecc6c9c12615cf5ad93f1cd6e12d0aba862b572e076259970ac3a53"),
    "onnx": PoolFile("o/onnx/onnx_1.17.0.orig.tar.gz",
                     "8d5e983c36037003615e5a02d36b18fc286541bf52de1a78f6cf9f32005a820e"),
    "re2": PoolFile("r/re2/re2_20240702.orig.tar.gz",
                    "eb2df807c781601c14a260a507a5bb4509be1ee626024cb45acbd57cb9d4032b"),
    "flatbuffers": PoolFile("f/flatbuffers/flatbuffers_23.5.26+dfsg.orig.tar.xz",
                            "0d309fd2c47bbbebd450e68d1419c336d53d1b8f5ce47e1f1f7f28f452fc6f3b"),
    "eigen": PoolFile("e/eigen3/eigen3_5.0.1.orig.tar.bz2",
                      "197d404a98cb1f99925c4e2cbda278881b167ee2e6437ed97cffb5f9d4952e75"),
}  # fmt: skip
OLD_1_21_DEBS = {"safeint": PoolFile("s/safeint/libsafeint-dev_3.0.28a+dfsg-4_all.deb",
                                     "f40ba5bfcf33f15f5c9fed9ff4178ea61841b0d5b8d07eb41fcd4bd7cb4a0043")}  # fmt: skip


def newer_layout() -> str:
    lines = []
    for line in DEPS_1_21.splitlines():
        if line.startswith("abseil_cpp;"):
            line = "abseil_cpp;https://github.com/abseil/abseil-cpp/archive/refs/tags/20250512.1.zip;" + "a" * 40
        elif line.startswith("onnx;"):
            line = "onnx;https://github.com/onnx/onnx/archive/refs/tags/v1.19.0.zip;" + "b" * 40
        elif line.startswith("eigen;"):  # another pinned commit: the known difference still applies
            line = "eigen;https://gitlab.com/libeigen/eigen/-/archive/" + "e" * 40 + "/eigen.zip;" + "d" * 40
        elif line.startswith("googlexnnpack;"):  # renamed
            line = line.replace("googlexnnpack;", "xnnpack;")
        elif line.startswith("tensorboard;"):  # dropped
            continue
        lines.append(line)
    lines.append("duktape;https://github.com/svaarala/duktape/releases/download/v2.7.0/duktape-2.7.0.tar.xz;"
                 + "c" * 40)  # fmt: skip
    return "\n".join(lines) + "\n"


def test_versions_read_from_urls() -> None:
    v = {e.name: e.version for e in parse_deps_txt(DEPS_1_21)}
    assert v["abseil_cpp"] == "20240722.0" and v["protobuf"] == "21.12" and v["onnx"] == "1.17.0"
    assert v["re2"] == "2024-07-02" and v["flatbuffers"] == "23.5.26" and v["mp11"] == "1.82.0"
    assert v["eigen"] == "1d8b82b0740839c0de7f1242a3585e3390ff5f33" and v["protoc_linux_x64"] == "21.12"
    assert DepEntry("duktape", "https://x/releases/download/v2.7.0/duktape-2.7.0.tar.xz", "").version == "2.7.0"
    assert DepEntry("kleidiai", "https://gitlab.arm.com/kleidi/kleidiai/-/archive/v0.2.0/kleidiai-v0.2.0.zip",
                    "").version == "0.2.0"  # fmt: skip


def test_ort_1_21_maps_onto_the_archives_its_builds_used() -> None:
    plan = plan_deps(DEPS_1_21).check("1.21.0")
    assert plan.archives == OLD_1_21_ARCHIVES and plan.debs == OLD_1_21_DEBS
    actions = {d.entry.name: d.action for d in plan.deps}
    assert actions["utf8_range"] == "derived" and actions["safeint"] == "deb-headers"
    assert actions["json"] == actions["date"] == "system" and actions["googletest"] == "unused"
    assert actions["pybind11"] == actions["dlpack"] == "wheel-system"
    assert len(plan.deps) == len(parse_deps_txt(DEPS_1_21)) == 41 and not plan.missing


def test_the_real_builds_keep_their_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The source identity in the keys of the cached real 1.21.0 builds (full, reduced, reduced-pruned,
    minimal: all have source_id 5b1b1d555286809ec159 in their manifests) is unchanged by the mapping."""
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "empty"))
    assert source_id("debian:1.21.0", None, "1.21.0") == "5b1b1d555286809ec159"
    # the same release as a directory: its own deps.txt (kept as deps.txt.orig once mapped) gives the same deps
    tree = tmp_path / "ort"
    (tree / "cmake").mkdir(parents=True)
    (tree / "cmake" / "deps.txt.orig").write_text(DEPS_1_21)
    (tree / "cmake" / "deps.txt").write_text("abseil_cpp;/home/bob/x.tar.gz;" + "0" * 40 + "\n")
    assert debian_deps_id("1.21.0", tree) == debian_deps_id("1.21.0")
    (tree / "cmake" / "deps.txt.orig").write_text(newer_layout())
    assert debian_deps_id("1.21.0", tree) != debian_deps_id("1.21.0")
    assert not (tmp_path / "empty").exists()  # named without a download


def test_newer_layout_names_what_is_new_before_any_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plan = plan_deps(newer_layout(), "ort-1.24.4/cmake/deps.txt")
    assert {d.entry.name: d.entry.version for d in plan.missing} == {
        "abseil_cpp": "20250512.1", "onnx": "1.19.0", "xnnpack": "fe98e0b93565382648129271381c14d6205255e3",
        "duktape": "2.7.0"}  # fmt: skip
    assert set(plan.archives) == {"protobuf", "re2", "flatbuffers", "eigen"}  # unchanged entries still map
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ORTPRUNE_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")  # nothing listens: no network
    with pytest.raises(BuildError) as e:
        fetch_debian("1.24.4", tmp_path / "deps", deps_txt=(newer_layout(), Path("ort-1.24.4/cmake/deps.txt")))
    msg = str(e.value)
    assert msg.startswith("ort-1.24.4/cmake/deps.txt: ONNX Runtime 1.24.4: no offline archive known for abseil_cpp "
                          "20250512.1 (https://github.com/abseil/")  # fmt: skip
    assert "https://github.com/onnx/onnx/archive/refs/tags/v1.19.0.zip" in msg and "--source git:v1.24.4" in msg
    assert not (tmp_path / "deps").exists() and not (tmp_path / "cache").exists()
    # a row per bumped version is all a new release needs; a new or renamed dependency gets a table entry
    rows = dict(depsmap.DEBIAN_ARCHIVES)
    rows[("abseil_cpp", "20250512.1")] = PoolFile("a/abseil/abseil_20250512.1.orig.tar.gz", "0" * 64)
    rows[("onnx", "1.19.0")] = PoolFile("o/onnx/onnx_1.19.0.orig.tar.gz", "0" * 64)
    monkeypatch.setattr(depsmap, "DEBIAN_ARCHIVES", rows)
    monkeypatch.setitem(depsmap.KNOWN_DIFFERENCES, "xnnpack", depsmap.KNOWN_DIFFERENCES["googlexnnpack"])
    assert [d.entry.name for d in plan_deps(newer_layout()).missing] == ["duktape"]


def test_user_deps_dir_supplies_what_no_table_knows(tmp_path: Path) -> None:
    tree = tmp_path / "onnxruntime-1.24.4"
    (tree / "cmake").mkdir(parents=True)
    (tree / "cmake" / "deps.txt").write_text(newer_layout())
    d = tmp_path / "deps"
    d.mkdir()
    for f in plan_deps(newer_layout()).archives.values():
        (d / f.name).write_bytes(b"x")
    (d / "utf8_range.tar.gz").write_bytes(b"x")
    (d / "safeint/usr/include/safeint").mkdir(parents=True)
    (d / "safeint/usr/include/safeint/SafeInt.hpp").write_text("//")
    with pytest.raises(BuildError, match=r"missing .*abseil_cpp\.zip \(or \.tar\.gz: https://github\.com/abseil/"
                                         r".*duktape\.zip") as e:  # fmt: skip
        deps_for(tree, "1.24.4", d, tree)
    assert str(e.value).startswith(f"{d}: ")
    for name in ("abseil_cpp.zip", "onnx.tar.gz", "xnnpack.zip", "duktape.tar.xz"):
        (d / name).write_bytes(b"x")
    got = deps_for(tree, "1.24.4", d, tree)
    assert got is not None and got.archives["onnx"] == d / "onnx.tar.gz"
    assert got.archives["duktape"] == d / "duktape.tar.xz"
    assert got.archives["protobuf"] == d / "protobuf_3.21.12.orig.tar.gz"
    # the same directory for 1.21.0 (its recorded deps.txt) lacks that release's own versions
    with pytest.raises(BuildError, match=r"missing .*/abseil_20240722\.0\.orig\.tar\.gz, .*/onnx_1\.17\.0\.orig"):
        load_deps_dir(d, "1.21.0")


def test_a_changed_debian_tree_is_refused_before_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    tree = tmp_path / "onnxruntime-1.21.0"
    (tree / "cmake").mkdir(parents=True)
    (tree / "cmake" / "deps.txt").write_text(newer_layout())
    with pytest.raises(BuildError, match=r"cmake/deps.txt: differs from the deps.txt recorded for ONNX Runtime 1.21.0"):
        deps_for("debian:1.21.0", "1.21.0", None, tree)
    assert not (tmp_path / "cache").exists()
    assert deps_for("git:v1.24.4", "1.24.4", None, tree) is None  # online: CMake fetches what deps.txt lists


@pytest.mark.parametrize(("text", "error"), [
    ("# comment\nonly;two\n", r"line 2: expected name;URL;SHA1"),
    ("onnx;https://x/v1.zip;not-a-sha1\n", r"line 1: expected name;URL;SHA1 \(40 hex digits\)"),
    (f"onnx;https://x/v1.zip;{'a' * 40}\nonnx;https://x/v2.zip;{'b' * 40}\n", r"line 2: 'onnx' is listed twice"),
    ("#Name;Url;SHA1\n\n", r"no name;URL;SHA1 entries"),
])  # fmt: skip
def test_malformed_deps_txt_names_the_file(text: str, error: str) -> None:
    with pytest.raises(BuildError, match=rf"^my/deps.txt: {error}"):
        parse_deps_txt(text, "my/deps.txt")


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """ortprune's console script in this process (the bad-input table runs it as a subprocess)."""
    from ortprune.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def test_cli_deps_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ORTPRUNE_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")  # nothing listens: no network
    code, out, err = _cli(capsys, "deps", "plan")
    assert code == 0, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert rows["onnx"] == ["1.17.0", "archive", "onnx_1.17.0.orig.tar.gz"] and rows["googletest"][1] == "unused"
    tree = tmp_path / "onnxruntime-1.24.4"
    (tree / "cmake").mkdir(parents=True)
    (tree / "cmake" / "deps.txt").write_text(newer_layout())
    code, out, err = _cli(capsys, "deps", "plan", "--ort-version", "1.24.4", "--deps-txt", str(tree))
    assert code == 1 and "duktape" in out
    (line,) = err.strip().splitlines()
    assert f"{tree}/cmake/deps.txt: ONNX Runtime 1.24.4: no offline archive known for abseil_cpp" in line
    code, out, err = _cli(capsys, "deps", "fetch", "--ort-version", "1.24.4", "--deps-txt", str(tree),
                          "--dir", str(tmp_path / "d"))  # fmt: skip
    assert code == 1 and "no offline archive known" in err and not (tmp_path / "d").exists()
    assert not (tmp_path / "cache").exists()  # nothing downloaded


def test_unknown_release_without_deps_txt() -> None:
    with pytest.raises(OrtpruneError, match=r"no Debian pool recipe for ONNX Runtime 1\.24\.4"):
        fetch_debian("1.24.4")
