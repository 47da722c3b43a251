"""The bench scripts that share bench/_result.py still start as ``python bench/<script>.py`` (their shared
module is found beside them), and record the command line and the JSON they always did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "bench"


@pytest.mark.parametrize("script", ["compile_check.py", "distcc_compile.py"])
def test_the_script_starts_from_any_directory(script: str, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: {script}")


def test_emit_prints_and_writes_the_json_with_its_command_line(tmp_path: Path) -> None:
    code = (
        "import os\nfrom pathlib import Path\nfrom _result import command_line, emit\n"
        "emit({'n': 1, 'command': command_line('/any/where/distcc_compile.py')}, Path(os.environ['OUT']))\n"
    )
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-c", code, "--jobs", "2 3"], capture_output=True, text=True,
                       cwd=BENCH, env={**os.environ, "OUT": str(out)}, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    expected = {"n": 1, "command": "python bench/distcc_compile.py --jobs '2 3'"}
    assert json.loads(out.read_text()) == expected
    assert out.read_text() == json.dumps(expected, indent=1) + "\n" == r.stdout[:-1]
