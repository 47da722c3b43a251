"""Terminal behaviour the README promises, and feedback on long work: the real CLI in subprocesses.

Ctrl-C says ``interrupted`` and exits 130; a reader that goes away (``| head -1``) ends the run quietly with
141; text from models, libraries and ORT is shown as it is (never read as rich markup); lines meant to be
copied (op names, consumer commands, ``--help``) are never cut with an ellipsis nor broken inside a word,
however narrow the terminal; ORT's own log lines stay off; long commands say what they do first.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ortprune.opconfig import OpId
from ortprune.runtime import find_library

CLI = [sys.executable, "-m", "ortprune.cli"]


@pytest.fixture(scope="module")
def lib() -> Path:
    return Path(find_library(None))


def _env(tmp_path: Path, columns: int = 200) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ORT_DYLIB_PATH"}
    env.update(ORTPRUNE_CACHE=str(tmp_path / "cache"), COLUMNS=str(columns))
    return env


def _cli(args: list[str], tmp_path: Path, columns: int = 200, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=_env(tmp_path, columns), cwd=tmp_path, timeout=300, **kw
    )  # type: ignore[call-overload, no-any-return]


def _model(path: Path, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto] | None = None) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y], inits or []), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.save(model, path)
    return path


# -- Ctrl-C and closed pipes ------------------------------------------------------------------------------
def test_ctrl_c_says_interrupted_and_exits_130(lib: Path, tmp_path: Path) -> None:
    """SIGINT to the whole process group (what Ctrl-C sends) in the middle of `probe --all`: workers and all."""
    proc = subprocess.Popen(
        [*CLI, "probe", str(lib), "--all", "-j", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        start_new_session=True,
    )
    assert proc.stderr is not None
    header = proc.stderr.readline()  # the header comes first: the probes are running once it is there
    assert header.startswith(f"probe {lib}: ") and " op(s)" in header, header
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert err.strip() == "interrupted" and "Traceback" not in err, err


def test_closed_pipe_exits_141_quietly(lib: Path, tmp_path: Path) -> None:
    """`ortprune size LIB --by symbol -n 0 | head -1`: rich's console used to turn this into a silent exit 1."""
    proc = subprocess.Popen(
        [*CLI, "size", str(lib), "--by", "symbol", "-n", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(tmp_path),
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    assert err == ""


# -- text shown as it is -------------------------------------------------------------------------------
def test_brackets_in_messages_are_shown(lib: Path, tmp_path: Path) -> None:
    """ORT's and ortprune's messages hold shapes like ``[2, 3]`` and paths like ``m[1].onnx``: rich markup
    used to eat them."""
    model = _model(tmp_path / "m[1].onnx", [helper.make_node("Relu", ["x"], ["y"])])
    np.savez(tmp_path / "feeds.npz", x=np.ones((2, 3), dtype=np.float32))
    p = _cli(["verify", str(model), "--lib", str(lib), "--inputs", f"{model}=feeds.npz"], tmp_path, columns=1000)
    assert p.returncode == 1, p.stderr
    assert "(shape [n]), got rank 2 (shape [2, 3])" in p.stdout, p.stdout
    assert "m[1].onnx" in p.stdout and f"verify 1 model(s) on {lib}" in p.stderr
    p = _cli(["scan", "-O", "disable", str(model), "-o", str(tmp_path / "c[x].config")], tmp_path)
    assert p.returncode == 0, p.stderr
    assert f"scan {model} at level disable" in p.stderr and f"wrote {tmp_path / 'c[x].config'}" in p.stderr


def test_ort_log_lines_stay_off(lib: Path, tmp_path: Path) -> None:
    """A model with an unused initializer makes ORT log a (coloured) warning at load; nobody asked for it."""
    unused = numpy_helper.from_array(np.ones(4, dtype=np.float32), "unused")
    model = _model(tmp_path / "unused.onnx", [helper.make_node("Relu", ["x"], ["y"])], [unused])
    p = _cli(["verify", str(model), "--lib", str(lib)], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "onnxruntime" not in p.stderr.replace(str(lib), "") and "\x1b[" not in p.stderr, p.stderr


# -- lines to copy -----------------------------------------------------------------------------------------
def test_op_names_are_never_cut(lib: Path, tmp_path: Path) -> None:
    config = tmp_path / "ops.config"
    config.write_text("ai.onnx;17;Relu,LayerNormalization\ncom.microsoft;1;SkipLayerNormalization\n")
    p = _cli(["probe", str(lib), "--config", str(config)], tmp_path, columns=40)
    assert p.returncode == 0, p.stderr
    assert "…" not in p.stdout
    for op in ("ai.onnx;17;Relu", "ai.onnx;17;LayerNormalization", "com.microsoft;1;SkipLayerNormalization"):
        assert re.search(rf"│ {re.escape(op)} +│", p.stdout), p.stdout


def test_consumer_commands_are_whole_lines(lib: Path, tmp_path: Path) -> None:
    p = _cli(["probe", str(lib), "--consumers", "--json", str(tmp_path / "c.json")], tmp_path, columns=40)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    for c in json.loads((tmp_path / "c.json").read_text())["consumers"]:
        assert c["how"] in lines, (c["how"], p.stdout)  # the whole command on a line of its own
        assert f"# {c['consumer']}" in lines


COMMANDS = [
    [],
    *([c] for c in ("scan", "build", "slim", "probe", "verify", "estimate", "embed", "convert", "transformers")),
    ["results"],
    ["size", "show"],
    ["size", "diff"],
    ["store", "gc"],
    ["deps", "fetch"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "ortprune" for c in COMMANDS])
def test_help_is_never_cut(command: list[str], tmp_path: Path) -> None:
    """At 40 columns every option and every flag in the help text is there whole (typer's rich panels cut
    them with '…'; click broke '--allow-unprobed' at its hyphen)."""
    p = _cli([*command, "--help"], tmp_path, columns=40)
    assert p.returncode == 0, p.stderr
    assert "…" not in p.stdout and not re.search(r"\w\.\.\.$", p.stdout, re.M), p.stdout
    assert not re.search(r"--[\w-]*-$", p.stdout, re.M), p.stdout  # no flag broken at a hyphen
    wide = _cli([*command, "--help"], tmp_path, columns=1000).stdout
    flags = set(re.findall(r"(?<![\w-])--[a-z][\w-]*[\w]", wide))
    assert flags <= set(re.findall(r"(?<![\w-])--[a-z][\w-]*[\w]", p.stdout)), sorted(flags)


def test_version(tmp_path: Path) -> None:
    from ortprune import __version__

    p = _cli(["--version"], tmp_path)
    assert p.returncode == 0 and p.stdout == f"ortprune {__version__}\n"


# -- feedback on long work ------------------------------------------------------------------------------
def test_probe_reports_each_op_as_it_finishes(lib: Path) -> None:
    from ortprune.verify import probe

    ops = [OpId("ai.onnx", 14, "Relu"), OpId("ai.onnx", 13, "Sigmoid"), OpId("ai.onnx", 17, "NoSuchOp")]
    seen: list[tuple[int, int, str]] = []
    report = probe(lib, ops, jobs=2, progress=lambda done, total, what: seen.append((done, total, what)))
    assert [(d, t) for d, t, _ in seen] == [(2, 3), (3, 3)]  # the op with no probe model counts as done at once
    assert {w for _, _, w in seen} == {"ai.onnx;14;Relu", "ai.onnx;13;Sigmoid"}
    (no_model,) = [r for r in report.results if r.op == "ai.onnx;17;NoSuchOp"]
    assert no_model.detail.startswith("no probe model could be built: ")


def test_probe_all_lists_only_versions_ort_has_kernels_for() -> None:
    """ONNX defines Abs since 1, ORT's kernels start at 6: `ai.onnx;1;Abs` is no library's missing op."""
    from ortprune.verify import all_known_ops

    ops = {str(o) for o in all_known_ops()}
    assert "ai.onnx;1;Abs" not in ops and "ai.onnx;6;Abs" in ops and "ai.onnx;13;Abs" in ops
    assert "com.microsoft;1;Attention" in ops


def test_scan_verify_convert_say_what_they_do_first(lib: Path, tmp_path: Path) -> None:
    model = _model(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])])
    p = _cli(["scan", str(model)], tmp_path)
    assert (
        p.returncode == 0
        and p.stderr.splitlines()[0] == f"scan {model} at level all (ONNX Runtime optimizes each model)"
    )
    p = _cli(["convert", str(model), "--lib", str(lib), "--out", str(tmp_path / "out")], tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stderr.splitlines()[0] == f"convert 1 path(s) to ORT format with {lib} at level all"


def test_library_progress_callbacks(lib: Path, tmp_path: Path) -> None:
    from ortprune.scan import scan
    from ortprune.verify import verify

    a = _model(tmp_path / "a.onnx", [helper.make_node("Relu", ["x"], ["y"])])
    b = _model(tmp_path / "b.onnx", [helper.make_node("Abs", ["x"], ["y"])])
    seen: list[tuple[int, int, str]] = []
    scan([a, b], "disable", progress=lambda *args: seen.append(args))
    assert seen == [(0, 2, str(a)), (1, 2, str(b))]
    seen.clear()
    assert verify(lib, [a, b], lib, progress=lambda *args: seen.append(args)).ok
    assert seen == [(0, 2, str(a)), (1, 2, str(b))]
