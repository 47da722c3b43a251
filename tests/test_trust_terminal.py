"""Terminal behaviour the README promises, and feedback on long work: the real CLI in subprocesses.

Ctrl-C says ``interrupted`` and exits 130; a reader that goes away (``| head -1``) ends the run quietly with
141; text from models, libraries and ORT is shown as it is (never read as rich markup); lines meant to be
copied (op names, consumer commands, ``--help``) are never cut with an ellipsis nor broken inside a word,
however narrow the terminal; ORT's own log lines stay off; long commands say what they do first.
"""

from __future__ import annotations

import contextlib
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


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def _on_a_terminal(args: list[str], tmp_path: Path, until: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start the CLI with stderr on a pseudo-terminal (what a user watching sees); read it until ``until``
    appears (then return, the process still running) or the process ends. Returns the process and the
    terminal's text, control sequences removed."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=slave, env=_env(tmp_path), cwd=tmp_path, start_new_session=True
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if until is not None and until in _ANSI.sub("", seen.decode(errors="replace")):
                break
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc, _ANSI.sub("", seen.decode(errors="replace"))


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
    import pty

    master, slave = pty.openpty()  # stderr on a terminal: the header comes first, then the bar
    proc = subprocess.Popen(
        [*CLI, "probe", str(lib), "--all", "-j", "1"],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=_env(tmp_path),
        start_new_session=True,
        # a terminal's Ctrl-C: SIGINT at its default (a runner started with `&` passes it ignored, and Python
        # then leaves it ignored: the interrupt would never land)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.close(slave)
    with os.fdopen(master, "rb", buffering=0) as tty:
        seen = b""
        while " op(s), one session each" not in _ANSI.sub("", seen.decode(errors="replace")):  # probes running
            chunk = tty.read(4096)
            assert chunk, seen
            seen += chunk
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        with contextlib.suppress(OSError):  # EIO once the process closed the terminal
            while chunk := tty.read(65536):
                seen += chunk
    text = _ANSI.sub("", seen.decode(errors="replace"))
    assert proc.returncode == 130, (proc.returncode, text)
    assert text.rstrip().endswith("interrupted") and "Traceback" not in text, text


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
    assert "m[1].onnx" in p.stdout
    p = _cli(["scan", "-O", "disable", str(model), "-o", str(tmp_path / "c[x].config")], tmp_path)
    assert p.returncode == 0, p.stderr
    assert f"wrote {tmp_path / 'c[x].config'}" in p.stderr
    proc, text = _on_a_terminal(["scan", "-O", "disable", str(model)], tmp_path)
    assert proc.wait(timeout=60) == 0 and f"scan {model} at level disable" in text, text


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
    assert [(d, t) for d, t, _ in seen] == [(1, 3), (2, 3), (3, 3)]  # the op with no probe model: done at once
    assert {w for _, _, w in seen[1:]} == {"ai.onnx;14;Relu", "ai.onnx;13;Sigmoid"}
    (no_model,) = [r for r in report.results if r.op == "ai.onnx;17;NoSuchOp"]
    assert no_model.detail.startswith("no probe model could be built: ")


def test_probe_all_lists_only_versions_ort_has_kernels_for() -> None:
    """ONNX defines Abs since 1, ORT's kernels start at 6: `ai.onnx;1;Abs` is no library's missing op."""
    from ortprune.verify import all_known_ops

    ops = {str(o) for o in all_known_ops()}
    assert "ai.onnx;1;Abs" not in ops and "ai.onnx;6;Abs" in ops and "ai.onnx;13;Abs" in ops
    assert "com.microsoft;1;Attention" in ops


@pytest.mark.parametrize(
    ("args", "header"),
    [
        (["scan", "{m}"], "scan {m} at level all (ONNX Runtime optimizes each model)"),
        (
            ["convert", "{m}", "--lib", "{lib}", "--out", "out"],
            "convert 1 path(s) to ORT format with {lib} at level all",
        ),
        (["verify", "{m}", "--lib", "{lib}"], "verify 1 model(s) on {lib} against the reference library at level all"),
        (["probe", "{lib}", "--models", "{m}"], "probe {lib}: 1 op(s), one session each, 2 worker(s)"),
    ],
    ids=["scan", "convert", "verify", "probe"],
)
def test_long_commands_say_what_they_do_first(args: list[str], header: str, lib: Path, tmp_path: Path) -> None:
    """On a terminal the header is the first line, before any work; in a pipe or a log there is no header
    (the result, or the one error line, is all)."""
    model = _model(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])])
    fill = {"{m}": str(model), "{lib}": str(lib)}
    args = [fill.get(a, a) for a in args]
    for k, v in fill.items():
        header = header.replace(k, v)
    proc, text = _on_a_terminal([*args[:1], *(["-j", "2"] if args[0] == "probe" else []), *args[1:]], tmp_path)
    assert proc.wait(timeout=300) == 0, text
    assert text.splitlines()[0] == header, text
    piped = _cli(args, tmp_path)
    assert header not in piped.stderr


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
