"""slim's default --tolerance is the target's measured one: 1e-5 here, 2e-5 for linux-aarch64 (Debian's gcc 12
compiles LayerNormalization's loop otherwise than the release's gcc 14: docs/results/ort-1.21.0-linux-aarch64.md);
an explicit --tolerance always wins. The slim pipeline itself is replaced by a recorder: only the option's
wiring is under test here (the pipeline has its own tests)."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

import ortprune.slim
from ortprune.cli import app


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    ("args", "want"),
    [([], 1e-5), (["--target", "linux-aarch64"], 2e-5), (["--target", "linux-aarch64", "--tolerance", "0"], 0.0)],
)
def test_default_tolerance_follows_the_target(monkeypatch: pytest.MonkeyPatch, args: list[str], want: float) -> None:
    seen: dict[str, Any] = {}

    def record(paths: Any, ort: Any, level: Any, variants: Any, out: Any, jobs: Any, tolerance: float,
               *rest: Any, **kw: Any) -> Any:  # fmt: skip
        seen["tolerance"] = tolerance
        raise _Stop

    monkeypatch.setattr(ortprune.slim, "slim", record)
    result = CliRunner().invoke(app, ["slim", "--bundled", *args])
    assert isinstance(result.exception, _Stop), result.output
    assert seen["tolerance"] == want
