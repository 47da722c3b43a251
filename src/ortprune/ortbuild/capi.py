"""The ``c-api`` lever: ORT's C API table keeps only the functions ortprune's runtime calls.

``OrtGetApiBase()->GetApi(v)`` hands out one table (``ort_api_1_to_21`` in ``onnxruntime_c_api.cc``) that
names every C API function, so a linker keeps all of them and everything they reach, whatever the program
calls. In a generated copy of that file, every table entry that returns an ``OrtStatus*`` and that ortprune's
runtime does not call (``runtime._capi.SLOTS``) points at a stub of the same type that returns
``ORT_NOT_IMPLEMENTED``: a client calling one gets an error status, never a crash. Functions that return
something else (``Release*``, ``GetErrorMessage``, ``GetVersionString``...) stay: a stub has no honest value
to give, and they are small. The table's layout (slot order) is untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ortprune.errors import BuildError
from ortprune.runtime._capi import NOT_BUILT_MESSAGE, SLOTS

CAPI_LEVER = "c-api"
C_API_CC = "onnxruntime/core/session/onnxruntime_c_api.cc"
ORT_APIS_H = "onnxruntime/core/session/ort_apis.h"
TABLE_START = re.compile(r"^static constexpr OrtApi (ort_api_1_to_\d+) = \{", re.M)
_ENTRY = re.compile(r"^(\s*)&OrtApis::(\w+),", re.M)
_STATUS_DECL = re.compile(r"ORT_API_STATUS_IMPL\(\s*(\w+)")
#: Kept besides the runtime's own: the stub itself creates its status with it.
ALWAYS_KEPT = ("CreateStatus",)
STUB = """// ortprune --prune c-api: the type of every C API function a table entry stubs, returning ORT_NOT_IMPLEMENTED
namespace ortprune_c_api {{
template <typename F>
struct NotBuilt;
template <typename... Args>
struct NotBuilt<OrtStatus*(ORT_API_CALL*)(Args...) noexcept> {{
  static OrtStatus* ORT_API_CALL Call(Args...) noexcept {{
    return OrtApis::CreateStatus(ORT_NOT_IMPLEMENTED, "{message}");
  }}
}};
}}  // namespace ortprune_c_api
"""


@dataclass
class CApiCut:
    """What the cut did to the table: the entries stubbed and the ones kept (names, table order)."""

    table: str
    stubbed: list[str]
    kept: list[str]


def runtime_functions() -> frozenset[str]:
    """The C API functions ortprune's runtime calls (``Session``, ``TextEmbedding``, the probes)."""
    return frozenset(SLOTS) | frozenset(ALWAYS_KEPT)


def status_functions(ort_apis_h: str) -> set[str]:
    """The ``OrtApis`` functions ``ort_apis.h`` declares as returning ``OrtStatus*``."""
    return set(_STATUS_DECL.findall(ort_apis_h))


def cut_c_api(text: str, status: set[str], keep: Iterable[str], path: str | Path = C_API_CC) -> tuple[str, CApiCut]:
    """``onnxruntime_c_api.cc`` with every status-returning table entry not in ``keep`` pointing at the stub.
    BuildError naming ``path`` if the table is not there."""
    tables = list(TABLE_START.finditer(text))
    if len(tables) != 1:
        raise BuildError(f"--prune {CAPI_LEVER} expects one 'static constexpr OrtApi ort_api_1_to_N' table, "
                         f"found {len(tables)}", path)  # fmt: skip
    start = tables[0].start()
    end = text.find("\n};", start)
    if end < 0:
        raise BuildError(f"--prune {CAPI_LEVER}: the OrtApi table does not end", path)
    keep = set(keep)  # a kept name the table lacks is newer than this ORT: the runtime checks before calling
    entries = _ENTRY.findall(text, start, end)
    if not entries:
        raise BuildError(f"--prune {CAPI_LEVER}: the OrtApi table has no '&OrtApis::Name,' entry", path)
    stubbed: list[str] = []

    def one(m: re.Match[str]) -> str:
        if m[2] in status and m[2] not in keep:
            stubbed.append(m[2])
            return f"{m[1]}&ortprune_c_api::NotBuilt<decltype(&OrtApis::{m[2]})>::Call,"
        return m[0]

    table = _ENTRY.sub(one, text[start:end])
    kept = [name for _, name in entries if name not in stubbed]
    out = text[:start] + STUB.format(message=NOT_BUILT_MESSAGE) + table + text[end:]
    return out, CApiCut(tables[0][1], stubbed, kept)
