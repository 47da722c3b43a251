"""Offline dependencies: archives in a directory, mapped onto ORT's ``cmake/deps.txt``.

``deps.txt`` lines are ``name;URL;SHA1``; the URL may be a local path and the SHA1 must be that file's own
(ORT pins the hashes of GitHub zips, which never match a Debian tarball, so the hash is rewritten too).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ortprune._io import atomic_copy, atomic_open, atomic_write_text
from ortprune.cache import cache_dir, env_path, file_digest
from ortprune.errors import BuildError
from ortprune.ortbuild.depsmap import DepsPlan, plan_deps, system_headers
from ortprune.ortbuild.sources import download, extract_to, release

#: Header-only dependencies ORT finds with find_package from Debian -dev packages (header under the
#: system include dir, package), from depsmap's table of known differences.
SYSTEM_HEADERS: dict[str, tuple[str, str]] = system_headers("system")
#: Headers only the Python bindings (--wheel) need.
WHEEL_HEADERS: dict[str, tuple[str, str]] = system_headers("wheel-system")


def system_include_dir() -> Path:
    """Where CMake finds system headers: $ORTPRUNE_SYSTEM_INCLUDE (tests use a temp dir), else /usr/include."""
    return Path(env_path("ORTPRUNE_SYSTEM_INCLUDE") or "/usr/include")


#: protobuf 3.21's source carries utf8_range without a CMakeLists.txt; ORT wants it as its own archive.
UTF8_RANGE_CMAKE = """cmake_minimum_required(VERSION 3.10)
project(utf8_range C)
add_library(utf8_range INTERFACE)
target_include_directories(utf8_range INTERFACE ${CMAKE_CURRENT_SOURCE_DIR})
"""


@dataclass(frozen=True)
class DepsDir:
    """A directory of dependency archives for one ORT version, ready to map onto deps.txt."""

    root: Path
    archives: dict[str, Path]  # deps.txt name → archive
    safeint_include: Path  # directory holding SafeInt.hpp

    def cmake_defines(self) -> list[str]:
        return [f"safeint_SOURCE_DIR={self.safeint_include}"]


def sha1(path: Path) -> str:
    h = hashlib.sha1()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rewrite_deps_txt(text: str, archives: dict[str, Path], source: Path | str = "deps.txt") -> str:
    """``text`` with each named dependency pointing at its local archive and that archive's SHA1.

    Raises BuildError if an archive is named that deps.txt does not list (a typo would silently download).
    """
    seen: set[str] = set()
    out = []
    for line in text.splitlines():
        fields = line.split(";")
        if not line.startswith("#") and len(fields) == 3 and fields[0] in archives:
            path = archives[fields[0]]
            if not path.is_file():
                raise BuildError(f"archive for {fields[0]!r} is missing", path)
            line = f"{fields[0]};{path.resolve().as_posix()};{sha1(path)}"
            seen.add(fields[0])
        out.append(line)
    unknown = set(archives) - seen
    if unknown:
        raise BuildError(f"deps.txt has no entry named {', '.join(sorted(unknown))}", source)
    return "\n".join(out) + "\n"


def apply_deps(ort_src: Path, deps: DepsDir) -> Path:
    """Point ``ort_src/cmake/deps.txt`` at the local archives (the original is kept as deps.txt.orig)."""
    deps_txt = ort_src / "cmake" / "deps.txt"
    orig = deps_txt.with_name("deps.txt.orig")
    if not deps_txt.exists():
        raise BuildError("not an ONNX Runtime source tree (no cmake/deps.txt)", ort_src)
    if not orig.exists():
        shutil.copy2(deps_txt, orig)
    new = rewrite_deps_txt(orig.read_text(), deps.archives, orig)
    if not deps_txt.exists() or deps_txt.read_text() != new:
        atomic_write_text(deps_txt, new)
    return deps_txt


def make_utf8_range_archive(protobuf_archive: Path, dest: Path) -> Path:
    """Archive protobuf's third_party/utf8_range as one top-level ``utf8_range/`` dir with a CMakeLists.txt.

    Member order and mtimes are fixed so the archive (and so its SHA1) is the same on every machine.
    """
    members: list[tuple[str, bytes]] = []
    with tarfile.open(protobuf_archive) as tar:
        for m in tar:
            parts = m.name.split("/", 1)
            if m.isfile() and len(parts) == 2 and parts[1].startswith("third_party/utf8_range/"):
                f = tar.extractfile(m)
                assert f is not None
                members.append((parts[1].removeprefix("third_party/"), f.read()))
    if not members:
        raise BuildError("protobuf archive has no third_party/utf8_range", protobuf_archive)
    members.append(("utf8_range/CMakeLists.txt", UTF8_RANGE_CMAKE.encode()))
    with atomic_open(dest, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as out:
        for name, data in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            out.addfile(info, io.BytesIO(data))
    return dest


def extract_deb(deb: Path, dest: Path) -> Path:
    """Unpack a .deb's data archive (an ``ar`` file: no library reads it, and it is 3 fixed headers)."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise BuildError("not a .deb (ar) archive", deb)
    pos = 8
    while pos + 60 <= len(data):
        name = data[pos : pos + 16].decode().strip().rstrip("/")
        size = int(data[pos + 48 : pos + 58].decode().strip())
        body = data[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):

            def fill(tmp: Path, body: bytes = body) -> None:
                with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                    tar.extractall(tmp, filter="data")

            return extract_to(dest, fill)
        pos += 60 + size + (size & 1)
    raise BuildError("no data.tar member in .deb", deb)


def plan_for(version: str, deps_txt: tuple[str, Path] | None) -> DepsPlan:
    """The mapping of ``deps_txt`` (text, where it was read), else of the copy recorded with ``version``."""
    if deps_txt is not None:
        return plan_deps(*deps_txt)
    rel = release(version)
    return plan_deps(rel.deps_txt(), rel.deps_txt_path)


def fetch_debian(
    version: str, root: Path | None = None, quiet: bool = False, deps_txt: tuple[str, Path] | None = None
) -> DepsDir:
    """Fill ``root`` (default ~/.cache/ortprune/deps/<version>) with every archive ORT ``version`` needs, as
    mapped from its own cmake/deps.txt (``deps_txt``: its text and path; default the copy recorded with a
    Debian release) by :func:`ortprune.ortbuild.depsmap.plan_deps`; idempotent. A dependency no table knows
    is one BuildError naming them all, before anything is downloaded."""
    plan = plan_for(version, deps_txt).check(version)
    root = root or cache_dir("deps", version)
    root.mkdir(parents=True, exist_ok=True)
    archives: dict[str, Path] = {}
    for name, pool_file in plan.archives.items():
        target = root / pool_file.name
        if not target.exists() or file_digest(target, 64) != pool_file.sha256:  # never trust what is there
            atomic_copy(download(pool_file, quiet), target)
        archives[name] = target
    if "utf8_range" in plan.derived:
        utf8 = root / "utf8_range.tar.gz"
        if not utf8.exists():
            make_utf8_range_archive(archives["protobuf"], utf8)
        archives["utf8_range"] = utf8
    safeint_root = root / "safeint"
    if "safeint" in plan.debs and not (safeint_root / "usr/include/safeint/SafeInt.hpp").exists():
        extract_deb(download(plan.debs["safeint"], quiet), safeint_root)
    return DepsDir(root=root, archives=archives, safeint_include=safeint_root / "usr/include/safeint")


def load_deps_dir(root: Path, version: str, deps_txt: tuple[str, Path] | None = None) -> DepsDir:
    """A user-filled deps directory: laid out as ``fetch_debian`` writes it, plus, for a dependency no table
    knows (a newer ORT), an archive named after its deps.txt entry (``onnx.zip``, ``onnx.tar.gz``)."""
    plan = plan_for(version, deps_txt)
    archives = {name: root / f.name for name, f in plan.archives.items()}
    missing = []
    for d in plan.missing:
        found = sorted(p for p in root.glob(f"{d.entry.name}.*") if p.is_file())
        if found:
            archives[d.entry.name] = found[0]
        else:
            missing.append(f"{root / d.entry.name}.zip (or .tar.gz: {d.entry.url})")
    if "utf8_range" in plan.derived:
        archives["utf8_range"] = root / "utf8_range.tar.gz"
    missing += [str(p) for p in archives.values() if not p.is_file()]
    safeint = root / "safeint/usr/include/safeint"
    if "safeint" in plan.debs and not (safeint / "SafeInt.hpp").is_file():
        missing.append(str(safeint / "SafeInt.hpp"))
    if missing:
        raise BuildError(
            f"missing {', '.join(missing)} (run: ortprune deps fetch --ort-version {version} --dir {root})", root
        )
    return DepsDir(root=root, archives=archives, safeint_include=safeint)


def missing_system_headers(wheel: bool = False, include_dir: Path | None = None) -> list[str]:
    """Debian packages whose headers ORT's CMake will look for and not find (``wheel``: the bindings' too)."""
    root = include_dir or system_include_dir()
    table = {**SYSTEM_HEADERS, **(WHEEL_HEADERS if wheel else {})}
    return [pkg for rel, pkg in table.values() if not (root / rel).exists()]


def check_wheel_headers(include_dir: Path | None = None) -> None:
    """Before a --wheel build starts: the headers only the Python bindings need are installed."""
    root = include_dir or system_include_dir()
    missing = [(rel, pkg) for rel, pkg in WHEEL_HEADERS.values() if not (root / rel).exists()]
    if missing:
        raise BuildError(
            "--wheel needs "
            + ", ".join(f"{root / rel} (apt-get install {pkg})" for rel, pkg in missing)
            + "; make build-deps installs it"
        )
