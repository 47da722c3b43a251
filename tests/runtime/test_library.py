"""Finding and loading libonnxruntime: the wheel's real library, wrong files, fake old libraries."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import onnxruntime as ort
import pytest

from ortprune.errors import RuntimeLoadError
from ortprune.runtime import Library, find_library, load_library, negotiate_api, wheel_library
from ortprune.runtime._capi import MAX_API_VERSION, MIN_API_VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_default_is_the_wheels_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORT_DYLIB_PATH", raising=False)
    path = wheel_library()
    assert path is not None and path.parent == Path(ort.__file__).parent / "capi"
    assert path.name == f"libonnxruntime.so.{ort.__version__}"
    assert find_library() == str(path)


def test_env_var_and_explicit_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = wheel_library()
    assert real is not None
    link = tmp_path / "libonnxruntime.so"
    link.symlink_to(real)
    monkeypatch.setenv("ORT_DYLIB_PATH", str(link))
    assert find_library() == str(real.resolve())
    assert find_library(tmp_path / "libonnxruntime.so") == str(real.resolve())
    monkeypatch.setenv("ORT_DYLIB_PATH", str(tmp_path / "nope.so"))
    with pytest.raises(RuntimeLoadError, match=r"nope.so: no such file \(\$ORT_DYLIB_PATH\)"):
        find_library()
    assert find_library(real) == str(real)  # an explicit path wins over the variable


def test_library_facts() -> None:
    lib = load_library()
    assert lib is load_library() is load_library(lib.path)
    assert lib.version == ort.__version__
    assert lib.api_version == min(int(ort.__version__.split(".")[1]), MAX_API_VERSION)
    assert lib.available_providers() == ort.get_available_providers()
    assert "CPUExecutionProvider" in lib.available_providers()
    info = lib.build_info()
    assert info is not None and "git-commit-id" in info
    assert {"env", "memory_info"} <= set(lib.live_handles())


def test_api_negotiation() -> None:
    assert negotiate_api("1.21.0") == 21  # the Debian 1.21 sources ortprune builds
    assert negotiate_api(f"1.{MIN_API_VERSION}.3") == MIN_API_VERSION
    assert negotiate_api("1.99.0") == MAX_API_VERSION
    assert negotiate_api("1.24.0-dev") == 24
    with pytest.raises(RuntimeLoadError, match=r"ONNX Runtime 1.16.3 is too old: ortprune needs C API 17"):
        negotiate_api("1.16.3")
    with pytest.raises(RuntimeLoadError, match="unknown major version"):
        negotiate_api("2.0.0")
    with pytest.raises(RuntimeLoadError, match="unrecognised ONNX Runtime version string"):
        negotiate_api("banana")


def test_wrong_paths(tmp_path: Path) -> None:
    with pytest.raises(RuntimeLoadError, match=r"missing/libonnxruntime.so: no such file"):
        Library(tmp_path / "missing" / "libonnxruntime.so")
    with pytest.raises(RuntimeLoadError, match="not a regular file"):
        Library(tmp_path)
    text = tmp_path / "libonnxruntime.so"
    text.write_text("not an ELF file\n")
    with pytest.raises(RuntimeLoadError, match=r"libonnxruntime.so: not an ELF shared library \(bad magic\)"):
        Library(text)


def test_truncated_library_is_refused_before_dlopen(tmp_path: Path) -> None:
    """dlopen maps a truncated library's segments past the end of the file: the process would die of
    SIGBUS. The ELF pre-check refuses it first (run in a child so a regression cannot kill pytest)."""
    import subprocess
    import sys

    from ortprune.runtime import find_library

    real = Path(find_library(None))
    cut = tmp_path / "libonnxruntime.so"
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    code = f"from ortprune.runtime import Library\nLibrary({str(cut)!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr  # an exception, not a signal
    assert "RuntimeLoadError" in proc.stderr and "truncated or corrupt: segment PT_LOAD" in proc.stderr
    header_only = tmp_path / "header.so"
    header_only.write_bytes(real.read_bytes()[:64])
    with pytest.raises(RuntimeLoadError, match="truncated ELF: program header table ends at byte"):
        Library(header_only)


def test_bare_name_in_env_is_not_taken_from_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ortprune.runtime import find_library

    (tmp_path / "libonnxruntime.so.1").write_text("a planted file in the current directory\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORT_DYLIB_PATH", "libonnxruntime.so.1")
    assert find_library(None) == "libonnxruntime.so.1"  # left to the dynamic loader's search path
    with pytest.raises(RuntimeLoadError, match="bad magic"):  # a path with a '/' is that file
        find_library("./libonnxruntime.so.1")


@pytest.mark.parametrize("name", ["z", "m"])
def test_not_an_onnxruntime(name: str) -> None:
    found = ctypes.util.find_library(name)
    assert found, f"lib{name} not found"
    path = next(
        Path(d) / found
        for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib")
        if (Path(d) / found).exists()
    )
    with pytest.raises(RuntimeLoadError, match="not an ONNX Runtime library: it does not export OrtGetApiBase"):
        Library(path)


FAKE_ORT = r"""
#include <stddef.h>
#include <stdint.h>
typedef struct { const void* (*GetApi)(uint32_t); const char* (*GetVersionString)(void); } OrtApiBase;
static const void* get_api(uint32_t v) { (void)v; return NULL; }
static const char* version(void) { return VERSION; }
static const OrtApiBase base = {get_api, version};
const OrtApiBase* OrtGetApiBase(void) { return &base; }
"""


@pytest.fixture(scope="module")
def fake_ort(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Build a tiny library that exports OrtGetApiBase, reports VERSION and serves no API table."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("fake-ort")
    (d / "fake.c").write_text(FAKE_ORT)

    def build(version: str) -> Path:
        out = d / f"libonnxruntime.so.{version}"
        subprocess.run(
            [cc, "-shared", "-fPIC", f'-DVERSION="{version}"', "-o", str(out), str(d / "fake.c")], check=True
        )
        return out

    return build


def test_too_old_library(fake_ort) -> None:  # type: ignore[no-untyped-def]
    lib = fake_ort("1.16.0")
    with pytest.raises(RuntimeLoadError, match=r"libonnxruntime.so.1.16.0: ONNX Runtime 1.16.0 is too old"):
        Library(lib)


def test_library_without_api_table(fake_ort) -> None:  # type: ignore[no-untyped-def]
    lib = fake_ort("1.25.0")
    with pytest.raises(RuntimeLoadError, match=r"GetApi\(25\) returned NULL although .* version 1.25.0"):
        Library(lib)


def test_no_error_crashes_the_interpreter(tmp_path: Path, fp32_model: Path) -> None:
    """Every failure in one fresh interpreter, which then exits normally with sessions still open."""
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    script = textwrap.dedent(f"""
        import ctypes.util, numpy as np
        from ortprune.errors import OrtpruneError
        from ortprune.runtime import Library, Session
        errors = 0
        for make in (lambda: Library({str(tmp_path / "nope.so")!r}),
                     lambda: Library("/lib/x86_64-linux-gnu/" + ctypes.util.find_library("z")),
                     lambda: Session({str(bad)!r}),
                     lambda: Session({str(fp32_model)!r}).run({{"input_ids": np.zeros((1, 2), np.int32)}})):
            try:
                make()
            except OrtpruneError as e:
                errors += 1
                print(type(e).__name__)
        kept = Session({str(fp32_model)!r})  # left open: released at exit
        print("errors", errors)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["RuntimeLoadError", "RuntimeLoadError", "OrtError", "InputError", "errors", "4"]
