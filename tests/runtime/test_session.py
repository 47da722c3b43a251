"""The ctypes runtime on the wheel's real libonnxruntime, against onnxruntime.InferenceSession."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto
from tokenizers import Tokenizer

from ortprune.errors import OrtpruneError
from ortprune.runtime import InputError, OrtError, Session, load_library
from tests.runtime import tiny

TEXTS = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog, again and again, until the dog finally wakes up.",
    "ONNX Runtime",
    "",
]


def tokenize(tokenizer_dir: Path, texts: list[str]) -> dict[str, np.ndarray]:
    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    tok.no_truncation()
    enc = tok.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }


def reference(model: Path, feeds: dict[str, np.ndarray], threads: int = 1) -> tuple[ort.InferenceSession, dict]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = threads
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    feeds = {k: v for k, v in feeds.items() if k in names}
    return sess, dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))


@pytest.mark.parametrize("which", ["int8", "fp32", "fused"])
def test_outputs_match_onnxruntime(which: str, request: pytest.FixtureRequest, tokenizer_dir: Path) -> None:
    model: Path = request.getfixturevalue({"int8": "int8_model", "fp32": "fp32_model", "fused": "fused_model"}[which])
    feeds = tokenize(tokenizer_dir, TEXTS)
    ref_sess, expected = reference(model, feeds)
    with Session(model, threads=1) as s:
        feeds = {k: v for k, v in feeds.items() if k in s.input_names}
        got = s.run(feeds)
        assert list(got) == [o.name for o in ref_sess.get_outputs()]
        for name, want in expected.items():
            assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
            np.testing.assert_allclose(got[name], want, rtol=0, atol=1e-6, err_msg=name)
        # a subset of outputs, in the order asked for
        last = s.output_names[-1]
        assert list(s.run(feeds, [last])) == [last]


def test_metadata_matches_onnxruntime(int8_model: Path, fp32_model: Path) -> None:
    for model in (int8_model, fp32_model):
        ref = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        with Session(model) as s:
            for ours, theirs in [
                *zip(s.inputs, ref.get_inputs(), strict=True),
                *zip(s.outputs, ref.get_outputs(), strict=True),
            ]:
                assert ours.name == theirs.name
                assert f"tensor({'float' if ours.type_name == 'float32' else ours.type_name})" == theirs.type
                assert list(ours.shape) == theirs.shape


def test_symbolic_and_unnamed_dims() -> None:
    with Session(tiny.two_inputs_two_outputs()) as s:
        assert [(i.name, i.shape, i.dtype) for i in s.inputs] == [
            ("a", (None, 4), np.float32),
            ("b", (None, 4), np.float32),
        ]
        assert s.output_names == ["sum", "prod"]
        a, b = np.arange(8, dtype=np.float32).reshape(2, 4), np.full((2, 4), 3, np.float32)
        out = s.run({"a": a, "b": b})
        np.testing.assert_array_equal(out["sum"], a + b)
        np.testing.assert_array_equal(out["prod"], a * b)


def test_named_dims_must_agree_but_placeholders_need_not() -> None:
    # Paddle2ONNX (PP-OCR) writes "?" on every free axis: ORT runs any sizes, so ortprune must too
    with Session(tiny.unary("Identity", TensorProto.FLOAT, ["?", 3, "?", "?"])) as s:
        x = np.ones((2, 3, 48, 192), np.float32)
        np.testing.assert_array_equal(s.run({"x": x})["y"], x)
    with (
        Session(tiny.unary("Identity", TensorProto.FLOAT, ["n", "n"])) as s,
        pytest.raises(InputError, match=r"dimension 'n' \(axis 1\) is 3, but input 'x' has 'n' = 2"),
    ):
        s.run({"x": np.ones((2, 3), np.float32)})


@pytest.mark.parametrize("dtype", list(tiny.DTYPES))
def test_dtype_round_trip(dtype: str) -> None:
    with Session(tiny.unary("Identity", tiny.DTYPES[dtype])) as s:
        assert s.inputs[0].dtype == np.dtype(dtype) and s.inputs[0].shape == ("batch", "n")
        for shape in [(3, 5), (0, 4), (1, 1)]:
            x = tiny.random_array(dtype, shape)
            y = s.run({"x": x})["y"]
            assert y.dtype == np.dtype(dtype) and y.shape == shape
            np.testing.assert_array_equal(y, x)
            assert not np.shares_memory(x, y)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int32", "int64"])
def test_computes_like_numpy(dtype: str) -> None:
    with Session(tiny.two_inputs_two_outputs(tiny.DTYPES[dtype])) as s:
        a, b = tiny.random_array(dtype, (5, 4), 1) % 100, tiny.random_array(dtype, (5, 4), 2) % 100
        out = s.run({"a": a, "b": b})
        np.testing.assert_array_equal(out["sum"], a + b)
        np.testing.assert_array_equal(out["prod"], a * b)


def test_non_contiguous_and_list_inputs() -> None:
    with Session(tiny.two_inputs_two_outputs()) as s:
        a = np.arange(32, dtype=np.float32).reshape(4, 8)[:, ::2]  # a strided view
        out = s.run({"a": a, "b": np.ones((4, 4), np.float32)})
        np.testing.assert_array_equal(out["sum"], a + 1)


def test_concurrent_runs_from_threads(int8_model: Path, tokenizer_dir: Path) -> None:
    """One session, 6 threads running different batches at once: every result equals the serial one."""
    batches = [tokenize(tokenizer_dir, [t * (i + 1) for t in TEXTS[:2]]) for i in range(6)]
    with Session(int8_model, threads=1) as s:
        serial = [s.run(b)["last_hidden_state"] for b in batches]
        results: dict[tuple[int, int], np.ndarray] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(len(batches))

        def work(i: int) -> None:
            try:
                start.wait()
                for rep in range(3):
                    results[i, rep] = s.run(batches[i])["last_hidden_state"]
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        for (i, _), got in results.items():
            np.testing.assert_array_equal(got, serial[i])


def test_optimized_model_path(int8_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "optimized.onnx"
    with Session(int8_model, optimization_level="all", optimized_model_path=out):
        pass
    ops = {n.op_type for n in onnx.load(str(out), load_external_data=False).graph.node}
    assert "SkipLayerNormalization" in ops  # a fusion ORT makes at load time (see README, scan)


def test_options(fp32_model: Path) -> None:
    with Session(
        fp32_model,
        threads=2,
        optimization_level="disable",
        log_level="error",
        config={"session.intra_op.allow_spinning": "0"},
    ) as s:
        assert s.run({"input_ids": np.array([[101, 102]]), "attention_mask": np.ones((1, 2), np.int64)})
    with pytest.raises(OrtpruneError, match="unknown optimization level 'fastest'"):
        Session(fp32_model, optimization_level="fastest")
    with pytest.raises(OrtError, match="graph_optimization_level is not valid") as e:
        Session(fp32_model, optimization_level=4)
    assert e.value.code_name == "INVALID_ARGUMENT"
    with pytest.raises(OrtError, match="session config") as e:
        Session(fp32_model, config={"session.disable_prepacking": "nonsense-but-accepted", "": "x"})


# -- inputs checked in Python before ORT sees them --------------------------------------------------------
def test_wrong_dtype_names_input_expected_and_got(int8_model: Path, tokenizer_dir: Path) -> None:
    feeds = tokenize(tokenizer_dir, TEXTS[:1])
    with Session(int8_model) as s:
        bad = dict(feeds, input_ids=feeds["input_ids"].astype(np.int32))
        with pytest.raises(InputError, match=r"input 'input_ids': expected element type int64, got int32"):
            s.run(bad)
        with pytest.raises(
            InputError,
            match=r"input 'attention_mask': expected rank 2 \(shape \[batch, sequence\]\)"
            r", got rank 1",
        ):
            s.run(dict(feeds, attention_mask=feeds["attention_mask"][0]))
        with pytest.raises(InputError, match="missing input 'token_type_ids'"):
            s.run({k: v for k, v in feeds.items() if k != "token_type_ids"})
        with pytest.raises(InputError, match="no input 'input'"):
            s.run(dict(feeds, input=feeds["input_ids"]))
        with pytest.raises(InputError, match="no output 'pooled'"):
            s.run(feeds, ["pooled"])
        with pytest.raises(InputError, match="expected element type int64, got float64"):
            s.run(dict(feeds, token_type_ids=[[0.0] * feeds["input_ids"].shape[1]]))
        assert s.run(feeds)["last_hidden_state"].shape[0] == 1  # the session still works


def test_fixed_dimension_checked() -> None:
    with Session(tiny.two_inputs_two_outputs()) as s:
        a = np.zeros((2, 3), np.float32)
        with pytest.raises(InputError, match=r"input 'a': expected shape \[\?, 4\], got \[2, 3\] \(axis 1 must be 4\)"):
            s.run({"a": a, "b": a})


# -- models ORT rejects -------------------------------------------------------------------------------------
def test_rejected_models(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(OrtError) as e:
        Session(garbage)
    assert e.value.code_name == "INVALID_PROTOBUF" and str(garbage) in str(e.value)
    assert e.value.path == garbage

    with pytest.raises(OrtError, match="File doesn't exist") as e:
        Session(tmp_path / "missing.onnx")
    assert e.value.code_name == "NO_SUCHFILE"

    with pytest.raises(OrtError, match="No Op registered for NoSuchOp") as e:
        Session(tiny.unary("NoSuchOp", tiny.DTYPES["float32"], check=False), log_level="fatal")
    assert e.value.code_name == "INVALID_GRAPH"


def test_missing_kernel_is_reported_like_a_pruned_build() -> None:
    """What verify/probe reads from a pruned library: ORT's own text and NOT_IMPLEMENTED."""
    with pytest.raises(OrtError, match=r"Could not find an implementation for Acos\(7\) node") as e:
        Session(tiny.unary("Acos", tiny.DTYPES["float64"]), log_level="fatal")
    assert e.value.code == 9 and e.value.ort_message.startswith("Could not find an implementation")


# -- handles ------------------------------------------------------------------------------------------------
def test_every_handle_released_once(fp32_model: Path) -> None:
    lib = load_library()
    before_live, before_released = lib.live_handles(), lib.released_handles()
    data = fp32_model.read_bytes()
    for i in range(10):
        s = Session(data if i % 2 else fp32_model)
        assert lib.live_handles().get("session", 0) == before_live.get("session", 0) + 1
        s.close()
        s.close()  # a second close is a no-op
        assert s.closed
        with pytest.raises(OrtpruneError, match="the session is closed"):
            s.run({})
    with Session(fp32_model):
        pass
    s = Session(fp32_model)
    del s  # released by the garbage collector (CPython: at once)
    released = lib.released_handles()
    assert lib.live_handles() == before_live
    assert released.get("session", 0) - before_released.get("session", 0) == 12
    assert released.get("session_options", 0) - before_released.get("session_options", 0) == 12


def test_failed_session_releases_options(tmp_path: Path) -> None:
    lib = load_library()
    before = lib.live_handles()
    for _ in range(3):
        with pytest.raises(OrtError):
            Session(tmp_path / "missing.onnx")
    assert lib.live_handles() == before


def test_runs_do_not_leak() -> None:
    """300 runs each returning 8 MB: a leaked OrtValue per run would add 2.4 GB to the RSS."""
    n = 2 * 1024 * 1024 // 4 * 4

    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    with Session(tiny.big_output(n)) as s:
        x = np.arange(4, dtype=np.float32)
        for _ in range(20):
            s.run({"x": x})
        start = rss_mb()
        for _ in range(300):
            y = s.run({"x": x})["y"]
        grown = rss_mb() - start
    assert y.shape == (4 * n,) and y[5] == 1.0
    assert grown < 100, f"RSS grew by {grown:.0f} MB over 300 runs"


def test_close_while_other_threads_run(fp32_model: Path, tokenizer_dir: Path) -> None:
    """close() during runs on other threads: runs in flight finish, later ones get a clear error, and
    the session is released once, after the last run -- never freed under a running Run."""
    lib = load_library()
    before = lib.released_handles().get("session", 0)
    feeds = {k: v for k, v in tokenize(tokenizer_dir, TEXTS).items() if k != "token_type_ids"}
    s = Session(fp32_model, threads=1)
    outcomes: list[str] = []
    started = threading.Event()

    def work() -> None:
        for _ in range(50):
            try:
                s.run(feeds)
                outcomes.append("ok")
                started.set()
            except OrtpruneError as e:
                assert "the session is closed" in str(e)
                outcomes.append("closed")
                return

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    started.wait(60)
    s.close()
    for t in threads:
        t.join()
    assert "ok" in outcomes and outcomes.count("closed") == 3
    assert lib.released_handles().get("session", 0) == before + 1
