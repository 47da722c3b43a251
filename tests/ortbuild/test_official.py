"""The official release library of a version: downloaded from PyPI's onnxruntime wheel by pip, checked against
the wheel's RECORD, cached by SHA-256; a wheel that lies about its library is refused; the CLI takes
``official`` / ``official:VERSION`` wherever it takes a reference or optimizing library."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ortprune.ortbuild.official import NoOfficialLibrary, as_build, cached, official_library
from ortprune.runtime import wheel_library


def wheel_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def test_the_official_library_of_the_installed_release_is_the_wheels_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real pip, real PyPI (the index the venv was installed from): the library that comes out is byte for byte
    the one the installed onnxruntime wheel of that version carries."""
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    mine = wheel_library()
    assert mine is not None
    said: list[str] = []
    got = official_library(wheel_version(), log=said.append)
    assert Path(got.library).read_bytes() == mine.read_bytes()
    assert got.library_sha256 == hashlib.sha256(mine.read_bytes()).hexdigest() and got.library_bytes > 10_000_000
    assert said and "downloading the onnxruntime==" in said[0]
    # the second time it is the cache's, with no download; a changed cached file is not trusted
    again = official_library(wheel_version(), log=lambda s: pytest.fail(f"downloaded again: {s}"))
    assert again == got
    Path(got.library).write_bytes(b"not a library")
    assert cached(wheel_version()) is None
    build = as_build(official_library(wheel_version()))
    assert build.variant == "official" and build.library_bytes == mine.stat().st_size and build.target is None


def fake_wheel(where: Path, version: str, lib: bytes, recorded: bytes) -> Path:
    """A wheel of onnxruntime ``version`` holding ``lib`` whose RECORD gives the hash of ``recorded``."""
    name = f"onnxruntime/capi/libonnxruntime.so.{version}"
    digest = base64.urlsafe_b64encode(hashlib.sha256(recorded).digest()).rstrip(b"=").decode()
    info = f"onnxruntime-{version}.dist-info"
    path = where / f"onnxruntime-{version}-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(name, lib)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: onnxruntime\nVersion: {version}\n")
        zf.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_28_x86_64\n"
        )
        zf.writestr(f"{info}/RECORD", f"{name},sha256={digest},{len(recorded)}\n{info}/RECORD,,\n")
    return path


def test_a_wheel_whose_library_does_not_match_its_record_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    index = tmp_path / "index"
    index.mkdir()
    fake_wheel(index, "9.9.1", b"\x7fELF tampered", b"\x7fELF original")
    local = ("--no-index", "--find-links", str(index))
    with pytest.raises(NoOfficialLibrary, match=r"does not match the wheel's RECORD"):
        official_library("9.9.1", pip_args=local)
    assert not (tmp_path / "cache" / "official" / "9.9.1-linux-x86_64").exists()
    # an honest wheel from the same index is taken, and cached with its hashes
    fake_wheel(index, "9.9.2", b"\x7fELF good", b"\x7fELF good")
    got = official_library("9.9.2", pip_args=local)
    assert Path(got.library).read_bytes() == b"\x7fELF good"
    record = json.loads((Path(got.library).parent / "official.json").read_text())
    assert record["library_sha256"] == hashlib.sha256(b"\x7fELF good").hexdigest()
    with pytest.raises(NoOfficialLibrary, match=r"no official onnxruntime==9\.9\.3 wheel for linux-x86_64"):
        official_library("9.9.3", pip_args=local)
    for bad in ("../../etc", "", "1.21.0; rm -rf /", "latest"):
        with pytest.raises(Exception, match="not an ONNX Runtime release version"):
            official_library(bad, pip_args=local)
    with pytest.raises(Exception, match="unknown target 'linux-sparc'"):
        official_library("9.9.2", "linux-sparc", pip_args=local)


def test_cli_takes_official_as_the_reference_and_the_optimizer(
    tmp_path: Path, fp32_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"ORTPRUNE_CACHE": str(tmp_path / "cache")}
    monkeypatch.delenv("ORT_DYLIB_PATH", raising=False)
    lib = wheel_library()
    assert lib is not None

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        import os

        return subprocess.run([sys.executable, "-m", "ortprune.cli", *args], capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=600)  # fmt: skip

    verified = run("verify", "--lib", str(lib), "--reference", "official", "--json", str(tmp_path / "v.json"),
                   str(fp32_model))  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["reference"].endswith(f"official/{wheel_version()}-linux-x86_64/libonnxruntime.so.{wheel_version()}")
    assert all(m["status"] == "ok" and all(o["max_abs_diff"] == 0 for o in m["outputs"]) for m in report["models"])
    scanned = run("scan", str(fp32_model), "--runtime", f"official:{wheel_version()}", "-q", "-o", str(tmp_path / "c"))
    assert scanned.returncode == 0, scanned.stderr
    assert f"ONNX Runtime {wheel_version()}" in (tmp_path / "c").read_text()
    bad = run("scan", str(fp32_model), "--runtime", "official", "-o", str(tmp_path / "d"))
    assert bad.returncode == 2 and "--runtime official needs a version here" in bad.stderr  # a usage error
    assert not (tmp_path / "d").exists()
