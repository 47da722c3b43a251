"""Nothing replaced that the user did not name, nothing half-written, no maintenance that destroys by surprise.

The real CLI in subprocesses over a table (the machinery of tests/test_bad_inputs.py: exit code, one
``error:`` line naming the file, and every file's bytes, mode and kind the same before and after):

- an output that is an input reached indirectly: the library in ``$ORT_DYLIB_PATH`` (the default
  ``--reference``), a model's and tokenizer's files found in a fastembed cache or a bundled package,
  ``size diff``'s inputs, ``convert``'s models, library and files it did not write;
- ``store gc`` ages that are not a finite number >= 0;
- directories created only once there is something to write (``size --chart``, ``build --out``,
  ``convert --out``), and a multi-model ``convert`` that fails on one model leaves nothing of the run.

Then the cases the table cannot express: ``Session(p, optimized_model_path=p)``, gc keeping what was just
published unless ``--force``, and Ctrl-C at any moment of ``convert --optimized-onnx`` leaving a pair.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from ortprune.embed.registry import TOKENIZER_FILES
from tests import test_bad_inputs as bad
from tests.test_bad_inputs import CLI, Case, _snapshot, run_case

real_lib, world = bad.real_lib, bad.world  # the bad-input world's fixtures, used here too

#: The registry entry whose files the fake fastembed cache holds (model files copied from a bundled package).
CACHED = "BAAI/bge-small-en-v1.5"
SNAPSHOT = "fe/models--Qdrant--bge-small-en-v1.5-onnx-Q/snapshots/0123abcd"


def _bundled_files() -> tuple[Path, Path]:
    from ortprune.bundled import bundled

    m = bundled("all-MiniLM-L6-v2-int8")
    return m.path(), m.tokenizer()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


BUNDLED_ONNX = _bundled_files()[0]
BUNDLED_DIGEST = _digest(BUNDLED_ONNX)


def _bundled_model_unchanged(w: Path) -> None:
    assert _digest(BUNDLED_ONNX) == BUNDLED_DIGEST


@pytest.fixture
def tworld(world: Path, real_lib: Path) -> Path:
    """The bad-input world, plus: a copy of the library, a fastembed cache holding a registry model, a model
    whose ``.optimized.onnx`` name is another input, a ``.ort`` convert did not write, a second ELF file."""
    w = world
    shutil.copy(real_lib, w / "lib.so")
    shutil.copy(real_lib, w / "good.ort")  # the library, named like convert's output for good.onnx
    shutil.copy(w / "libz.so", w / "libz2.so")
    shutil.copy(w / "good.onnx", w / "good.optimized.onnx")
    shutil.copy(w / "good.onnx", w / "other.onnx")
    (w / "other.ort").write_text("the user's own file, not a model convert wrote\n")
    np.savez(w / "other.onnx.inputs.npz", x=np.ones(3, np.float32))  # verify's own feeds for other.onnx
    bad._save(bad._external(bad._model([helper.make_node("Relu", ["x"], ["y"])]), "weights.bin", "4"), w / "ext.onnx")
    onnx_file, tok_dir = _bundled_files()
    snap = w / SNAPSHOT
    snap.mkdir(parents=True)
    shutil.copy(onnx_file, snap / "model_optimized.onnx")
    for name in TOKENIZER_FILES:
        if (tok_dir / name).is_file():
            shutil.copy(tok_dir / name, snap / name)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text(snap.name)
    if shutil.which("gcc"):  # a library that loads another one beside it (DT_NEEDED, RUNPATH $ORIGIN)
        (w / "dep.c").write_text("int dep(void) { return 1; }\n")
        (w / "main.c").write_text("int dep(void);\nint f(void) { return dep(); }\n")
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", "libdep.so", "dep.c"], cwd=w, check=True)
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", "libmain.so", "main.c", "-L.", "-ldep",
                        "-Wl,-rpath,$ORIGIN"], cwd=w, check=True)  # fmt: skip
    return w


FE = {"FASTEMBED_CACHE_PATH": "{w}/fe", "HF_HUB_OFFLINE": "1"}

INDIRECT = [
    Case(
        "embed-o-the-library-in-ORT_DYLIB_PATH",
        ["embed", "hi", "-o", "{w}/lib.so"],
        1,
        r"lib.so: is also an input",
        env={"ORT_DYLIB_PATH": "{w}/lib.so"},
    ),
    Case(
        "verify-json-the-default-reference",
        ["verify", "{w}/good.onnx", "--lib", "{lib}", "--json", "{w}/lib.so"],
        1,
        r"lib.so: is also an input",
        env={"ORT_DYLIB_PATH": "{w}/lib.so"},
    ),
    Case(
        "verify-json-the-reference",
        ["verify", "{w}/good.onnx", "--lib", "{lib}", "--reference", "{w}/lib.so", "--json", "{w}/lib.so"],
        1,
        r"lib.so: is also an input",
    ),
    Case(
        "embed-o-a-cached-registry-model",
        ["embed", "hi", "--model", CACHED, "-o", "{w}/" + SNAPSHOT + "/model_optimized.onnx"],
        1,
        r"model_optimized.onnx: is also an input",
        env=FE,
    ),
    Case(
        "embed-o-a-cached-model-s-tokenizer",
        ["embed", "hi", "--model", CACHED, "-o", "{w}/" + SNAPSHOT + "/tokenizer.json"],
        1,
        r"tokenizer.json: is also an input",
        env=FE,
    ),
    Case(
        "embed-o-the-bundled-model-file",
        ["embed", "hi", "-o", str(BUNDLED_ONNX)],
        1,
        r"model.onnx: is also an input",
        check=_bundled_model_unchanged,
    ),
    Case(
        "verify-json-the-model-s-inputs-npz",
        ["verify", "{w}/other.onnx", "--lib", "{lib}", "--json", "{w}/other.onnx.inputs.npz"],
        1,
        r"other.onnx.inputs.npz: is also an input",
    ),
    Case(
        "scan-o-the-model-s-external-data",
        ["scan", "-O", "disable", "{w}/ext.onnx", "-o", "{w}/weights.bin"],
        1,
        r"weights.bin: is also an input",
    ),
    Case(
        "probe-json-the-model-s-external-data",
        ["probe", "{lib}", "--models", "{w}/ext.onnx", "--json", "{w}/weights.bin"],
        1,
        r"weights.bin: is also an input",
    ),
    Case(
        "size-o-a-library-it-loads",
        ["size", "{w}/libmain.so", "-o", "{w}/libdep.so"],
        1,
        r"libdep.so: is also an input",
    ),
    Case(
        "size-diff-o-old",
        ["size", "diff", "{w}/libz.so", "{w}/libz2.so", "-f", "markdown", "-o", "{w}/libz.so"],
        1,
        r"libz.so: is also an input",
    ),
    Case(
        "size-diff-o-new",
        ["size", "diff", "{w}/libz.so", "{w}/libz2.so", "-f", "json", "-o", "{w}/libz2.so"],
        1,
        r"libz2.so: is also an input",
    ),
    Case(
        "convert-optimized-onnx-is-another-input",
        ["convert", "{w}/good.onnx", "{w}/good.optimized.onnx", "--lib", "{lib}", "--out", "{w}", "--optimized-onnx"],
        1,
        r"good.optimized.onnx: is also an input",
    ),
    Case(
        "convert-ort-is-the-library",
        ["convert", "{w}/good.onnx", "--lib", "{w}/good.ort", "--out", "{w}"],
        1,
        r"good.ort: is also an input",
    ),
    Case(
        "convert-ort-over-a-file-it-did-not-write",
        ["convert", "{w}/other.onnx", "--lib", "{lib}", "--out", "{w}"],
        1,
        r"other.ort: exists and was not written by ortprune convert; refusing to replace it",
    ),
]

GC = [
    Case(
        f"gc-older-than-{name}",
        ["store", "gc", "--store", "{w}/dir", "--older-than", value],
        2,
        r"--older-than must be a finite number of days >= 0",
    )
    for name, value in (("negative", "-1"), ("nan", "nan"), ("inf", "inf"), ("minus-inf", "-inf"))
]

HALF_WRITTEN = [
    Case(
        "size-chart-new-dir-then-a-bad-library",
        ["size", "{w}/libz.so", "{w}/text.so", "--chart", "{w}/charts/new"],
        1,
        r"text.so: not an ELF file",
    ),
    Case(
        "build-out-new-dir-then-a-bad-config",
        ["build", "--variant", "reduced", "--config", "{w}/bad_types.config", "--out", "{w}/built/new"],
        1,
        r"bad_types.config:1:",
    ),
    Case(
        "convert-out-new-dir-second-model-fails",
        [
            "convert",
            "{w}/good.onnx",
            "{w}/unknown_op.onnx",
            "--lib",
            "{lib}",
            "--out",
            "{w}/ort/new",
            "--optimized-onnx",
        ],
        1,
        r"unknown_op.onnx: ONNX Runtime .* could not convert it",
    ),
    Case(
        "convert-out-existing-dir-second-model-fails",
        ["convert", "{w}/good.onnx", "{w}/unknown_op.onnx", "--lib", "{lib}", "--out", "{w}/dir"],
        1,
        r"unknown_op.onnx: ONNX Runtime .* could not convert it",
    ),
]

CASES = INDIRECT + GC + HALF_WRITTEN


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_trust_output(case: Case, tworld: Path, real_lib: Path, tmp_path: Path) -> None:
    run_case(case, tworld, real_lib, tmp_path)


def test_session_never_writes_its_optimized_model_over_its_inputs(tworld: Path) -> None:
    from ortprune.errors import OutputError
    from ortprune.runtime import Session, load_library

    lib = load_library(tworld / "lib.so")
    before = _snapshot(tworld)
    for target in (tworld / "good.onnx", tworld / "link_to_good.onnx", tworld / "lib.so"):
        with pytest.raises(OutputError, match="is also an input"):
            Session(tworld / "good.onnx", lib, optimized_model_path=target)
    assert _snapshot(tworld) == before
    Session(tworld / "good.onnx", lib, optimized_model_path=tworld / "opt.onnx").close()  # elsewhere: written
    assert onnx.load(str(tworld / "opt.onnx")).graph.node


def _artifact(root: Path, key: str, published: str) -> Path:
    """One artifact in a directory store, as publish lays it out: a blob and an index over it."""
    from ortprune.ortbuild.store import FORMAT, INDEX, LIBRARY, content_hash

    d = root / key
    d.mkdir(parents=True)
    data = b"a library"
    digest = hashlib.sha256(data).hexdigest()
    (d / f"{digest}.so").write_bytes(data)
    files: dict[str, dict[str, object]] = {LIBRARY: {"sha256": digest, "size": len(data), "blob": f"{digest}.so"}}
    index = {"key": key, "files": files, "content_hash": content_hash(key, files), "published": published,
             "format": FORMAT}  # fmt: skip
    (d / INDEX).write_text(json.dumps(index))
    old = time.time() - 3 * 86400  # the files are as old as their index says (gc's grace is for uploads)
    for f in d.iterdir():
        os.utime(f, (old, old))
    return d


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def test_gc_keeps_what_was_just_published_unless_forced(tmp_path: Path) -> None:
    store = tmp_path / "store"
    now = dt.datetime.now(dt.timezone.utc)
    fresh = _artifact(store, "1.21.0-full-aaaaaaaaaaaa", now.isoformat(timespec="seconds"))
    old = _artifact(store, "1.21.0-full-bbbbbbbbbbbb", (now - dt.timedelta(days=3)).isoformat(timespec="seconds"))
    bad = _artifact(store, "1.21.0-full-cccccccccccc", "last Tuesday")  # a malformed index field
    before = _snapshot(store)
    listed = _cli("store", "ls", "--store", str(store))
    assert listed.returncode == 0, listed.stderr
    assert "'published' is not an ISO date and time: 'last Tuesday'" in listed.stdout
    dry = _cli("store", "gc", "--store", str(store), "--older-than", "0", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _snapshot(store) == before
    res = _cli("store", "gc", "--store", str(store), "--older-than", "1")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert fresh.is_dir() and not old.exists()
    assert not bad.exists()  # not an index: removed as an unfinished upload once older than the grace period
    res = _cli("store", "gc", "--store", str(store), "--older-than", "0")
    assert res.returncode == 0 and fresh.is_dir(), res.stderr  # published a moment ago: kept
    res = _cli("store", "gc", "--store", str(store), "--older-than", "0", "--force")
    assert res.returncode == 0 and not fresh.exists(), res.stderr
    assert f"removed {fresh.name}/" in res.stdout


def test_convert_outputs_appear_together_or_not_at_all(tworld: Path, real_lib: Path, tmp_path: Path) -> None:
    """Ctrl-C at many moments of a two-model ``convert --optimized-onnx`` over a previous run's outputs:
    afterwards the directory holds the old four files or the new four, never a mix, and no staging dir."""
    from ortprune.ortformat import META_LEVEL, read_info

    models = [tworld / "good.onnx", BUNDLED_ONNX]
    out = tmp_path / "ort"
    first = _cli("convert", *map(str, models), "--lib", str(real_lib), "--out", str(out), "--optimized-onnx",
                 "-O", "basic")  # fmt: skip
    assert first.returncode == 0, first.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["good.optimized.onnx", "good.ort", "model.optimized.onnx", "model.ort"]

    def levels() -> set[str]:
        found = {read_info(out / n).metadata[META_LEVEL] for n in ("good.ort", "model.ort")}
        for n in ("good.optimized.onnx", "model.optimized.onnx"):
            found |= {p.value for p in onnx.load(str(out / n), load_external_data=False).metadata_props
                      if p.key == META_LEVEL}  # fmt: skip
        return found

    seen = set()
    for delay in (0.0, 0.3, 1.0, 2.0, 4.0, 8.0, 16.0):
        args = ["convert", *map(str, models), "--lib", str(real_lib), "--out", str(out), "--optimized-onnx"]
        proc = subprocess.Popen(
            [*CLI, *args, "-O", "extended"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # as a terminal's
        while proc.poll() is None and not list(out.glob(".ortprune-*.tmp")):  # in convert, past the imports
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
        # -SIGINT: it had finished and the interrupt landed in the interpreter's own shutdown (default handler)
        rc = 0 if proc.returncode == -signal.SIGINT else proc.returncode
        assert rc in (0, 130), err
        assert b"Traceback" not in err, err
        assert sorted(p.name for p in out.iterdir()) == names  # nothing else: no staging directory left
        got = levels()
        assert got in ({"basic"}, {"extended"}), got
        seen.add((rc, *got))
        if rc == 0:
            if (130, "basic") in seen:
                break
            # it finished before the interrupt (this process was not scheduled in time on a loaded machine):
            # the old outputs again, and the next moment
            again = _cli("convert", *map(str, models), "--lib", str(real_lib), "--out", str(out), "--optimized-onnx",
                         "-O", "basic")  # fmt: skip
            assert again.returncode == 0, again.stderr
    assert (130, "basic") in seen  # at least one interrupt landed before the renames


def test_build_export_writes_all_its_files_or_none(world: Path, tmp_path: Path) -> None:
    """The export behind ``build --out``: a copy failing half-way (here the wheel is gone) leaves ``--out``
    as it was (not even created); a whole export keeps the library's mode."""
    from ortprune.errors import OutputError
    from ortprune.ortbuild import runner
    from ortprune.results.build import BuildResult

    base = tmp_path / "t"
    lib = base / "build" / "libonnxruntime.so"
    lib.parent.mkdir(parents=True)
    shutil.copy(world / "libz.so", lib)
    os.chmod(lib, 0o755)
    result = BuildResult("1.21.0", "full", "k", [], [], None, None, "gcc", "cmake", "src", str(lib.parent), str(lib),
                         lib.stat().st_size, [], 1.0, wheel_file=str(base / "gone.whl"))  # fmt: skip
    out = base / "out" / "new"
    with pytest.raises(OSError) as e:
        runner.export(result, out)
    assert not isinstance(e.value, OutputError) and "gone.whl" in str(e.value)
    assert sorted(p.name for p in base.iterdir()) == ["build"]  # no out/, no staging directory
    result.wheel_file = None
    runner.export(result, out)
    assert sorted(p.name for p in out.iterdir()) == ["libonnxruntime.so", "libonnxruntime.stripped.so", "manifest.json"]
    assert os.stat(out / "libonnxruntime.so").st_mode & 0o777 == 0o755
    assert BuildResult.load(out / "manifest.json") == result
    assert not list(base.rglob(".ortprune-*"))


def test_results_never_writes_over_a_build_manifest_it_reads(world: Path, real_lib: Path, tmp_path: Path) -> None:
    from ortprune.results.build import BuildResult

    manifest = tmp_path / "cache" / "builds" / "1.21.0-full-k" / "manifest.json"  # in the case's ORTPRUNE_CACHE
    manifest.parent.mkdir(parents=True)
    BuildResult("1.21.0", "full", "k", [], [], None, None, "gcc", "cmake", "src", str(manifest.parent),
                str(real_lib), real_lib.stat().st_size, [], 1.0).save(manifest)  # fmt: skip
    before = manifest.read_bytes()
    case = Case("results-o-a-manifest", ["results", "-o", str(manifest)], 1, r"manifest.json: is also an input")
    run_case(case, world, real_lib, tmp_path)
    assert manifest.read_bytes() == before
