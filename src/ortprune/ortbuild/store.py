"""A team's shared artifact store: finished builds looked up by key before compiling, published after.

Two backends, no server-side code of ours: a directory (a shared or mounted volume) and plain HTTP as nginx's
WebDAV module speaks it (GET, PUT, MOVE, DELETE; PROPFIND only for ``ls``/``gc``).

An artifact is ``<key>/index.json`` plus content-addressed files ``<key>/<sha256[:16]>-<name>``: the library
(unstripped and stripped), the manifest, the config and any stage results (probe, verify, sizes). The
index lists each file's SHA-256 and size and a content hash over all of them and the key. Every file is
uploaded under a temporary name and renamed (MOVE); the index goes last, so a reader never sees an artifact
whose files are not all there. A download is checked against the index (sizes, hashes, content hash, key)
and the manifest against the key and spec before anything enters the local cache; a mismatch, a truncated
file or a server that hangs (every request has a timeout) is a ``StoreError`` and leaves nothing behind.
The index is an integrity check, not a signature: whoever can write to the store is trusted.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from ortprune.cache import cache_dir, file_digest
from ortprune.errors import StoreError, UsageError
from ortprune.ortbuild.runner import BuildResult, spec_of, stripped_copy
from ortprune.ortbuild.variants import BuildSpec

INDEX = "index.json"
FORMAT = 1
LIBRARY = "libonnxruntime.so"
STRIPPED = "libonnxruntime.stripped.so"
MANIFEST = "manifest.json"
CONFIG = "ops.config"
#: Seconds any one store request may wait for the server (connect, each read, each write), unless
#: $ORTPRUNE_STORE_TIMEOUT says otherwise; at most a day.
DEFAULT_TIMEOUT = 20.0
MAX_TIMEOUT = 86400.0
TIMEOUT_ENV = "ORTPRUNE_STORE_TIMEOUT"


def store_timeout(value: float | None = None) -> float:
    """Seconds any one request may wait: ``value``, else ``$ORTPRUNE_STORE_TIMEOUT``, else 20; a
    :class:`UsageError` unless it is a number > 0 and at most :data:`MAX_TIMEOUT`."""
    import math

    source: str = "the store timeout"
    given: object = value
    if value is None:
        text = os.environ.get(TIMEOUT_ENV, "").strip()
        if not text:
            return DEFAULT_TIMEOUT
        source, given = f"${TIMEOUT_ENV}", text
        with contextlib.suppress(ValueError):
            given = float(text)
    if isinstance(given, bool) or not isinstance(given, int | float) or not math.isfinite(given) \
            or not 0 < given <= MAX_TIMEOUT:  # fmt: skip
        raise UsageError(f"{source} must be a number of seconds > 0 and at most {MAX_TIMEOUT:.0f}, got {given!r}")
    return float(given)


_TMP_PREFIX = "_tmp-"  # not a dotfile: WebDAV listings (nginx dav_ext) hide those, and gc must see it


class StoreMiss(StoreError):
    """The store has no artifact under the key."""


@dataclass(frozen=True)
class Entry:
    name: str  # file or directory name under its parent
    is_dir: bool
    size: int
    modified: float  # POSIX seconds


class Backend(Protocol):
    url: str

    def get(self, path: str, dest: IO[bytes]) -> None: ...
    def put(self, path: str, src: Path) -> None: ...
    def move(self, src: str, dst: str) -> None: ...
    def delete(self, path: str) -> None: ...
    def list(self, path: str) -> list[Entry]: ...


# ----------------------------------------------------------------------------------------------- backends
class DirBackend:
    """A directory: a shared filesystem or mounted volume."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, path: str) -> Path:
        return self.root.joinpath(*path.strip("/").split("/"))

    def get(self, path: str, dest: IO[bytes]) -> None:
        try:
            with self._path(path).open("rb") as f:
                shutil.copyfileobj(f, dest, 1 << 20)
        except FileNotFoundError:
            raise StoreMiss(f"no {path} in the store", self.url) from None
        except OSError as e:
            raise StoreError(f"cannot read {path}: {e.strerror or e}", self.url) from None

    def put(self, path: str, src: Path) -> None:
        target = self._path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        except OSError as e:
            raise StoreError(f"cannot write {path}: {e.strerror or e} (no write permission?)", self.url) from None

    def move(self, src: str, dst: str) -> None:
        try:
            os.replace(self._path(src), self._path(dst))
        except OSError as e:
            raise StoreError(f"cannot rename {src} to {dst}: {e.strerror or e}", self.url) from None

    def delete(self, path: str) -> None:
        target = self._path(path)
        try:
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StoreError(f"cannot delete {path}: {e.strerror or e}", self.url) from None

    def list(self, path: str) -> list[Entry]:
        base = self._path(path)
        if not base.is_dir():
            if path.strip("/") == "" and not self.root.exists():
                raise StoreError("the store directory does not exist", self.url)
            return []
        out = []
        for p in base.iterdir():
            st = p.lstat()
            out.append(Entry(p.name, p.is_dir(), st.st_size, st.st_mtime))
        return out


class HttpBackend:
    """Plain HTTP: GET/PUT/MOVE/DELETE (nginx ``dav_methods``), PROPFIND (``dav_ext_methods``) for listings.

    urllib from the standard library: the requests are simple and this keeps the tool's dependencies as they
    are. Credentials in the URL (``https://user:pass@host/...``) are sent as basic auth."""

    def __init__(self, url: str, timeout: float | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.auth = None
        netloc = parts.netloc
        if parts.username is not None:
            cred = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self.auth = "Basic " + base64.b64encode(cred.encode()).decode()
            netloc = netloc.rsplit("@", 1)[1]
        self.base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/", "", ""))
        self.url = self.base
        self.timeout = store_timeout(timeout)

    def _url(self, path: str) -> str:
        return self.base + urllib.parse.quote(path.lstrip("/"))

    @contextlib.contextmanager
    def _request(
        self, method: str, path: str, data: IO[bytes] | bytes | None = None, headers: dict[str, str] | None = None
    ) -> Iterator[http.client.HTTPResponse]:
        req = urllib.request.Request(self._url(path), data=data, method=method, headers=headers or {})
        if self.auth:
            req.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                yield resp
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise StoreMiss(f"no {path} in the store", self.url) from None
            if e.code in (401, 403):
                raise StoreError(f"{method} {path}: HTTP {e.code} (no permission)", self.url) from None
            raise StoreError(f"{method} {path}: HTTP {e.code} {e.reason}", self.url) from None
        except TimeoutError:
            raise StoreError(f"{method} {path}: no answer within {self.timeout:g} s", self.url) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise StoreError(f"{method} {path}: {reason}", self.url) from None

    def get(self, path: str, dest: IO[bytes]) -> None:
        with self._request("GET", path) as resp:
            try:
                shutil.copyfileobj(resp, dest, 1 << 20)
            except TimeoutError:
                raise StoreError(f"GET {path}: the download stalled for {self.timeout:g} s", self.url) from None
            except (http.client.HTTPException, OSError) as e:
                raise StoreError(f"GET {path}: download broke off ({e})", self.url) from None

    def put(self, path: str, src: Path) -> None:
        with src.open("rb") as f:
            headers = {"Content-Length": str(src.stat().st_size), "Content-Type": "application/octet-stream"}
            with self._request("PUT", path, f, headers):
                pass

    def move(self, src: str, dst: str) -> None:
        with self._request("MOVE", src, headers={"Destination": self._url(dst), "Overwrite": "T"}):
            pass

    def delete(self, path: str) -> None:
        with contextlib.suppress(StoreMiss), self._request("DELETE", path):
            pass

    def list(self, path: str) -> list[Entry]:
        path = path.strip("/") + "/" if path.strip("/") else ""
        with self._request("PROPFIND", path, b"", {"Depth": "1"}) as resp:
            body = resp.read()
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise StoreError(f"PROPFIND {path or '/'}: the answer is not WebDAV XML", self.url) from None
        ns = "{DAV:}"
        own = urllib.parse.urlsplit(self._url(path)).path.rstrip("/")
        out = []
        for r in root.iter(f"{ns}response"):
            href = urllib.parse.unquote(urllib.parse.urlsplit(r.findtext(f"{ns}href") or "").path).rstrip("/")
            if not href or href == urllib.parse.unquote(own):
                continue
            is_dir = r.find(f".//{ns}collection") is not None
            size = int(r.findtext(f".//{ns}getcontentlength") or 0)
            modified_text = r.findtext(f".//{ns}getlastmodified")
            modified = 0.0
            if modified_text:
                from email.utils import parsedate_to_datetime

                modified = parsedate_to_datetime(modified_text).timestamp()
            out.append(Entry(href.rsplit("/", 1)[-1], is_dir, size, modified))
        return out


def open_backend(url: str | Path, timeout: float | None = None) -> Backend:
    text = str(url)
    if text.startswith(("http://", "https://")):
        return HttpBackend(text, timeout)
    if "://" in text:
        raise StoreError("a store is a directory or an http(s):// URL", text)
    root = Path(text.removeprefix("file:")).expanduser()
    if root.exists() and not root.is_dir():
        raise StoreError("is not a directory: a store is a directory or an http(s):// URL", text)
    return DirBackend(root)


# ---------------------------------------------------------------------------------------------- artifacts
def _sha256(path: Path) -> str:
    return file_digest(path, 64)


def content_hash(key: str, files: dict[str, dict[str, object]]) -> str:
    """SHA-256 over the key and every file's name, SHA-256 and size."""
    listing = [[n, files[n]["sha256"], files[n]["size"]] for n in sorted(files)]
    return hashlib.sha256(json.dumps([key, listing]).encode()).hexdigest()


@dataclass
class Index:
    key: str
    files: dict[str, dict[str, object]]  # name → {sha256, size, blob}
    content_hash: str
    published: str
    format: int = FORMAT

    def published_at(self) -> float | None:
        """When the artifact was published (seconds since the epoch), or None if the field is not a date."""
        try:
            return dt.datetime.fromisoformat(self.published).timestamp()
        except (TypeError, ValueError, OverflowError):
            return None

    @classmethod
    def parse(cls, data: bytes, key: str, where: str) -> Index:
        try:
            raw = json.loads(data)
            index = cls(**raw)
            sizes_ok = all(isinstance(f["size"], int) and isinstance(f["sha256"], str) for f in index.files.values())
        except (ValueError, TypeError, KeyError, AttributeError):
            raise StoreError(f"{key}/{INDEX} is not an artifact index (the store answered garbage)", where) from None
        if index.format != FORMAT or not sizes_ok:
            raise StoreError(f"{key}/{INDEX}: unknown artifact format {index.format!r}", where)
        if index.published_at() is None:
            raise StoreError(f"{key}/{INDEX}: 'published' is not an ISO date and time: {index.published!r}", where)
        if index.key != key:
            raise StoreError(f"{key}/{INDEX} is for key {index.key!r}, not {key!r}", where)
        if content_hash(key, index.files) != index.content_hash:
            raise StoreError(f"{key}/{INDEX}: content hash mismatch (tampered or corrupt)", where)
        return index


class Store:
    """Artifacts by build key on one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.url = backend.url
        self.unusable: str | None = None  # set once the store failed: later lookups and publishes skip it

    # --- reading
    def index(self, key: str) -> Index:
        with tempfile.SpooledTemporaryFile(max_size=1 << 20) as buf:
            self.backend.get(f"{key}/{INDEX}", buf)
            buf.seek(0)
            return Index.parse(buf.read(), key, self.url)

    def download(self, key: str, index: Index, name: str, dest: Path) -> Path:
        """One file of an artifact into ``dest``, checked against the index; nothing left on a mismatch."""
        entry = index.files[name]
        try:
            with dest.open("wb") as f:
                self.backend.get(f"{key}/{entry['blob']}", f)
            size = dest.stat().st_size
            if size != entry["size"]:
                raise StoreError(
                    f"{key}/{name}: got {size:,} bytes, the index says {entry['size']:,} (truncated?)", self.url
                )
            if _sha256(dest) != entry["sha256"]:
                raise StoreError(f"{key}/{name}: SHA-256 mismatch (tampered or corrupt)", self.url)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return dest

    def artifact_keys(self) -> list[str]:
        return sorted(e.name for e in self.backend.list("") if e.is_dir and not e.name.startswith("."))

    # --- writing
    def _put_atomic(self, path: str, src: Path) -> None:
        parent, _, name = path.rpartition("/")
        tmp = f"{parent}/{_TMP_PREFIX}{secrets.token_hex(6)}-{name}"
        try:
            self.backend.put(tmp, src)
            self.backend.move(tmp, path)
        except BaseException:
            with contextlib.suppress(StoreError):
                self.backend.delete(tmp)
            raise

    def publish(self, key: str, files: dict[str, Path], merge: bool = True) -> Index:
        """Upload ``files`` (name → local path) as the artifact ``key``; with ``merge``, files of an existing
        valid artifact under the key that are not given are kept. The index is written last."""
        entries: dict[str, dict[str, object]] = {}
        existing: Index | None = None
        if merge:
            with contextlib.suppress(StoreError):
                existing = self.index(key)
                entries.update(existing.files)
        for name, path in files.items():
            sha = _sha256(path)
            blob = f"{sha[:16]}-{name}"
            old = entries.get(name)
            if not (old and old["sha256"] == sha):
                self._put_atomic(f"{key}/{blob}", path)
            entries[name] = {"sha256": sha, "size": path.stat().st_size, "blob": blob}
        if existing is not None and entries == existing.files:
            return existing  # already there, byte for byte
        index = Index(
            key, entries, content_hash(key, entries), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        )
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp, INDEX)
            p.write_text(json.dumps(dataclasses.asdict(index), indent=1) + "\n")
            self._put_atomic(f"{key}/{INDEX}", p)
        return index


def open_store(url: str | Path | Store, timeout: float | None = None) -> Store:
    return url if isinstance(url, Store) else Store(open_backend(url, timeout))


# --------------------------------------------------------------------------------- builds <-> artifacts
def _portable(path: str) -> str:
    """A path as published: relative to the cache root when under it, else its name (no home, no user)."""
    p, root = Path(path), cache_dir()
    if not p.is_absolute():
        return path
    with contextlib.suppress(ValueError):
        return p.relative_to(root).as_posix()
    return p.name


def _replace_all(text: str, pairs: list[tuple[str, str]]) -> str:
    """``text`` with each absolute path ``old`` (as a whole path: at a start or after ``=``, before ``/`` or the
    end) written as ``new``; a relative one (a fetched build's source is ``ort``) matches nothing inside words."""
    for old, new in pairs:
        if old.startswith("/") and old != "/":
            text = re.sub(rf"(^|=){re.escape(old)}(?=/|$)", rf"\g<1>{new.replace(chr(92), chr(92) * 2)}", text)
    return text


def check_loads(result: BuildResult) -> None:
    """The library is for the build's target (its ELF machine), loads through the C API and reports the
    manifest's ORT version; StoreError otherwise, so it is never published. A library of this machine is
    loaded in a child process (a broken library cannot take this one down); a cross build's (linux-aarch64
    here) cannot be loaded into this process at all and is run under qemu-user, as ortprune runs the target's
    libraries everywhere else (``runtime.emulated``)."""
    import sys

    from ortprune.errors import OrtpruneError
    from ortprune.platform import host_target
    from ortprune.runtime.emulated import EmulatedLibrary, library_target

    want = result.target or host_target()
    try:
        found = library_target(result.library)
    except (OSError, OrtpruneError):
        found = None  # not a readable ELF file: loading it below says what is wrong
    if found is not None and found.name != want:
        raise StoreError(f"the library is built for {found.name}, the build is for {want}; not publishing it",
                         result.library)  # fmt: skip
    if found is not None and found.name != host_target():
        try:
            version = EmulatedLibrary.open(result.library).version
        except OrtpruneError as e:
            raise StoreError(f"the library does not load under emulation ({e}); not publishing it",
                             result.library) from None  # fmt: skip
        if version != result.ort_version:
            raise StoreError(f"the library does not load as ORT {result.ort_version} (it is {version}); "
                             "not publishing it", result.library)  # fmt: skip
        return
    code = "import sys; from ortprune.runtime import load_library; print(load_library(sys.argv[1]).version)"
    try:
        proc = subprocess.run([sys.executable, "-c", code, result.library], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise StoreError("loading the library timed out; not publishing it", result.library) from None
    got = proc.stdout.strip().splitlines()[-1:] if proc.returncode == 0 else []
    if got != [result.ort_version]:
        why = proc.stderr.strip().splitlines()[-1:] or got
        raise StoreError(
            f"the library does not load as ORT {result.ort_version} ({why}); not publishing it", result.library
        )


def _stripped(result: BuildResult) -> Path:
    """The build's stripped copy, made with its target's strip (a host strip cannot read another
    architecture's ELF); StoreError when it cannot be made, so a publish that fails leaves the build usable."""
    from ortprune.errors import BuildError
    from ortprune.ortbuild.cross import cross_target
    from ortprune.ortbuild.toolchain import find_tools

    cross = cross_target(result.target)
    try:
        strip = None
        if cross is not None:
            tools = {"strip": f"{cross.triple}-strip"}
            strip = find_tools(tools, None, f"--target {cross.name}", "cross-deps", cross.packages)["strip"]
        return stripped_copy(Path(result.library), strip)
    except BuildError as e:
        raise StoreError(f"no stripped copy to publish: {e}", result.library) from None


def publish_build(store: Store, result: BuildResult, stage_files: dict[str, Path] | None = None) -> Index:
    """The library (and a stripped copy), manifest and config of a finished build that loads, under its key."""
    check_loads(result)
    with tempfile.TemporaryDirectory() as tmp:
        files = {LIBRARY: Path(result.library)}
        stripped = result.stripped_library
        files[STRIPPED] = Path(stripped) if stripped and Path(stripped).is_file() else _stripped(result)
        roots = [(str(cache_dir()), "<cache>"), (result.source, "<source>")]
        args = [_replace_all(a, roots) for a in result.build_py_args]
        manifest = dataclasses.replace(
            result,
            library=LIBRARY,
            build_dir="",
            source=_portable(result.source),
            build_py_args=args,
            fetched_from=None,
            wheel_file=None,
            stripped_library=STRIPPED,
            stripped_bytes=files[STRIPPED].stat().st_size,
        )
        files[MANIFEST] = manifest.save(Path(tmp, MANIFEST))
        if result.config is not None:
            files[CONFIG] = Path(tmp, CONFIG)
            files[CONFIG].write_text(result.config)
        if result.wheel_file:
            files[Path(result.wheel_file).name] = Path(result.wheel_file)
        files.update(stage_files or {})
        return store.publish(result.key, files)


def local_builds() -> list[BuildResult]:
    """Every finished build in the local cache with its current key (a legacy-keyed build re-keyed as
    ``find_cached`` would: by its recorded compiler and CMake and its source's identity)."""
    from ortprune.ortbuild.identity import compiler_and_cmake, source_id, toolchain_id
    from ortprune.ortbuild.runner import build_env
    from ortprune.ortbuild.sources import RELEASES

    out = []
    for r in [BuildResult.load(m) for m in sorted(cache_dir("builds").glob("*/manifest.json"))]:
        if r.fetched_from is None and not Path(r.library).is_file():
            continue
        if not r.source_id:  # built before the key held the source and toolchain
            machine = compiler_and_cmake(build_env()["PATH"])[2]
            debian = r.source == str(cache_dir("src", f"onnxruntime-{r.ort_version}")) and r.ort_version in RELEASES
            if not debian and not Path(r.source).is_dir():
                continue
            src: str | Path = f"debian:{r.ort_version}" if debian else Path(r.source)
            r.source_id = source_id(src, None if debian else Path(r.source), r.ort_version)
            r.toolchain = toolchain_id(r.compiler, r.cmake, machine)
            r.key = spec_of(r).key()
        out.append(r)
    return out


def fetch_build(store: Store, key: str, spec: BuildSpec | None = None) -> BuildResult:
    """The artifact ``key`` into the local build cache (``builds/<key>/store/``), verified against the index,
    the key (recomputed from the manifest) and ``spec``; the manifest is written last, so an interrupted or
    refused fetch leaves no usable-looking build behind."""
    index = store.index(key)
    missing = [n for n in (LIBRARY, MANIFEST) if n not in index.files]
    if missing:
        raise StoreError(f"{key}: the artifact has no {', '.join(missing)}", store.url)
    bdir = cache_dir("builds", key)
    bdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".fetch-{key}-", dir=bdir.parent))
    try:
        got = {name: store.download(key, index, name, tmp / f"{name}.download") for name in index.files}
        result = BuildResult.load(got[MANIFEST])
        recorded = spec_of(result)
        if result.key != key or recorded.key() != key or (spec is not None and spec.key() != key):
            raise StoreError(
                f"{key}: the manifest describes another build ({result.ort_version} {result.variant}, "
                f"config {result.config_hash}, key {result.key}, inputs hash to {recorded.key()})",
                store.url,
            )
        if result.library_bytes != got[LIBRARY].stat().st_size:
            raise StoreError(f"{key}: the manifest's library size does not match the library", store.url)
        stages = {n: p for n, p in got.items() if n.startswith("stage-")}
        final = bdir / "store"
        final.mkdir(parents=True, exist_ok=True)
        for name, path in got.items():
            if name not in (MANIFEST, *stages):
                os.replace(path, final / name)
        install_stage_results(stages)
        wheels = [final / n for n in got if n.endswith(".whl")]
        stripped = final / STRIPPED if STRIPPED in got else None
        result = dataclasses.replace(
            result,
            library=str(final / LIBRARY),
            build_dir=str(bdir),
            fetched_from=store.url,
            wheel_file=str(wheels[0]) if wheels else None,
            stripped_library=str(stripped) if stripped else None,
            stripped_bytes=stripped.stat().st_size if stripped else None,
        )
        result.save(bdir / "manifest.json")
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def stage_file_name(path: Path) -> str:
    return f"stage-{path.name}"


def install_stage_results(files: dict[str, Path]) -> None:
    """Stage results (probe, verify, size) that came with an artifact into ``stages/``; existing ones win.
    Each is keyed by the hashes of the library and inputs it was computed from, so it is only used for them."""
    for name, path in files.items():
        target = cache_dir("stages", name.removeprefix("stage-"))
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def fetch_or_none(store: Store, spec: BuildSpec, log: Callable[[str], None]) -> BuildResult | None:
    """A store hit, or None with one line saying why the build runs here (miss, down, garbage, mismatch)."""
    if store.unusable:
        return None
    try:
        result = fetch_build(store, spec.key(), spec)
    except StoreMiss:
        log(f"store {store.url}: no {spec.key()} yet; building here")
        return None
    except StoreError as e:
        store.unusable = str(e)
        log(f"store unusable, building here and not publishing: {e}")
        return None
    log(f"fetched {spec.key()} from store {store.url} ({result.library_bytes:,} bytes, no compile)")
    return result


def publish_or_warn(
    store: Store, result: BuildResult, log: Callable[[str], None], stage_files: dict[str, Path] | None = None
) -> bool:
    if store.unusable:
        return False
    before = None
    with contextlib.suppress(StoreError):
        before = store.index(result.key).content_hash
    try:
        index = publish_build(store, result, stage_files)
    except StoreError as e:
        log(f"could not publish {result.key} to the store (the build itself is fine): {e}")
        return False
    if index.content_hash != before:  # silent when the store already had exactly this
        log(f"published {result.key} to store {store.url}")
    return True


# ---------------------------------------------------------------------------------------- ls / gc
@dataclass
class Listed:
    key: str
    ok: bool
    problem: str = ""
    library_bytes: int = 0
    stripped_bytes: int = 0
    published: str = ""
    files: int = 0


def ls(store: Store) -> list[Listed]:
    out = []
    for key in store.artifact_keys():
        try:
            index = store.index(key)
        except StoreError as e:
            out.append(Listed(key, False, "no index (unfinished upload)" if isinstance(e, StoreMiss) else str(e)))
            continue
        lib, stripped = index.files.get(LIBRARY, {}), index.files.get(STRIPPED, {})
        out.append(
            Listed(
                key,
                True,
                "",
                int(lib.get("size", 0)),  # type: ignore[call-overload]
                int(stripped.get("size", 0)),  # type: ignore[call-overload]
                index.published,
                len(index.files),
            )
        )
    return out


def gc(
    store: Store,
    older_than_days: float | None = None,
    grace_s: float = 3600.0,
    dry_run: bool = False,
    now: float | None = None,
    force: bool = False,
) -> list[str]:
    """Remove what no index references: leftover temp uploads and blobs older than ``grace_s`` (a publish in
    progress is younger), keys without an index older than ``grace_s``, and with ``older_than_days`` whole
    artifacts published before then -- but never one published less than ``grace_s`` ago (a teammate may
    be pulling it) unless ``force``. Returns the removed paths."""
    import math
    import time

    if older_than_days is not None and (
        isinstance(older_than_days, bool) or not isinstance(older_than_days, int | float)
        or not math.isfinite(older_than_days) or older_than_days < 0
    ):  # fmt: skip
        raise UsageError(f"--older-than must be a finite number of days >= 0, got {older_than_days!r}")
    now = now or time.time()
    removed: list[str] = []

    def rm(path: str) -> None:
        removed.append(path)
        if not dry_run:
            store.backend.delete(path)

    for key in store.artifact_keys():
        entries = store.backend.list(key)
        try:
            index = store.index(key)
        except StoreError:
            if all(now - e.modified > grace_s for e in entries):
                rm(f"{key}/")
            continue
        age = now - (index.published_at() or now)
        if older_than_days is not None and age > older_than_days * 86400 and (force or age > grace_s):
            rm(f"{key}/")
            continue
        referenced = {str(f["blob"]) for f in index.files.values()} | {INDEX}
        for e in entries:
            if e.name not in referenced and now - e.modified > grace_s:
                rm(f"{key}/{e.name}")
    return removed
