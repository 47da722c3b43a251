"""Which of ORT's graph transformers change a model's graph at load: read from ORT's own log.

ORT logs ``GraphTransformer NAME modified: 0|1`` (INFO) for every transformer each time it runs
(``graph_transformer.cc``). A transformer that never logs ``modified: 1`` left the graph as it was, so a build
that does not construct it optimizes the model into the same graph. Run this with the full build of the ORT
version being pruned: another version has other transformers.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ortprune.errors import ModelError, OrtpruneError

_APPLY = re.compile(r"GraphTransformer (\S+) modified: ([01])")


@dataclass
class TransformerLog:
    """Per transformer name: whether it modified any model's graph (in any of its runs)."""

    ran: dict[str, bool] = field(default_factory=dict)

    @property
    def used(self) -> tuple[str, ...]:
        return tuple(sorted(n for n, m in self.ran.items() if m))

    @property
    def unused(self) -> tuple[str, ...]:
        return tuple(sorted(n for n, m in self.ran.items() if not m))

    def add(self, log_text: str) -> None:
        for name, modified in _APPLY.findall(log_text):
            self.ran[name] = self.ran.get(name, False) or modified == "1"


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Collect what native code writes to fd 2 (ORT's default log sink is std::cerr)."""
    out: list[str] = []
    sys.stderr.flush()
    with tempfile.TemporaryFile() as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            out.append(f.read().decode("utf-8", errors="replace"))


def transformer_log(models: Iterable[Path], lib: str | Path | None, level: str = "all") -> TransformerLog:
    """Load each model in ``lib`` at ``level`` with INFO logging and collect the transformers' reports."""
    from ortprune.runtime import Session

    log = TransformerLog()
    for model in models:
        with _captured_stderr() as text:
            try:
                Session(model, lib, optimization_level=level, log_level="info").close()
            except OrtpruneError as e:
                raise ModelError(f"ONNX Runtime could not load the model: {e}", model) from None
        log.add(text[0])
        if not _APPLY.search(text[0]) and level != "disable":
            raise OrtpruneError(
                f"ONNX Runtime ({lib or 'default'}) logged no graph transformer at level {level!r}: "
                "cannot tell which ones the model needs",
                model,
            )
    return log


#: Session config key that disables transformers and rewrite rules by name (``;``-separated).
DISABLE_KEY = "optimization.disable_specified_optimizers"


def optimized_bytes(model: Path, lib: str | Path | None, level: str, disabled: Iterable[str], tmp: Path) -> bytes:
    """The graph ORT saves after optimizing ``model`` (the .onnx and its weights file), for byte comparison."""
    from ortprune.runtime import Session
    from ortprune.scan.optimize import _SAVE_CONFIG

    tmp.mkdir()
    config = dict(_SAVE_CONFIG)
    if disabled:
        config[DISABLE_KEY] = ";".join(disabled)
    Session(
        model,
        lib,
        optimization_level=level,
        log_level="error",
        optimized_model_path=tmp / "optimized.onnx",
        config=config,
    ).close()
    weights = tmp / _SAVE_CONFIG["session.optimized_model_external_initializers_file_name"]
    return (tmp / "optimized.onnx").read_bytes() + (weights.read_bytes() if weights.exists() else b"")


def changed_by_disabling(
    models: Iterable[Path], lib: str | Path | None, disabled: Iterable[str], level: str = "all"
) -> list[Path]:
    """The models whose optimized graph (saved model and weights, byte for byte) differs when ``disabled``
    transformers are switched off: [] proves a build without them optimizes these models identically."""
    disabled = tuple(disabled)
    changed = []
    with tempfile.TemporaryDirectory(prefix="ortprune-tf-") as tmp:
        for i, model in enumerate(models):
            a = optimized_bytes(model, lib, level, (), Path(tmp) / f"{i}-all")
            b = optimized_bytes(model, lib, level, disabled, Path(tmp) / f"{i}-pruned")
            if a != b:
                changed.append(model)
    return changed
