"""The Python API validates at its boundary: wrong types and values to Session, OpConfig and scan raise one
ArgumentTypeError / ArgumentValueError (OrtpruneErrors that are also TypeError / ValueError) naming the
argument (an unknown keyword too), before anything is loaded, read or written; a str given to scan is one
path; scan_model on a FIFO answers at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ortprune.errors import ArgumentTypeError, ArgumentValueError, ConfigError, ModelError, OrtpruneError
from ortprune.opconfig import OpConfig, OpTypes
from ortprune.runtime import Session
from ortprune.scan import scan, scan_model


@pytest.fixture(scope="module")
def model(int8_model: Path) -> Path:
    return int8_model


def _cases(model: Path, tmp: Path) -> list[tuple[str, Callable[[], object], type[Exception], str]]:
    feeds: Any = None
    return [
        # Session
        ("Session(lib=123)", lambda: Session(model, lib=123), ArgumentTypeError, "lib must be a path"),
        ("Session(lib='')", lambda: Session(model, lib=""), ArgumentValueError, "lib is an empty path"),
        ("Session(None)", lambda: Session(None), ArgumentTypeError, "model must be a path or the model's bytes"),
        ("Session('')", lambda: Session(""), ArgumentValueError, "model is an empty path"),
        ("optimization_level=1.5", lambda: Session(model, optimization_level=1.5), ArgumentTypeError,
         "optimization level must be"),
        ("optimization_level=True", lambda: Session(model, optimization_level=True), ArgumentTypeError,
         "optimization level must be"),
        ("optimization_level=5", lambda: Session(model, optimization_level=5), OrtpruneError,
         r"setting optimization level 5: \[INVALID_ARGUMENT\] graph_optimization_level is not valid"),
        ("optimization_level='fast'", lambda: Session(model, optimization_level="fast"), ArgumentValueError,
         "unknown optimization level 'fast'"),
        ("log_level=[]", lambda: Session(model, log_level=[]), ArgumentTypeError, "log level must be one of"),
        ("log_level=99", lambda: Session(model, log_level=99), ArgumentValueError, "unknown log level 99"),
        ("threads='2'", lambda: Session(model, threads="2"), ArgumentTypeError, "threads must be an integer"),
        ("threads=-1", lambda: Session(model, threads=-1), ArgumentValueError, "threads must be between 0"),
        ("cache=123", lambda: Session(model, cache=123), ArgumentTypeError, "cache must be True, False, None or"),
        ("optimized_model_path=123", lambda: Session(model, optimized_model_path=123), ArgumentTypeError,
         "optimized_model_path must be a path"),
        ("cpu_mem_arena='no'", lambda: Session(model, cpu_mem_arena="no"), ArgumentTypeError,
         "cpu_mem_arena must be True or False"),
        ("config=[]", lambda: Session(model, config=[]), ArgumentTypeError, "config must be a mapping"),
        ("config={'a': 1}", lambda: Session(model, config={"a": 1}), ArgumentValueError, "config entries must be"),
        ("Session(bogus=1)", lambda: Session(model, bogus=1), ArgumentTypeError,
         "Session got unknown keyword argument bogus; it takes model, lib, threads, "),
        ("Session(thread=2)", lambda: Session(model, thread=2), ArgumentTypeError, r"\(did you mean threads\?\)"),
        ("Session(a=1, b=2)", lambda: Session(model, b=2, a=1), ArgumentTypeError, "unknown keyword arguments a, b;"),
        ("Session(model, None, 2)", lambda: Session(model, None, 2), ArgumentTypeError,
         r"Session takes 2 positional argument\(s\) \(model, lib\), got 3; pass the others by name"),
        ("run(None)", lambda: Session(model).run(feeds), OrtpruneError, "feeds must be a mapping"),
        ("run(outputs='y')", lambda: Session(model).run({}, "last_hidden_state"), ArgumentTypeError,
         "outputs must be a list of output names"),
        ("run(outputs=5)", lambda: Session(model).run({}, 5), ArgumentTypeError, "outputs must be a list"),
        # OpConfig
        ("OpConfig.parse(None)", lambda: OpConfig.parse(None), ArgumentTypeError, r"OpConfig\.parse takes the"),
        ("OpConfig.parse(bytes)", lambda: OpConfig.parse(b"ai.onnx;1;Add"), ArgumentTypeError, "got bytes"),
        ("OpConfig.load(None)", lambda: OpConfig.load(None), ArgumentTypeError, "path must be a path"),
        ("OpConfig.save(None)", lambda: OpConfig().save(None), ArgumentTypeError, "path must be a path"),
        ("OpConfig.add(None, ...)", lambda: OpConfig().add(None, 1, "Add"), ConfigError, "invalid domain name None"),
        ("OpConfig.add(types=1)", lambda: OpConfig().add("ai.onnx", 1, "Add", types=1), ArgumentTypeError,
         "types must be an OpTypes or None"),
        ("OpConfig(ops=1)", lambda: OpConfig(ops=1), ArgumentTypeError, r"OpConfig\.ops must be a dict"),
        ("OpConfig(ops={'a': 1})", lambda: OpConfig(ops={"ai.onnx": 1}), ArgumentTypeError,
         r"OpConfig\.ops\['ai\.onnx'\] must be a dict"),
        ("OpConfig(ops=bad op)", lambda: OpConfig(ops={"ai.onnx": {17: {"Add;Mul"}}}), ArgumentValueError,
         "invalid operator name 'Add;Mul'"),
        ("OpConfig(ops=bad opset)", lambda: OpConfig(ops={"ai.onnx": {0: {"Add"}}}), ArgumentValueError,
         "opset must be an integer from 1"),
        ("OpConfig(globally_allowed_types)", lambda: OpConfig(globally_allowed_types=frozenset({"float32"})),
         ArgumentValueError, "unknown type name"),
        ("OpConfig.merge(1)", lambda: OpConfig.merge(OpConfig(), 1), ArgumentTypeError,
         "OpConfig merge takes OpConfig objects, got int"),
        ("OpConfig | 1", lambda: OpConfig() | 1, ArgumentTypeError, r"OpConfig \| takes OpConfig objects"),
        ("OpConfig.diff('x')", lambda: OpConfig().diff("x"), ArgumentTypeError, "OpConfig diff takes"),
        ("OpConfig.covers(None)", lambda: OpConfig().covers(None), ArgumentTypeError, "OpConfig covers takes"),
        ("OpTypes.from_json('{')", lambda: OpTypes.from_json("{"), ArgumentValueError, "type info is not JSON"),
        # scan
        ("scan(None)", lambda: scan(None), ArgumentTypeError, "paths must be a path or a list of paths"),
        ("scan(123)", lambda: scan(123), ArgumentTypeError, "paths must be a path or a list of paths, got int"),
        ("scan([None])", lambda: scan([None]), ArgumentTypeError, r"paths\[0\] must be a path"),
        ("scan(level=None)", lambda: scan([model], level=None), ArgumentTypeError, "optimization level must be"),
        ("scan(level='fast')", lambda: scan([model], level="fast"), ArgumentValueError, "unknown optimization"),
        ("scan(types='x')", lambda: scan([model], "disable", types="x"), ArgumentTypeError, "types must be True"),
        ("scan(runtime=123)", lambda: scan([model], runtime=123), ArgumentTypeError, "runtime must be a path"),
        ("scan_model(None)", lambda: scan_model(None), ArgumentTypeError, "path must be a path"),
        ("scan_model(123)", lambda: scan_model(123), ArgumentTypeError, "path must be a path"),
        ("scan_model(dir)", lambda: scan_model(tmp, "disable"), ModelError, "is a directory"),
    ]  # fmt: skip


def test_wrong_arguments_raise_one_clear_ortprune_error(model: Path, tmp_path: Path) -> None:
    for case, call, error, message in _cases(model, tmp_path):
        with pytest.raises(OrtpruneError) as e:
            call()
        assert isinstance(e.value, error), (case, type(e.value).__name__, str(e.value))
        text = str(e.value)
        assert re.search(message, text), (case, text)
        assert "\n" not in text and len(text) < 400, (case, text)
    assert not list(tmp_path.iterdir())  # nothing written


def test_argument_errors_are_also_the_python_kinds() -> None:
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, OrtpruneError)
    assert issubclass(ArgumentValueError, ValueError) and issubclass(ArgumentValueError, OrtpruneError)
    with pytest.raises(TypeError):
        OpConfig.parse(None)  # type: ignore[arg-type]


def test_scan_takes_a_str_or_pathlike_as_one_path(model: Path, tmp_path: Path) -> None:
    """A str is one path, never its characters ('/' used to become the root directory, or the cwd's files)."""
    one = scan(str(model), "disable")
    assert [m.path for m in one.models] == [model.resolve()]
    assert [m.path for m in scan(model, "disable").models] == [model.resolve()]
    assert set(scan([str(model)], "disable").config) == set(one.config)
    with pytest.raises(ModelError, match="no such file or directory"):
        scan(str(tmp_path / "missing.onnx"), "disable")


@pytest.mark.parametrize("level", ["disable", "all"])
def test_scan_model_on_a_fifo_answers_at_once(tmp_path: Path, level: str) -> None:
    """Reading a FIFO blocks until a writer comes: the scanner refuses it by its type, without opening it
    (in a subprocess with a timeout, so a regression fails instead of hanging the suite)."""
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    code = (
        "import sys\nfrom ortprune.scan import scan_model\nfrom ortprune.ortformat import is_ort_format\n"
        "assert not is_ort_format(sys.argv[1])\n"
        "try:\n    scan_model(sys.argv[1], sys.argv[2])\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(fifo), level], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ModelError {fifo}: cannot read the model: is a FIFO, not a regular file"
