"""Issue 12 beyond the CLI table: property tests (only ortprune's own errors come out of the scanner and
the config parser), the safe output writer, the library API's checks, and the CLI forms that must work."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from ortprune._io import atomic_open, atomic_write_text, check_outputs
from ortprune.errors import ConfigError, ModelError, OrtpruneError, OutputError
from ortprune.opconfig import OpConfig

CLI = [sys.executable, "-m", "ortprune.cli"]


def _tiny_model() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Neg", ["r"], ["y"], name="neg")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


TINY = _tiny_model()


# -- property tests -----------------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_scan_of_mutated_model_bytes_raises_only_model_errors(tmp_path: Path, data: st.DataObject) -> None:
    from ortprune.scan import scan_model

    raw = bytearray(TINY)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if kind == "flip" and raw:
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del raw[pos:]
        elif kind == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif raw:
            del raw[pos]
    path = tmp_path / "m.onnx"
    path.write_bytes(bytes(raw))
    try:
        result = scan_model(path, "disable")
    except OrtpruneError:
        return
    text = result.config.format()  # whatever was accepted writes a config that parses back the same
    assert set(OpConfig.parse(text)) == set(result.config)


_CONFIG_ALPHABET = st.sampled_from(list('ai.onnx;com.microsoft,{}[]":0123456789 #!\n\r\x0b\x85\u2028-_AddRelu\\é'))


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(
        [
            'ai.onnx;17;Add,MatMul{"inputs": {"0": ["float"]}}\ncom.microsoft;1;FusedMatMul\n',
            "!globally_allowed_types;float,int64_t\nai.onnx;13,17;Relu\n",
            '# c\nai.onnx.ml;3;OneHot{"custom": [["int64_t", "float", "int64_t"]]}\n',
        ]
    ),
    edits=st.lists(
        st.tuples(st.integers(0, 200), st.text(_CONFIG_ALPHABET, max_size=6), st.integers(0, 4)), max_size=6
    ),
)
def test_config_parser_on_mutated_text_raises_only_config_errors(base: str, edits: list[tuple[int, str, int]]) -> None:
    text = base
    for pos, insert, delete in edits:
        pos = min(pos, len(text))
        text = text[:pos] + insert + text[pos + delete :]
    try:
        config = OpConfig.parse(text)
    except ConfigError:
        return
    assert OpConfig.parse(config.format()).format() == config.format()  # what parses formats back stably


def test_header_comment_cannot_inject_a_config_line() -> None:
    config = OpConfig()
    config.add("ai.onnx", 17, "Relu")
    text = config.format(header=["models:", "- /tmp/a\nai.onnx;1;Evil.onnx", "x\u2028y"])
    parsed = OpConfig.parse(text)
    assert {str(i) for i in parsed} == {"ai.onnx;17;Relu"}
    assert "ai.onnx;1;Evil" not in {str(i) for i in parsed} and "\\n" in text


@pytest.mark.parametrize(
    "line, message",
    [
        ('ai.onnx;17;Relu{"custom": 5}', "custom"),
        ('ai.onnx;17;Relu{"inputs": [1]}', "inputs"),
        ('ai.onnx;17;Relu{"inputs": {"x": ["float"]}}', "index"),
        ('ai.onnx;17;Relu{"inputs": {"0": ["complex"]}}', "unknown type"),
        ("ai.onnx;99999;Relu", "opset must be from 1 to 1000"),
        ("ai.onnx;+1;Relu", "comma-separated list of integers"),
        ("ai.onnx;17;Relu\u00e9", "invalid operator name"),
        ("ai.onnx;17;" + "[" * 5000, "invalid operator name"),
        ("ai.onnx;17;R{" + '{"a":' * 3000 + "}", "x.config"),
    ],
)
def test_config_type_errors_are_config_errors(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OpConfig.parse(line + "\n", "x.config")


def test_opconfig_add_refuses_what_the_grammar_cannot_carry() -> None:
    config = OpConfig()
    for bad in [("ai.onnx", 17, "A;B"), ("ai.onnx", 0, "Relu"), ("ai.onnx", 17, ""), ("a;b", 1, "Relu")]:
        with pytest.raises(ConfigError):
            config.add(*bad)


# -- the safe writer ------------------------------------------------------------------------------------------
def test_outputs_get_the_umask_mode_and_keep_a_replaced_files_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    finally:
        os.umask(old)
    (tmp_path / "b.txt").write_text("old")
    os.chmod(tmp_path / "b.txt", 0o604)
    atomic_write_text(tmp_path / "b.txt", "new")
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o604 and (tmp_path / "b.txt").read_text() == "new"


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "t.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real" / "t.txt")
    atomic_write_text(tmp_path / "link.txt", "new")
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "real" / "t.txt").read_text() == "new"
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["t.txt"]


def test_a_full_disk_is_one_error_and_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("precious")
    with (
        pytest.raises(OutputError, match=r"keep.txt: writing failed: No space left on device"),
        atomic_open(tmp_path / "keep.txt") as f,
    ):
        f.write("partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert (tmp_path / "keep.txt").read_text() == "precious" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_check_outputs_sees_an_output_inside_an_input_directory(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.onnx").write_bytes(TINY)
    with pytest.raises(OutputError, match="is also an input"):
        check_outputs([tmp_path / "models" / "a.onnx"], [tmp_path / "models"])
    check_outputs([tmp_path / "out.config"], [tmp_path / "models"])


# -- the library API -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_input_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    a = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    b = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, ["batch", "seq"])
    graph = helper.make_graph([helper.make_node("Add", ["input_ids", "attention_mask"], ["y"])], "g", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("m") / "two.onnx"
    onnx.save(model, path)
    return path


def test_session_api_errors_are_ortprune_errors(two_input_model: Path) -> None:
    from ortprune.runtime import Session

    with pytest.raises(OrtpruneError, match="threads must be between 0"):
        Session(two_input_model, threads=2**40)
    with pytest.raises(OrtpruneError, match="threads must be an integer"):
        Session(two_input_model, threads=1.5)  # type: ignore[arg-type]
    with pytest.raises(OrtpruneError, match="NUL character"):
        Session(str(two_input_model) + "\0.bak")
    with pytest.raises(OrtpruneError, match="config entries must be strings"):
        Session(two_input_model, config={"a": 1})  # type: ignore[dict-item]
    with Session(two_input_model) as s:
        with pytest.raises(OrtpruneError, match="feeds must be a mapping"):
            s.run(None)  # type: ignore[arg-type]
        ids, mask = np.ones((1, 4), dtype=np.int64), np.ones((1, 7), dtype=np.int64)
        with pytest.raises(
            OrtpruneError, match=r"dimension 'seq' \(axis 1\) is 7, but input 'input_ids' has 'seq' = 4"
        ):
            s.run({"input_ids": ids, "attention_mask": mask})
        assert s.run({"input_ids": ids, "attention_mask": ids})["y"].tolist() == [[2, 2, 2, 2]]


def test_embed_refuses_a_lone_surrogate() -> None:
    from ortprune.embed import TextEmbedding

    with (
        TextEmbedding("all-MiniLM-L6-v2-int8") as emb,
        pytest.raises(OrtpruneError, match="document 1 is not valid Unicode text"),
    ):
        list(emb.embed(["fine", "half \ud800 a pair"]))


# -- CLI forms that must work -------------------------------------------------------------------------------
def test_scan_to_a_pipe_writes_a_config_that_parses_back(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 4) / "m.onnx"
    deep.parent.mkdir(parents=True)
    deep.write_bytes(TINY)
    proc = subprocess.run([*CLI, "scan", "-q", "-O", "disable", str(deep)], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "40"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert {str(i) for i in OpConfig.parse(proc.stdout)} == {"ai.onnx;17;Neg", "ai.onnx;17;Relu"}
    assert str(deep) in proc.stdout  # the long path on one line, not wrapped


def test_a_file_name_with_a_newline_stays_in_its_comment(tmp_path: Path) -> None:
    path = tmp_path / "evil\nai.onnx;1;Evil.onnx"
    path.write_bytes(TINY)
    proc = subprocess.run([*CLI, "scan", "-q", "-O", "disable", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert {str(i) for i in OpConfig.parse(proc.stdout)} == {"ai.onnx;17;Neg", "ai.onnx;17;Relu"}


def test_probe_models_takes_several_files_and_unprobed_ops_fail(tmp_path: Path) -> None:
    from ortprune.cli import _expand_multi
    from ortprune.runtime import find_library

    assert _expand_multi(["probe", "L", "--models", "a", "b", "-j", "1"], "probe", "--models") == [
        "probe", "L", "--models", "a", "--models", "b", "-j", "1"]  # fmt: skip
    lib = find_library(None)
    for name in ("a.onnx", "b.onnx"):
        (tmp_path / name).write_bytes(TINY)
    proc = subprocess.run([*CLI, "probe", lib, "--models", str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx"),
                           "-j", "1", "--json", str(tmp_path / "p.json")], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ops = {r["op"] for r in json.loads((tmp_path / "p.json").read_text())["results"]}
    assert ops == {"ai.onnx;17;Neg", "ai.onnx;17;Relu"}
    (tmp_path / "c.config").write_text("ai.onnx;17;Relu,NoSuchOp\n")
    args = [*CLI, "probe", lib, "--config", str(tmp_path / "c.config"), "-j", "1"]
    proc = subprocess.run(args, capture_output=True, text=True)
    assert proc.returncode == 1 and "1 op(s) could not be probed" in proc.stderr
    assert subprocess.run([*args, "--allow-unprobed"], capture_output=True, text=True).returncode == 0


def test_control_flow_ops_are_probed() -> None:
    from ortprune.opconfig import OpId
    from ortprune.runtime import find_library
    from ortprune.verify import probe
    from ortprune.verify.probe import IMPLEMENTED

    ops = [
        OpId("ai.onnx", 16, "If"),
        OpId("ai.onnx", 16, "Loop"),
        OpId("ai.onnx", 8, "Scan"),
        OpId("ai.onnx", 19, "Scan"),
    ]
    report = probe(find_library(None), ops, jobs=1)
    assert {r.op: r.status for r in report.results} == {str(o): IMPLEMENTED for o in ops}


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([*CLI, "--debug", "scan", str(tmp_path / "missing.onnx")], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ModelError" in proc.stderr


def test_ctrl_c_is_interrupted_130() -> None:
    import signal
    import time

    # a terminal's Ctrl-C: SIGINT at its default. A runner started in the background of a non-interactive
    # shell (`cmd &`) passes SIGINT ignored to its children, and Python then leaves it ignored
    proc = subprocess.Popen(
        [*CLI, "embed", "-"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # wait until it blocks in read(0, ...) (imports done), however busy the machine: no fixed sleep. The
    # syscall, not just "a pipe" in wchan: a pipe read during startup is not the stdin read
    syscall = Path(f"/proc/{proc.pid}/syscall")
    deadline = time.monotonic() + 120
    while not (syscall.read_text() if syscall.exists() else "").startswith("0 0x0 ") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert syscall.read_text().startswith("0 0x0 "), "the CLI never waited on stdin"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, (proc.returncode, err)


def test_missing_model_error_is_a_model_error(tmp_path: Path) -> None:
    from ortprune.scan import scan_model

    with pytest.raises(ModelError, match="no such file"):
        scan_model(tmp_path / "nope.onnx", "disable")
