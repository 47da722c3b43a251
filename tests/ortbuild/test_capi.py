"""The ``c-api`` lever: the OrtApi table keeps the functions ortprune's runtime calls; every other entry that
returns a status points at a stub of its own type returning ORT_NOT_IMPLEMENTED.

The behaviour test compiles the generated file for real: a small C API with ORT's declaration macros and
table shape (status functions, Release functions, a getter returning a string), built with g++ into a shared
library and called through ctypes, as a client of the pruned library would."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest

from ortprune.errors import BuildError
from ortprune.ortbuild.capi import (
    C_API_CC,
    CAPI_LEVER,
    ORT_APIS_H,
    cut_c_api,
    runtime_functions,
    status_functions,
)
from ortprune.ortbuild.prune import check_levers, prepare_sources
from ortprune.runtime._capi import NOT_BUILT_MESSAGE as MESSAGE
from ortprune.runtime._capi import SLOTS

HEADER = """#pragma once
#include <cstddef>
#define ORT_API_CALL
#define NO_EXCEPTION noexcept
struct OrtStatus { int code; const char* msg; };
struct OrtSession;
typedef OrtStatus* OrtStatusPtr;
enum OrtErrorCode { ORT_OK = 0, ORT_FAIL = 1, ORT_NOT_IMPLEMENTED = 9 };
#define ORT_API_STATUS_IMPL(NAME, ...) OrtStatusPtr ORT_API_CALL NAME(__VA_ARGS__) NO_EXCEPTION
#define ORT_API(RETURN_TYPE, NAME, ...) RETURN_TYPE ORT_API_CALL NAME(__VA_ARGS__) NO_EXCEPTION
struct OrtApi {
  OrtStatusPtr (ORT_API_CALL* CreateStatus)(OrtErrorCode, const char*) NO_EXCEPTION;
  OrtStatusPtr (ORT_API_CALL* Run)(OrtSession*, int, int*) NO_EXCEPTION;
  OrtStatusPtr (ORT_API_CALL* CreateIoBinding)(OrtSession*, void**) NO_EXCEPTION;
  void (ORT_API_CALL* ReleaseStatus)(OrtStatus*) NO_EXCEPTION;
  const char* (ORT_API_CALL* GetErrorMessage)(const OrtStatus*) NO_EXCEPTION;
  OrtStatusPtr (ORT_API_CALL* SessionGetProfilingStartTimeNs)(const OrtSession*, unsigned long long*) NO_EXCEPTION;
};
"""
APIS_H = """#pragma once
#include "api.h"
namespace OrtApis {
ORT_API_STATUS_IMPL(CreateStatus, OrtErrorCode code, const char* msg);
ORT_API_STATUS_IMPL(Run, OrtSession* s, int x, int* out);
ORT_API_STATUS_IMPL(CreateIoBinding, OrtSession* s, void** out);
ORT_API(void, ReleaseStatus, OrtStatus*);
ORT_API(const char*, GetErrorMessage, const OrtStatus*);
ORT_API_STATUS_IMPL(SessionGetProfilingStartTimeNs, const OrtSession* s, unsigned long long* out);
}
"""
C_API = """#include "ort_apis.h"
#include <cstdio>
namespace OrtApis {
ORT_API_STATUS_IMPL(CreateStatus, OrtErrorCode code, const char* msg) { return new OrtStatus{code, msg}; }
ORT_API_STATUS_IMPL(Run, OrtSession*, int x, int* out) { *out = x * 2; return nullptr; }
ORT_API_STATUS_IMPL(CreateIoBinding, OrtSession*, void** out) {
  std::puts("IO_BINDING_BODY");
  *out = out;
  return nullptr;
}
ORT_API(void, ReleaseStatus, OrtStatus* s) { delete s; }
ORT_API(const char*, GetErrorMessage, const OrtStatus* s) { return s->msg; }
ORT_API_STATUS_IMPL(SessionGetProfilingStartTimeNs, const OrtSession*, unsigned long long* out) {
  *out = 7;
  return nullptr;
}
}
static constexpr OrtApi ort_api_1_to_21 = {
    // a comment, as ORT's table has
    &OrtApis::CreateStatus,
    &OrtApis::Run,
    &OrtApis::CreateIoBinding,

    &OrtApis::ReleaseStatus,
    &OrtApis::GetErrorMessage,
    &OrtApis::SessionGetProfilingStartTimeNs,
};
extern "C" __attribute__((visibility("default"))) const OrtApi* GetTheApi() { return &ort_api_1_to_21; }
"""


def _tree(root: Path) -> Path:
    src = root / "ort"
    (src / C_API_CC).parent.mkdir(parents=True)
    (src / C_API_CC).write_text(C_API)
    (src / ORT_APIS_H).write_text(APIS_H)
    (src / C_API_CC).parent.joinpath("api.h").write_text(HEADER)
    return src


class Status(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char_p)]


def test_a_client_gets_not_implemented_from_a_stubbed_entry_and_the_rest_works(tmp_path: Path) -> None:
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed (make build-deps)")
    src = _tree(tmp_path)
    keep = {"Run", "CreateStatus"}
    text, cut = cut_c_api((src / C_API_CC).read_text(), status_functions(APIS_H), keep)
    assert cut.table == "ort_api_1_to_21"
    assert cut.stubbed == ["CreateIoBinding", "SessionGetProfilingStartTimeNs"]
    assert cut.kept == ["CreateStatus", "Run", "ReleaseStatus", "GetErrorMessage"]  # non-status ones stay
    gen = tmp_path / "gen.cc"
    gen.write_text(text)
    lib = tmp_path / "libapi.so"
    cc = subprocess.run(["g++", "-std=c++17", "-Os", "-shared", "-fPIC", "-fvisibility=hidden", "-ffunction-sections",
                         "-Wl,--gc-sections", f"-I{(src / C_API_CC).parent}", str(gen), "-o", str(lib)],
                        capture_output=True, text=True)  # fmt: skip
    assert cc.returncode == 0, cc.stderr
    nm = subprocess.run(["nm", "-C", str(lib)], capture_output=True, text=True, check=True).stdout
    assert "OrtApis::Run(" in nm and "OrtApis::CreateIoBinding" not in nm  # the stubbed function is not linked

    dll = ctypes.CDLL(str(lib))
    dll.GetTheApi.restype = ctypes.POINTER(ctypes.c_void_p * 6)
    table = dll.GetTheApi().contents
    status = ctypes.POINTER(Status)
    run = ctypes.CFUNCTYPE(status, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int))(table[1])
    out = ctypes.c_int()
    assert not run(None, 21, ctypes.byref(out)) and out.value == 42
    for slot, args in ((2, (None, ctypes.byref(ctypes.c_void_p()))), (5, (None, ctypes.byref(ctypes.c_ulonglong())))):
        fn = ctypes.CFUNCTYPE(status, ctypes.c_void_p, ctypes.c_void_p)(table[slot])
        st = fn(*args)
        assert st and st.contents.code == 9 and st.contents.msg.decode() == MESSAGE
    assert "--prune c-api" in MESSAGE


def test_the_runtime_keeps_what_it_calls_and_the_lever_swaps_the_file(tmp_path: Path) -> None:
    assert set(SLOTS) <= runtime_functions() and "CreateStatus" in runtime_functions()
    assert CAPI_LEVER in check_levers([CAPI_LEVER])
    src = _tree(tmp_path)
    defines, report = prepare_sources(src, tmp_path / "build", (CAPI_LEVER,), None)
    overlay = Path(defines[0].split("=", 1)[1]).read_text()
    assert (src / C_API_CC).as_posix() in overlay  # the original is swapped for the generated copy
    gen = tmp_path / "build" / "ortprune.generated" / C_API_CC
    assert "ortprune_c_api::NotBuilt<decltype(&OrtApis::CreateIoBinding)>::Call" in gen.read_text()
    assert f'#include "{(src / ORT_APIS_H).as_posix()}"' in gen.read_text()  # includes point at the source
    assert report.c_api is not None and "Run" in report.c_api.kept
    assert report.summary()["c_api"]["stubbed"] == ["CreateIoBinding", "SessionGetProfilingStartTimeNs"]


def test_a_source_without_the_table_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="expects one 'static constexpr OrtApi") as e:
        cut_c_api("int x;\n", set(), (), "some/onnxruntime_c_api.cc")
    assert "some/onnxruntime_c_api.cc" in str(e.value)
    with pytest.raises(BuildError, match="found 2"):
        cut_c_api(C_API + C_API.replace("1_to_21", "1_to_22"), set(), ())
    with pytest.raises(BuildError, match="no '&OrtApis::Name,' entry"):
        cut_c_api("static constexpr OrtApi ort_api_1_to_21 = {\n  nullptr,\n};\n", set(), ())
    with pytest.raises(BuildError, match=r"no onnxruntime/core/session/onnxruntime_c_api\.cc"):
        prepare_sources(tmp_path / "empty", tmp_path / "b", (CAPI_LEVER,), None)
