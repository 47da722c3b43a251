"""The optimized-model cache on the wheel's real libonnxruntime (1.32) and the real int8 MiniLM: a second
session loads the saved optimized model with outputs bit-identical; entries from another CPU, library or
release and corrupt entries are never used, and are rebuilt."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from ortprune import platform as plat
from ortprune.runtime import Session, wheel_library
from ortprune.runtime.cache import ENTRY_META, ENTRY_MODEL, CacheWarning, OptimizedModelCache

LIB = wheel_library()
pytestmark = pytest.mark.skipif(LIB is None, reason="needs the onnxruntime wheel's libonnxruntime")
FEEDS = {
    "input_ids": np.array([[101, 7592, 1010, 2088, 999, 102]], dtype=np.int64),
    "attention_mask": np.ones((1, 6), dtype=np.int64),
    "token_type_ids": np.zeros((1, 6), dtype=np.int64),
}


@pytest.fixture(scope="module")
def reference(int8_model: Path) -> np.ndarray:
    return Session(int8_model, LIB).run(FEEDS)["last_hidden_state"]


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / ENTRY_META).exists())


def run(model: Path, root: Path) -> tuple[Session, np.ndarray]:
    s = Session(model, LIB, cache=OptimizedModelCache(root, background=False))
    return s, s.run(FEEDS)["last_hidden_state"]


def test_miss_then_hit_identical(tmp_path: Path, int8_model: Path, reference: np.ndarray) -> None:
    s1, out1 = run(int8_model, tmp_path)
    assert s1.cache_status == "miss" and s1.loaded_from == int8_model
    (entry,) = entries(tmp_path)
    meta = json.loads((entry / ENTRY_META).read_text())
    assert meta["key"]["level"] == "99" and meta["key"]["cpu_flags"] == list(plat.cpu_flags())
    s2, out2 = run(int8_model, tmp_path)
    assert s2.cache_status == "hit" and s2.loaded_from == entry / ENTRY_MODEL
    assert np.array_equal(out1, reference) and np.array_equal(out2, reference)


def test_disable_level_and_ort_files_bypass(tmp_path: Path, int8_model: Path) -> None:
    s = Session(int8_model, LIB, optimization_level="disable", cache=tmp_path)
    assert s.cache_status is None and not tmp_path.joinpath("index").exists()


def test_other_cpu_never_reused(tmp_path: Path, int8_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry made on a CPU with other features (faked: cpu_flags patched) is not this CPU's entry."""
    monkeypatch.setattr(plat, "cpu_flags", lambda: ("avx512f", "avx512vnni"))
    assert run(int8_model, tmp_path)[0].cache_status == "miss"
    monkeypatch.undo()
    s, _ = run(int8_model, tmp_path)
    assert s.cache_status == "miss"
    assert len(entries(tmp_path)) == 2


@pytest.mark.parametrize("field", ["cpu_flags", "ort_version", "library_id"])
def test_entry_for_something_else_is_rebuilt(
    tmp_path: Path, int8_model: Path, reference: np.ndarray, field: str
) -> None:
    """An entry whose meta names another CPU, ORT release or library (copied in from elsewhere) is
    rebuilt, with a warning, and the session still runs the right model."""
    run(int8_model, tmp_path)
    (entry,) = entries(tmp_path)
    meta = json.loads((entry / ENTRY_META).read_text())
    meta["key"][field] = ["sse2"] if field == "cpu_flags" else "other"
    (entry / ENTRY_META).write_text(json.dumps(meta))
    with pytest.warns(CacheWarning, match="made for another model, library, level or CPU"):
        s, out = run(int8_model, tmp_path)
    assert s.cache_status == "rebuilt" and np.array_equal(out, reference)
    assert json.loads((entry / ENTRY_META).read_text())["key"][field] != meta["key"][field]
    assert run(int8_model, tmp_path)[0].cache_status == "hit"


def test_truncated_entry_is_rebuilt(tmp_path: Path, int8_model: Path, reference: np.ndarray) -> None:
    run(int8_model, tmp_path)
    (entry,) = entries(tmp_path)
    data = (entry / ENTRY_MODEL).read_bytes()
    (entry / ENTRY_MODEL).write_bytes(data[: len(data) // 2])
    with pytest.warns(CacheWarning, match="not the .* B written"):
        s, out = run(int8_model, tmp_path)
    assert s.cache_status == "rebuilt" and np.array_equal(out, reference)
    size = (entry / ENTRY_MODEL).stat().st_size
    assert size > len(data) // 2 and json.loads((entry / ENTRY_META).read_text())["ort_bytes"] == size


def test_garbled_entry_is_rebuilt(tmp_path: Path, int8_model: Path, reference: np.ndarray) -> None:
    """Same size, garbage where the flatbuffer's tables are, and a meta.json that vouches for it (as if
    the writer itself had saved garbage): ORT refuses it, the cache rebuilds it."""
    run(int8_model, tmp_path)
    (entry,) = entries(tmp_path)
    data = bytearray((entry / ENTRY_MODEL).read_bytes())
    data[8:4096] = b"\xff" * (4096 - 8)
    (entry / ENTRY_MODEL).write_bytes(bytes(data))
    meta = json.loads((entry / ENTRY_META).read_text())
    meta["ort_sha256"] = hashlib.sha256(data).hexdigest()
    (entry / ENTRY_META).write_text(json.dumps(meta))
    with pytest.warns(CacheWarning, match="it cannot be loaded"):
        s, out = run(int8_model, tmp_path)
    assert s.cache_status == "rebuilt" and np.array_equal(out, reference)


def test_changed_weights_are_rebuilt(tmp_path: Path, int8_model: Path, reference: np.ndarray) -> None:
    """Weight bytes changed in place (same size, a valid flatbuffer that ORT would load and run with
    wrong outputs): the saved model's SHA-256 no longer matches meta.json, the entry is rebuilt."""
    run(int8_model, tmp_path)
    (entry,) = entries(tmp_path)
    saved = entry / ENTRY_MODEL
    data = bytearray(saved.read_bytes())
    for i in range(4 << 20, len(data) - (4 << 20), 1 << 20):  # one byte a MB, inside the fp32 weights
        data[i] ^= 0x40
    with open(saved, "r+b") as f:  # in place: same inode, same size
        f.write(data)
    loaded = Session(saved, LIB, optimization_level="disable")  # ORT itself takes it...
    assert not np.array_equal(loaded.run(FEEDS)["last_hidden_state"], reference)  # ...and computes garbage
    with pytest.warns(CacheWarning, match=r"bytes changed since they were written \(SHA-256 differs\)"):
        s, out = run(int8_model, tmp_path)
    assert s.cache_status == "rebuilt" and np.array_equal(out, reference)
    assert run(int8_model, tmp_path)[0].cache_status == "hit"


def test_changed_model_gets_a_new_entry(tmp_path: Path) -> None:
    from onnx import numpy_helper

    from ..models import save, tiny_matmul

    model = save(tiny_matmul(), tmp_path / "m.onnx")
    root = OptimizedModelCache(tmp_path / "cache", background=False)
    assert Session(model, LIB, cache=root).cache_status == "miss"
    assert Session(model, LIB, cache=root).cache_status == "hit"
    m2 = tiny_matmul()
    m2.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.full((4, 4), 2.0, dtype=np.float32), "w"))
    save(m2, model)
    s = Session(model, LIB, cache=root)
    assert s.cache_status == "miss"
    x = np.ones((1, 4), dtype=np.float32)
    assert np.array_equal(s.run({"x": x})["y"], np.full((1, 4), 8.0, dtype=np.float32))
    assert len(entries(root.root)) == 2


def test_background_build(tmp_path: Path, int8_model: Path, reference: np.ndarray) -> None:
    """The default: a miss loads as usual, and when that process exits a detached process writes the
    entry (never while the first start runs); the next session hits."""
    import subprocess
    import sys
    import time

    miss = (
        "import sys; from ortprune.runtime import Session; "
        "s = Session(sys.argv[1], sys.argv[2], cache=sys.argv[3]); "
        "import os; assert s.cache_status == 'miss', s.cache_status; "
        "assert [e.name for e in os.scandir(sys.argv[3])] in ([], ['index']), 'an entry before exit'"
    )
    subprocess.run([sys.executable, "-c", miss, str(int8_model), str(LIB), str(tmp_path)], check=True)
    deadline = time.monotonic() + 120
    while not entries(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert entries(tmp_path), "the background process wrote no entry within 120 s"
    s2 = Session(int8_model, LIB, cache=tmp_path)
    assert s2.cache_status == "hit" and np.array_equal(s2.run(FEEDS)["last_hidden_state"], reference)


def test_default_root_follows_ortprune_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path))
    assert OptimizedModelCache().root == tmp_path / "optimized"


def test_warm_hit_hashes_nothing(tmp_path: Path, int8_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hit reads no file in full: the model's, the library's and the entry's hashes are remembered per
    file stat (the entry's from when it was written), so a warm start does not hash 90 MB again."""
    from ortprune.runtime import cache as cache_mod

    run(int8_model, tmp_path)
    hashed: list[Path] = []
    real = cache_mod.file_digest
    monkeypatch.setattr(cache_mod, "file_digest", lambda p, n=16: hashed.append(Path(p)) or real(p, n))
    s, _ = run(int8_model, tmp_path)
    assert s.cache_status == "hit" and hashed == []


def test_content_digest_follows_the_file(tmp_path: Path) -> None:
    """The remembered hash is keyed by size, mtime, ctime, inode: a rewrite with the same size and the old
    mtime put back is still seen (ctime moved); a file changed in the last RACY_SECONDS is not remembered."""
    import os
    import time

    from ortprune.runtime.cache import content_digest

    index = tmp_path / "index"
    f = tmp_path / "model.bin"
    f.write_bytes(b"a" * 1000)
    fresh = content_digest(f, index)
    assert fresh == hashlib.sha256(b"a" * 1000).hexdigest()
    assert not index.exists()  # racy: just written, hashed every time
    old = time.time_ns() - 3_600 * 10**9
    os.utime(f, ns=(old, old))
    time.sleep(2.1)  # ctime (set by utime) must be older than RACY_SECONDS too
    assert content_digest(f, index) == fresh and len(list(index.iterdir())) == 1  # remembered now
    with open(f, "r+b") as fh:  # same size, same inode, mtime put back: only ctime tells
        fh.write(b"b")
    os.utime(f, ns=(old, old))
    assert content_digest(f, index) == hashlib.sha256(b"b" + b"a" * 999).hexdigest()


def test_hit_where_files_cannot_be_mapped(
    tmp_path: Path, int8_model: Path, reference: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system that refuses mmap the entry is read instead: still a hit, still bit-identical
    (not a 'cannot be loaded' that would rebuild the entry on every start)."""
    import mmap

    run(int8_model, tmp_path)

    def no_mmap(*args: object, **kwargs: object) -> mmap.mmap:
        raise OSError(19, "No such device")

    monkeypatch.setattr(mmap, "mmap", no_mmap)
    s, out = run(int8_model, tmp_path)
    assert s.cache_status == "hit" and np.array_equal(out, reference)


def test_library_named_by_build_id_else_by_hash(tmp_path: Path, wheel_lib: Path) -> None:
    """The library part of the key is the linker's GNU build id (what `readelf -n` prints; a first start
    reads no 20 MB library to hash it, and a stripped copy shares the entry); a library without a build id
    is named by its SHA-256."""
    import re
    import shutil
    import subprocess

    from ortprune.runtime.cache import library_identity

    if shutil.which("readelf") is None or shutil.which("cc") is None:
        pytest.skip("needs binutils' readelf and a C compiler")
    notes = subprocess.run(["readelf", "-n", str(wheel_lib)], capture_output=True, text=True, check=True).stdout
    want = re.search(r"Build ID: ([0-9a-f]+)", notes)
    assert want is not None
    assert library_identity(wheel_lib, tmp_path) == f"gnu-build-id:{want[1]}"
    stripped = tmp_path / "stripped.so"
    subprocess.run(["strip", "--strip-all", "-o", str(stripped), str(wheel_lib)], check=True)
    assert library_identity(stripped, tmp_path) == f"gnu-build-id:{want[1]}"
    src = tmp_path / "x.c"
    src.write_text("int x(void) { return 1; }\n")
    for flag, prefix in (("-Wl,--build-id=none", "sha256:"), ("-Wl,--build-id=sha1", "gnu-build-id:")):
        lib = tmp_path / f"lib{flag[-4:]}.so"
        subprocess.run(["cc", "-shared", "-fPIC", flag, str(src), "-o", str(lib)], check=True)
        got = library_identity(lib, tmp_path)
        assert got.startswith(prefix)
        if prefix == "sha256:":
            assert got == "sha256:" + hashlib.sha256(lib.read_bytes()).hexdigest()


def test_first_start_hashes_beside_the_load(
    tmp_path: Path, int8_model: Path, reference: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Background cache (the default): a model whose hash is not remembered loads at once and is hashed
    beside the load. An entry that exists for it (made from a copy, or before the hash memo went) is not
    rebuilt: that start loads the model itself and the next one hits. (The writer is recorded, not started.)"""
    import shutil

    run(int8_model, tmp_path)  # an entry, written in the foreground
    (entry,) = entries(tmp_path)
    shutil.rmtree(tmp_path / "index")  # the remembered hashes go: the file looks new
    store = OptimizedModelCache(tmp_path)  # background
    scheduled: list[tuple[object, ...]] = []
    monkeypatch.setattr(store, "schedule", lambda *job: scheduled.append(job))
    assert not store.remembers(int8_model)
    s = Session(int8_model, LIB, cache=store)
    assert s.cache_status == "miss" and s.loaded_from == int8_model
    assert np.array_equal(s.run(FEEDS)["last_hidden_state"], reference)
    assert scheduled == [], "a writer was scheduled although the entry exists"
    assert store.remembers(int8_model) and entries(tmp_path) == [entry]
    s2 = Session(int8_model, LIB, cache=store)
    assert s2.cache_status == "hit" and np.array_equal(s2.run(FEEDS)["last_hidden_state"], reference)
    # no entry at all: the same first start schedules the writer
    shutil.rmtree(entry)
    shutil.rmtree(tmp_path / "index")
    s3 = Session(int8_model, LIB, cache=store)
    assert s3.cache_status == "miss" and len(scheduled) == 1
