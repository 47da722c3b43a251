"""A cache of optimized models, so a process loads what an earlier one optimized (cold start).

ORT optimizes a model every time a session is created (level ``all``: fusions, constant folding of
weights), which is most of a fresh process's load time on our MinSizeRel builds. The first session of a
model saves the graph it optimized, in ORT format (``session.save_model_format=ORT``); later sessions
load that file at level ``disable`` (and so pre-pack exactly the same constant weights: outputs are
bit-identical).

An entry is keyed by everything the optimized graph depends on: the model's content hash and those of its
external-data files (ORT folds and pre-packs their weights into the saved graph), the library's
build id (else its content hash) and version, the optimization level and the CPU features ORT's rewrites
depend on (ORT warns that NCHWc-optimized models are hardware-specific). Each entry carries ``meta.json`` with those
fields and the saved file's size and SHA-256; an entry that does not match (another CPU or library
copied in, truncated, bytes changed, unreadable by ORT) is rebuilt, with a warning. Hashes of the model,
the library and the saved file are remembered per file stat (:func:`content_digest`), so a warm start
reads no file in full: it maps the saved model and ORT uses its bytes in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ortprune import platform as plat
from ortprune.cache import cache_dir, file_digest

ENTRY_MODEL = "model.ort"
ENTRY_META = "meta.json"
FORMAT = 4  # 2: meta.json holds the saved model's SHA-256; 3: the library is named by its GNU build id;
# 4: the key covers the model's external-data files


class CacheWarning(UserWarning):
    """A cache entry was unusable and has been rebuilt."""


@dataclass(frozen=True)
class CacheKey:
    model_sha256: str
    library_id: str  # "gnu-build-id:<hex>", else "sha256:<hex>" of the file (library_identity)
    ort_version: str
    level: str
    machine: str
    cpu_flags: tuple[str, ...]
    external_data_sha256: str = ""  # over each external-data file's name and SHA-256 ("" when none)

    def digest(self) -> str:
        data = json.dumps([FORMAT, *asdict(self).values()], default=list)
        return hashlib.sha256(data.encode()).hexdigest()[:24]

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["cpu_flags"] = list(self.cpu_flags)
        return d


#: A file changed less than this long ago is hashed on every call, never remembered: a second write
#: within the file system's timestamp granularity would leave size and times unchanged ("racy" files,
#: as git treats them).
RACY_SECONDS = 2.0


def _stat_key(p: Path, st: os.stat_result) -> str:
    fields = (p, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    return hashlib.sha256("\0".join(map(str, fields)).encode()).hexdigest()[:32]


def content_digest(path: str | Path, index: Path) -> str:
    """SHA-256 of a file, remembered per (real path, size, mtime, ctime, inode, device) so a warm start
    does not hash a 90 MB model again. A changed file has new times and is hashed anew; a file changed
    in the last :data:`RACY_SECONDS` is hashed every time."""
    p = Path(path).resolve()
    st = p.stat()
    remembered = _remembered(p, st, index)
    if remembered is not None:
        return remembered
    digest = file_digest(p, 64)
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_SECONDS * 1e9:
        remember_digest(p, st, digest, index)
    return digest


def external_data_digest(model: str | Path, model_sha256: str, index: Path) -> str:
    """SHA-256 over the name and content hash of every external-data file ``model`` names ("" for none): the
    weights ORT reads from beside the model are part of the graph it saves. Which files a model names
    depends on its bytes only, so it is remembered per model hash; the files' hashes per their stat."""
    locations = _external_locations(Path(model), model_sha256, index)
    if not locations:
        return ""
    h = hashlib.sha256()
    for location in locations:
        h.update(f"{location}\0{content_digest(Path(model).parent / location, index)}\0".encode())
    return h.hexdigest()


def _external_locations(model: Path, model_sha256: str, index: Path) -> list[str]:
    memo = index / f"external-{model_sha256[:32]}"
    with contextlib.suppress(OSError, ValueError):
        found = json.loads(memo.read_text())
        if isinstance(found, list) and all(isinstance(x, str) for x in found):
            return found
    import onnx

    try:
        proto = onnx.load_model(str(model), load_external_data=False)
    except Exception:  # not readable as ONNX here: ORT gives its own error for the file
        return []
    locations = sorted(
        {
            entry.value
            for tensor in _tensors(proto.graph)
            if tensor.data_location == onnx.TensorProto.EXTERNAL
            for entry in tensor.external_data
            if entry.key == "location"
        }
    )
    with contextlib.suppress(OSError):
        index.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(locations) + "\n")
        os.replace(tmp, memo)
    return locations


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of a graph that may hold external data: initializers and tensor attributes, subgraphs
    included (what ``onnx.external_data_helper`` walks)."""
    import onnx

    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t
            elif attr.type == onnx.AttributeProto.TENSORS:
                yield from attr.tensors
            elif attr.type == onnx.AttributeProto.GRAPH:
                yield from _tensors(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _tensors(g)


def library_identity(path: str | Path, index: Path) -> str:
    """What the optimized graph depends on in the library: its code. The linker's GNU build id names it
    without reading 16-20 MB on a first start (a stripped copy keeps the id: same code, same entry); a
    library linked without one is named by its SHA-256."""
    from ortprune.elf import ElfFile
    from ortprune.errors import ElfError

    with contextlib.suppress(ElfError, OSError):  # unreadable as ELF here (or no mmap): hash it instead
        with ElfFile(path, sections=False) as elf:
            build_id = elf.build_id
        if build_id:
            return f"gnu-build-id:{build_id}"
    return f"sha256:{content_digest(path, index)}"


def _remembered(p: Path, st: os.stat_result, index: Path) -> str | None:
    """The digest remembered for ``p`` as it is in ``st``, or None."""
    with contextlib.suppress(OSError):
        text = (index / _stat_key(p, st)).read_text().strip()
        if len(text) == 64:
            return text
    return None


def remember_digest(p: Path, st: os.stat_result, digest: str, index: Path) -> None:
    """Record ``digest`` as the content of ``p`` as it is in ``st`` (best effort)."""
    memo = index / _stat_key(p, st)
    with contextlib.suppress(OSError):
        index.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
        tmp.write_text(digest + "\n")
        os.replace(tmp, memo)


class OptimizedModelCache:
    """Entries under ``root`` (default ``~/.cache/ortprune/optimized``): ``<key digest>/model.ort`` +
    ``meta.json``.

    ``background`` (default): on a miss the session loads the model as usual and, when this process
    exits, a detached process (``python -m ortprune.runtime._cache_worker``) optimizes and saves the
    entry: the first start neither writes 90 MB nor shares its two cores with a second optimizer;
    otherwise the session itself saves the entry while it loads."""

    def __init__(self, root: str | Path | None = None, background: bool = True) -> None:
        self.root = Path(root) if root is not None else cache_dir("optimized")
        self.background = background

    @property
    def index(self) -> Path:
        """Where :func:`content_digest` remembers the hashes of files by their stat."""
        return self.root / "index"

    def schedule(self, model: Path, library_path: str, level: int) -> None:
        """Build the entry for ``model`` in a detached process started when this process exits (once per
        entry)."""
        import atexit

        job = (str(model), library_path, str(level), str(self.root))
        if job not in _SCHEDULED:
            _SCHEDULED.add(job)
            atexit.register(_spawn_worker, *job)

    def remembers(self, model: str | Path) -> bool:
        """Whether the model's hash is remembered for the file as it is now (its stat): if not, no process
        has looked this file up yet and its entry almost surely does not exist (a first start)."""
        p = Path(model).resolve()
        try:
            return _remembered(p, p.stat(), self.index) is not None
        except OSError:
            return False

    def key(self, model: str | Path, library_path: str | Path, ort_version: str, level: str) -> CacheKey:
        """What the optimized graph of ``model`` depends on; OSError when a file of it cannot be read."""
        model_sha256 = content_digest(model, self.index)
        return CacheKey(
            model_sha256=model_sha256,
            external_data_sha256=external_data_digest(model, model_sha256, self.index),
            library_id=library_identity(library_path, self.index),
            ort_version=ort_version,
            level=level,
            machine=platform.machine(),
            cpu_flags=plat.cpu_flags(),
        )

    def entry(self, key: CacheKey) -> Path:
        return self.root / key.digest()

    def lookup(self, key: CacheKey) -> Path | None:
        """The saved model of a valid entry for ``key``; an invalid entry is removed (with a warning)."""
        entry = self.entry(key)
        model, meta_path = entry / ENTRY_MODEL, entry / ENTRY_META
        if not entry.exists():
            return None
        problem = None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("key") != key.to_dict():
                problem = "it was made for another model, library, level or CPU"
            elif model.stat().st_size != meta.get("ort_bytes"):
                problem = f"its model is {model.stat().st_size} B, not the {meta.get('ort_bytes')} B written"
            elif content_digest(model, self.index) != meta.get("ort_sha256"):
                problem = "its model's bytes changed since they were written (SHA-256 differs)"
        except (OSError, ValueError) as e:
            problem = f"unreadable ({e})"
        if problem is None:
            return model
        self.discard(key, problem)
        return None

    def discard(self, key: CacheKey, why: str) -> None:
        entry = self.entry(key)
        warnings.warn(
            f"optimized-model cache entry {entry} is unusable ({why}); rebuilding it", CacheWarning, stacklevel=3
        )
        shutil.rmtree(entry, ignore_errors=True)

    @contextlib.contextmanager
    def writing(self, key: CacheKey):  # type: ignore[no-untyped-def]
        """Yields the temp path ORT should save the optimized model to; on success the entry appears
        whole (meta.json written, directory renamed into place), on failure nothing is left."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key.digest()}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            yield tmp / ENTRY_MODEL
            digest = file_digest(tmp / ENTRY_MODEL, 64)
            size = (tmp / ENTRY_MODEL).stat().st_size
            meta = {"format": FORMAT, "key": key.to_dict(), "ort_bytes": size, "ort_sha256": digest}
            (tmp / ENTRY_META).write_text(json.dumps(meta, indent=2) + "\n")
            target = self.entry(key)
            shutil.rmtree(target, ignore_errors=True)
            try:
                os.replace(tmp, target)
            except OSError:  # another process put the same entry in place first: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
            else:  # the first hit need not hash what was just written (renamed: same inode, new path)
                saved = (target / ENTRY_MODEL).resolve()
                remember_digest(saved, saved.stat(), digest, self.index)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


#: Entries this process will have built at exit: (model, library, level, root).
_SCHEDULED: set[tuple[str, str, str, str]] = set()


def _spawn_worker(*args: str) -> None:
    import subprocess
    import sys

    with contextlib.suppress(OSError):  # at exit: a cache that cannot be written is only a slower next start
        Path(args[-1]).mkdir(parents=True, exist_ok=True)
        subprocess.Popen(
            [sys.executable, "-m", "ortprune.runtime._cache_worker", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


def resolve_cache(cache: bool | str | os.PathLike[str] | OptimizedModelCache | None) -> OptimizedModelCache | None:
    """``True`` → the default cache; a path → a cache rooted there; ``False``/``None`` → no cache."""
    if cache is None or cache is False:
        return None
    if isinstance(cache, OptimizedModelCache):
        return cache
    if cache is True:
        return OptimizedModelCache()
    if not isinstance(cache, str | os.PathLike):
        from ortprune.errors import ArgumentTypeError

        raise ArgumentTypeError(f"cache must be True, False, None or a directory, got {type(cache).__name__}")
    from ortprune._args import path_arg

    return OptimizedModelCache(path_arg(cache, "cache"))
