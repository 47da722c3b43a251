"""Counts beyond the machine answer at once, and input a user can give never ends in exit 70.

The real CLI in subprocesses over a table (the machinery of tests/test_bad_inputs.py: exit code, one
``error:`` line, every file's bytes, mode and kind the same before and after): thread counts, ``-j`` and
bad ``ORTPRUNE_STORE_TIMEOUT`` values. Then what the table cannot express: generated inputs too large for
the machine are one model's ``cannot-run`` verdict (the others still get theirs and ``--json`` is
written), an empty output compares equal, a directory tree deeper than Python's recursion limit is
searched, a full disk on stdout names standard output, a huge ``--batch-size`` is a clamp.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ortprune.errors import OrtpruneError, UsageError
from ortprune.platform import max_parallel
from tests import test_bad_inputs as bad
from tests.test_bad_inputs import CLI, Case, _snapshot, run_case

real_lib, world = bad.real_lib, bad.world  # the bad-input world's fixtures, used here too

HUGE = str(10**12)

COUNTS = [
    Case("embed-threads-huge", ["embed", "hi", "--threads", "1000000"], 2, r"--threads must be between 0 and \d+"),
    Case("embed-threads-negative", ["embed", "hi", "--threads", "-1"], 2, r"--threads must be between 0 and"),
    Case(
        "probe-jobs-huge",
        ["probe", "{lib}", "--config", "{w}/ops.config", "-j", HUGE],
        2,
        r"--jobs must be between 1 and \d+ \(8 per core",
    ),
    Case("build-jobs-huge", ["build", "-j", HUGE], 2, r"--jobs must be between 1 and 1024"),
    Case("slim-jobs-huge", ["slim", "{w}/good.onnx", "-j", HUGE, "--out", "{w}/out"], 2, r"--jobs must be between"),
]

TIMEOUTS = [
    Case(
        f"store-timeout-{name}",
        ["store", "ls", "--store", "http://127.0.0.1:9/"],
        2,
        r"\$ORTPRUNE_STORE_TIMEOUT must be a number of seconds > 0 and at most 86400",
        env={"ORTPRUNE_STORE_TIMEOUT": value},
    )
    for name, value in (
        ("text", "abc"),
        ("negative", "-1"),
        ("zero", "0"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("overflow", "1e400"),
        ("beyond-a-day", "1e9"),
    )
]

CASES = COUNTS + TIMEOUTS


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_trust_resources(case: Case, world: Path, real_lib: Path, tmp_path: Path) -> None:
    run_case(case, world, real_lib, tmp_path)


def test_python_api_counts_are_bounded(world: Path) -> None:
    from ortprune.embed import TextEmbedding
    from ortprune.ortbuild.store import gc, open_store, store_timeout
    from ortprune.runtime import Session

    with pytest.raises(OrtpruneError, match="threads must be between 0 and"):  # and a ValueError, as fastembed's
        Session(world / "good.onnx", threads=max_parallel() + 1)
    with Session(world / "good.onnx", threads=max_parallel()) as s:  # the bound itself is accepted
        assert s.input_names == ["x"]
    with TextEmbedding("all-MiniLM-L6-v2-int8") as emb:
        with pytest.raises(OrtpruneError, match="parallel must be between 0 and"):
            list(emb.embed(["a", "b"], parallel=10**9))
        one = list(emb.embed(["a", "b"], batch_size=10**6))  # larger than the list: one batch, as with 2
        assert np.array_equal(np.stack(one), np.stack(list(emb.embed(["a", "b"], batch_size=2))))
        with pytest.raises(ValueError, match="batch_size must be <="):  # beyond any index, as fastembed
            list(emb.embed(["a", "b"], batch_size=10**20))
    for bad_age in (-1.0, math.nan, math.inf):
        with pytest.raises(UsageError, match="--older-than must be a finite number"):
            gc(open_store(world / "dir"), bad_age)
    with pytest.raises(UsageError, match="the store timeout must be"):
        store_timeout(0.0)
    assert store_timeout(5) == 5.0


def _cli(*args: str, cwd: Path, **kw: object) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "ORT_DYLIB_PATH"}
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([*CLI, *args], timeout=300, cwd=cwd, env=env, **kw)  # type: ignore[call-overload]


def _relu(path: Path, shape: list[int | str]) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_verify_gives_every_model_its_verdict_and_writes_json(world: Path, real_lib: Path) -> None:
    """A model whose generated inputs would not fit in memory (a fixed dim of 10**12, or --dim n=10**24) is
    ``cannot-run`` with the size it would need; the model after it is still verified, the JSON written."""
    huge = _relu(world / "huge_dim.onnx", [10**12])
    sym = _relu(world / "sym.onnx", ["m"])  # good.onnx's dim is "n": only this model gets the huge size
    for args in (
        [str(huge), str(world / "good.onnx")],
        [str(sym), str(world / "good.onnx"), "--dim", f"m={10**24}"],
    ):
        out = world / "v.json"
        out.unlink(missing_ok=True)
        res = _cli("verify", *args, "--lib", str(real_lib), "--json", str(out), cwd=world)
        err = res.stderr.decode()
        assert res.returncode == 1 and "Traceback" not in err and "internal error" not in err, err
        report = json.loads(out.read_text())
        verdicts = [(Path(m["model"]).name, m["status"]) for m in report["models"]]
        first = Path(args[0]).name
        assert verdicts[0] == (first, "cannot-run"), verdicts
        assert verdicts[1][1] == "ok", verdicts
        assert "generated inputs would take" in report["models"][0]["detail"]


def test_an_empty_output_compares_equal(world: Path, real_lib: Path) -> None:
    """Slice to zero rows: the output is (0, 4); the comparison has nothing to differ, not a crash."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.array([v], np.int64), n) for n, v in (("s", 0), ("e", 0), ("a", 0))]
    graph = helper.make_graph([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])], "g", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(world / "empty_out.onnx"))
    res = _cli("verify", str(world / "empty_out.onnx"), "--lib", str(real_lib), "--json", "v.json", cwd=world)
    assert res.returncode == 0, res.stderr.decode()
    (verdict,) = json.loads((world / "v.json").read_text())["models"]
    assert verdict["status"] == "ok" and verdict["outputs"][0]["shape"] == [0, 4]


def test_a_tree_deeper_than_the_recursion_limit_is_searched(world: Path) -> None:
    here = Path.cwd()
    os.chdir(world)
    try:  # os.makedirs recurses too: build it one level at a time
        os.mkdir("deep")
        os.chdir("deep")
        for _ in range(1100):
            os.mkdir("d")
            os.chdir("d")
        shutil.copy(world / "good.onnx", "m.onnx")
    finally:
        os.chdir(here)
    try:
        res = _cli("scan", "-O", "disable", "-q", "deep", cwd=world)
        from ortprune.ortbuild.identity import tree_digest

        assert len(tree_digest(world / "deep")) == 64  # a source tree this deep is identified too
    finally:  # shutil.rmtree (pytest's cleanup) recurses as well: remove it from the bottom up
        levels = [world / "deep" / "/".join(["d"] * n) if n else world / "deep" for n in range(1101)]
        (levels[-1] / "m.onnx").unlink()
        for d in reversed(levels):
            d.rmdir()
    assert res.returncode == 0, res.stderr.decode()
    assert "ai.onnx;17;Relu" in res.stdout.decode()


def test_a_full_disk_on_stdout_names_standard_output(world: Path) -> None:
    before = _snapshot(world)
    with open("/dev/full", "wb") as full:
        res = _cli("scan", "-O", "disable", "-q", "good.onnx", cwd=world, stdout=full, stderr=subprocess.PIPE)
    lines = res.stderr.decode().splitlines()
    assert res.returncode == 1 and lines == ["error: standard output: No space left on device"], lines
    assert _snapshot(world) == before


def test_embed_batch_size_beyond_any_index_is_one_clear_error(world: Path) -> None:
    """Larger than any list can be (fastembed raises a ValueError there too): one line, at once."""
    res = _cli("embed", "a", "b", "--batch-size", str(10**20), cwd=world)
    assert res.returncode == 1 and res.stdout == b""
    assert res.stderr.decode().splitlines() == [f"error: batch_size must be <= {sys.maxsize}, got {10**20}"]
    big = _cli("embed", "a", "b", "--batch-size", str(10**6), cwd=world)  # larger than the texts: one batch
    assert big.returncode == 0 and big.stdout.decode().count("\n") == 2, big.stderr.decode()


def test_check_parallel_message_says_why() -> None:
    from ortprune.platform import check_parallel

    assert check_parallel(None, "x") is None and check_parallel(3, "x") == 3
    with pytest.raises(UsageError, match=r"8 per core, at least 64; \d+ cores here"):
        check_parallel(max_parallel() + 1, "--jobs")
    with pytest.raises(OrtpruneError, match="must be an integer"):
        check_parallel(1.5, "--jobs")  # type: ignore[arg-type]


#: A manifest field hand-edited or damaged: (field, JSON value, what the error says it must be).
BAD_FIELDS = [
    ("library_bytes", '"big"', "int"),
    ("extra_flags", "5", r"list\[str\]"),
    ("library", "null", "str"),
    ("runs", "[1]", r"list\[dict\[str, object\]\]"),
    ("wall_time_s", "true", "float"),
    ("stripped_bytes", '"12"', r"int \| None"),
]


@pytest.mark.parametrize(("field", "value", "must"), BAD_FIELDS, ids=[f[0] for f in BAD_FIELDS])
@pytest.mark.parametrize("command", ["results", "push"])
def test_a_malformed_manifest_field_is_one_error_naming_the_file(
    field: str, value: str, must: str, command: str, world: Path, real_lib: Path, tmp_path: Path
) -> None:
    from ortprune.results.build import BuildResult

    good = BuildResult("1.21.0", "full", "k", [], [], None, None, "gcc", "cmake", "src", "bd", str(real_lib),
                       real_lib.stat().st_size, [], 1.0).to_dict()  # fmt: skip
    manifest = tmp_path / "cache" / "builds" / "1.21.0-full-k" / "manifest.json"  # the case's ORTPRUNE_CACHE
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({**good, field: json.loads(value)}))
    args = ["results", "-o", "{w}/r.md"] if command == "results" else ["store", "push", "--store", "{w}/dir"]
    message = rf"1.21.0-full-k/manifest.json: not a build manifest: field '{field}' must be {must}, got"
    run_case(Case(f"{command}-{field}", args, 1, message), world, real_lib, tmp_path)


@pytest.mark.parametrize("cache", ["plain.txt", "/dev/null"])
def test_a_cache_that_is_not_a_directory_is_one_error(cache: str, world: Path) -> None:
    before = _snapshot(world)
    env = {**os.environ, "ORTPRUNE_CACHE": cache if cache.startswith("/") else str(world / cache)}
    res = subprocess.run([*CLI, "results", "-o", "r.md"], capture_output=True, text=True, cwd=world, env=env,
                         timeout=120)  # fmt: skip
    assert res.returncode == 1 and res.stderr.splitlines() == [
        f"error: {env['ORTPRUNE_CACHE']}: $ORTPRUNE_CACHE is not a directory; point it at a directory"
    ], res.stderr
    assert _snapshot(world) == before


def test_walk_is_os_walk_without_recursion(world: Path) -> None:
    """The same entries in the same order as os.walk (whose order build keys hash), pruning included."""
    from ortprune._io import walk

    (world / "dir" / "sub" / "subsub").mkdir(parents=True)
    (world / "dir" / "sub" / "f").write_text("x")
    (world / "dir" / "link_to_sub").symlink_to(world / "dir" / "sub")

    def listing(walker: object) -> list[tuple[str, list[str], list[str]]]:
        out = []
        for d, dirs, files in walker:  # type: ignore[attr-defined]
            dirs[:] = sorted(x for x in dirs if x != "subsub")
            out.append((d, list(dirs), sorted(files)))
        return out

    assert listing(walk(world)) == listing(os.walk(world))
