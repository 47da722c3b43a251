"""ORT source and its dependency archives from Debian's package pool (reachable where GitHub is not).

Every file is pinned by SHA-256, downloaded once into ``~/.cache/ortprune/downloads`` (atomically, with
a progress bar) and never re-fetched.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ortprune._io import atomic_open
from ortprune.cache import cache_dir, file_digest
from ortprune.errors import BuildError, OrtpruneError


def debian_mirror() -> str:
    """The Debian mirror to use: $ORTPRUNE_DEBIAN_MIRROR, else the first deb.debian.org-style URI apt knows."""
    env = os.environ.get("ORTPRUNE_DEBIAN_MIRROR")
    if env:
        return env.rstrip("/")
    for src in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = src.read_text()
        except OSError:
            continue
        for token in text.split():
            if token.startswith("http") and token.rstrip("/").endswith("/debian"):
                return token.rstrip("/")
    return "http://deb.debian.org/debian"


@dataclass(frozen=True)
class PoolFile:
    """One file in Debian's pool: ``pool/main/<path>``, pinned by SHA-256."""

    path: str
    sha256: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class OrtRelease:
    """An ORT release whose source is in Debian's pool. Its dependencies are its own ``cmake/deps.txt``,
    mapped by :mod:`ortprune.ortbuild.depsmap` (no per-release list here); a copy recorded from the source
    tarball ships as ``ortprune/data/deps-<version>.txt``, so a ``debian:`` build is named without a
    download, and the extracted tree's own file is checked against it before a build."""

    version: str
    source: PoolFile

    @property
    def deps_txt_path(self) -> Path:
        return Path(__file__).parent.parent / "data" / f"deps-{self.version}.txt"

    def deps_txt(self) -> str:
        try:
            return self.deps_txt_path.read_text(encoding="utf-8")
        except OSError as e:
            raise BuildError(
                f"the recorded cmake/deps.txt of ONNX Runtime {self.version} is not readable: {e.strerror}",
                self.deps_txt_path,
            ) from None


RELEASES: dict[str, OrtRelease] = {
    "1.21.0": OrtRelease("1.21.0", PoolFile("o/onnxruntime/onnxruntime_1.21.0+dfsg.orig.tar.xz",
                                            "32df1f82bd6b07b18372c0f387133214905cbde7a586b3ad83f0ed0075f80273")),
}  # fmt: skip


def release(version: str) -> OrtRelease:
    try:
        return RELEASES[version]
    except KeyError:
        raise OrtpruneError(
            f"no Debian pool recipe for ONNX Runtime {version}; known: {', '.join(RELEASES)} "
            "(online, use --source git:v<version>)"
        ) from None


def download(pool_file: PoolFile, quiet: bool = False) -> Path:
    """The cached file, fetched from the Debian pool on first use and checked against its SHA-256."""
    import hashlib

    target = cache_dir("downloads") / pool_file.name
    if target.exists():
        if file_digest(target, 64) == pool_file.sha256:  # re-hashed on every use: the cache is not trusted
            return target
        target.unlink()  # changed since it was downloaded: fetch it again
    url = f"{debian_mirror()}/pool/main/{pool_file.path}"
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, atomic_open(target, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0)
            from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

            with Progress(
                *Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), disable=quiet, transient=True
            ) as progress:
                task = progress.add_task(pool_file.name, total=total or None)
                while chunk := resp.read(1 << 20):
                    h.update(chunk)
                    f.write(chunk)
                    progress.advance(task, len(chunk))
            if h.hexdigest() != pool_file.sha256:
                raise BuildError(f"SHA-256 mismatch (got {h.hexdigest()}, expected {pool_file.sha256})", url)
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise BuildError(f"download failed: {e}", url) from None
    return target


def _strip_first(member: tarfile.TarInfo, prefix: str) -> tarfile.TarInfo | None:
    name = member.name.split("/", 1)
    if len(name) < 2 or not name[1].startswith(prefix):
        return None
    member.name = name[1]
    return member


def extract_to(
    dest: Path, fill: Callable[[Path], None], single_top: bool = False, check: Callable[[Path], None] | None = None
) -> Path:
    """Fill ``dest.partial`` with ``fill``, then rename it (or, with ``single_top``, the one directory in it)
    to ``dest``: an interrupted extract never looks finished, and leaves nothing behind. ``check`` may
    refuse the tree before it is renamed."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        fill(tmp)
        tree = tmp
        if single_top:
            tops = list(tmp.iterdir())
            if len(tops) != 1:
                raise BuildError(f"expected one top-level directory, found {len(tops)}", dest)
            tree = tops[0]
        if check is not None:
            check(tree)
        shutil.rmtree(dest, ignore_errors=True)
        tree.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _untar(archive: Path, members: list[tarfile.TarInfo] | None = None) -> Callable[[Path], None]:
    def fill(tmp: Path) -> None:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, members=members, filter="data")
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            raise BuildError(f"cannot extract the archive (truncated or corrupt?): {e}", archive) from None

    return fill


def _is_ort_tree(tree: Path) -> bool:
    return (tree / "tools" / "ci_build" / "build.py").is_file()


def ort_source(version: str, quiet: bool = False) -> Path:
    """ORT's source tree for ``version``, extracted once under ``~/.cache/ortprune/src``."""
    rel = release(version)
    dest = cache_dir("src", f"onnxruntime-{version}")
    if _is_ort_tree(dest):
        return dest
    return extract_to(dest, _untar(download(rel.source, quiet)), single_top=True)


def ort_tools_python(version: str) -> Path:
    """ORT's ``tools/python`` (create_reduced_build_config.py and friends) for ``version``, without
    extracting the whole tree when the full source is not there yet."""
    full = cache_dir("src", f"onnxruntime-{version}", "tools", "python")
    if full.is_dir():
        return full
    dest = cache_dir("src", f"onnxruntime-{version}-tools-python")
    if (dest / "tools" / "python" / "create_reduced_build_config.py").exists():
        return dest / "tools" / "python"
    archive = download(release(version).source, quiet=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar if (m2 := _strip_first(m, "tools/python/")) is not None and m2.isfile()]
    extract_to(dest, _untar(archive, members))
    return dest / "tools" / "python"


#: A git tag or branch as a cache directory name can hold it: no '/', no '..', no leading '-'.
_GIT_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


def check_git_ref(tag: str) -> str:
    if not _GIT_REF.fullmatch(tag) or ".." in tag:
        raise OrtpruneError(f"invalid git tag {tag!r}: letters, digits and . _ + - only (e.g. git:v1.21.0)")
    return tag


def check_source_spec(spec: str | Path) -> None:
    """That ``spec`` names a source :func:`resolve_source` can use, checked without downloading or extracting."""
    text = str(spec)
    if text.startswith("debian:"):
        release(text.split(":", 1)[1])
        return
    if text.startswith("git:"):
        check_git_ref(text.split(":", 1)[1])
        return
    from ortprune._io import input_problem

    path = Path(text)
    problem = input_problem(path, want_dir=True)
    if problem is not None:
        raise OrtpruneError(f"ORT source: {problem} (use debian:<version>, git:<tag>, a directory or a tarball)", path)
    if path.is_dir():
        if not (path / "tools" / "ci_build" / "build.py").is_file():
            raise OrtpruneError("not an ONNX Runtime source tree (no tools/ci_build/build.py)", path)
    elif not tarfile.is_tarfile(path):
        raise OrtpruneError("not a tarball nor an ONNX Runtime source directory", path)


def resolve_source(spec: str | Path, quiet: bool = False) -> Path:
    """An ORT source tree from ``debian:<version>``, ``git:<tag>`` (online), a directory or a tarball."""
    check_source_spec(spec)
    text = str(spec)
    if text.startswith("debian:"):
        return ort_source(text.split(":", 1)[1], quiet)
    if text.startswith("git:"):
        return _git_clone(text.split(":", 1)[1])
    path = Path(text)
    if path.is_dir():
        if not (path / "tools" / "ci_build" / "build.py").is_file():
            raise OrtpruneError("not an ONNX Runtime source tree (no tools/ci_build/build.py)", path)
        return path
    if path.is_file() and tarfile.is_tarfile(path):
        # cached by content: two different myort.tar.gz never share a tree
        dest = cache_dir("src", f"tarball-{file_digest(path)}")
        if not _is_ort_tree(dest):

            def check(tree: Path) -> None:
                if not _is_ort_tree(tree):
                    raise OrtpruneError("tarball does not hold one ONNX Runtime source tree", path)

            try:
                extract_to(dest, _untar(path), single_top=True, check=check)
            except BuildError as e:
                if "cannot extract" in str(e):  # truncated or corrupt: say so, not "no source tree"
                    raise
                raise OrtpruneError("tarball does not hold one ONNX Runtime source tree", path) from None
        return dest
    raise OrtpruneError("source must be debian:<version>, git:<tag>, an ORT source directory or tarball", path)


def _git_clone(tag: str) -> Path:
    import subprocess

    dest = cache_dir("src", f"onnxruntime-git-{check_git_ref(tag)}")
    if _is_ort_tree(dest):
        return dest
    url = os.environ.get("ORTPRUNE_ORT_GIT", "https://github.com/microsoft/onnxruntime.git")

    def clone(tmp: Path) -> None:
        cmd = ["git", "clone", "--depth", "1", "--branch", tag, url, str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(
                f"git clone of {tag} failed (offline? use --source debian:<version>): {proc.stderr.strip()[-300:]}",
                url,
            )

    return extract_to(dest, clone)


def version_of(spec: str | Path) -> str:
    """The ONNX Runtime version ``spec`` names: from the spec itself for ``debian:`` and a ``git:v<X.Y.Z>`` tag,
    else from the source tree's VERSION_NUMBER (extracting a tarball or cloning once, as a build would)."""
    text = str(spec)
    if text.startswith("debian:"):
        return release(text.split(":", 1)[1]).version
    tag = re.fullmatch(r"git:v?(\d+\.\d+\.\d+)", text)
    if tag:
        return tag[1]
    tree = resolve_source(spec)
    try:
        return (tree / "VERSION_NUMBER").read_text().strip()
    except OSError:
        raise OrtpruneError("not an ONNX Runtime source tree (no VERSION_NUMBER)", tree) from None
