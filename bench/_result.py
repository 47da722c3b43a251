"""What the bench scripts run as ``python bench/<script>.py`` share: the command line recorded in their JSON,
and printing the JSON (and writing it to ``--output`` when given)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path


def command_line(script: str) -> str:
    """How this run was started, as ``python bench/<script> <its arguments>`` (shell-quoted)."""
    return " ".join(shlex.quote(x) for x in ["python", f"bench/{Path(script).name}", *sys.argv[1:]])


def emit(result: dict[str, object], output: Path | None) -> None:
    """``result`` as indented JSON: written to ``output`` (when given) and printed."""
    text = json.dumps(result, indent=1) + "\n"
    if output:
        output.write_text(text)
    print(text)
