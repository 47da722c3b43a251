"""Map any ORT version's own ``cmake/deps.txt`` onto offline archives: nothing here is tied to one release.

Each deps.txt entry (``name;URL;SHA1``) is read for its upstream version (the tag or commit in the URL) and
gets one action:

- ``archive``: a Debian pool tarball of that upstream version (:data:`DEBIAN_ARCHIVES`, keyed by name and
  version, so a newer ORT that bumps a version needs a new row, not new code);
- anything else comes from :data:`KNOWN_DIFFERENCES`, the one table of the ways a CPU build's
  dependencies differ from what deps.txt says (a pinned commit replaced by a release, an archive derived
  from another, headers from a Debian -dev package, entries a CPU build never fetches);
- ``missing``: neither table knows it. A new ORT version shows its new or bumped dependencies here, named
  with their URL, before any download or build starts.

deps.txt is ``;``-separated text with ``#`` comments (not CSV: no quoting), so it is split by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ortprune.errors import BuildError
from ortprune.ortbuild.sources import PoolFile

_SHA1 = re.compile(r"[0-9a-fA-F]{40}")
_NAME = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class DepEntry:
    name: str
    url: str
    sha1: str

    @property
    def version(self) -> str:
        """The upstream version in the URL: a tag (``v21.12`` → ``21.12``, ``2024-07-02``) or a commit."""
        for marker in ("/refs/tags/", "/releases/download/"):
            if marker in self.url:
                tag = re.sub(r"\.(zip|tar\.gz|tgz)$", "", self.url.split(marker)[1].split("/")[0])
                return re.sub(r"^(v|boost-)", "", tag)
        commit = re.search(r"[0-9a-f]{40}", self.url)
        if commit:
            return commit.group(0)
        last = self.url.rstrip("/").rsplit("/", 1)[-1]
        stem = re.sub(r"\.(zip|tar\.gz|tgz|tar\.xz|tar\.bz2)$", "", last)
        return re.sub(rf"^{re.escape(self.name)}[-_]?", "", stem).removeprefix("v")


def parse_deps_txt(text: str, source: str | Path = "deps.txt") -> list[DepEntry]:
    """The entries of a deps.txt (comments and blank lines skipped); a malformed line or a name given twice
    is one BuildError naming ``source`` and the line."""
    entries: dict[str, DepEntry] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(";")
        if len(fields) != 3 or not _NAME.fullmatch(fields[0]) or not fields[1] or not _SHA1.fullmatch(fields[2]):
            raise BuildError(f"line {n}: expected name;URL;SHA1 (40 hex digits), got {line!r}", source)
        if fields[0] in entries:
            raise BuildError(f"line {n}: {fields[0]!r} is listed twice", source)
        entries[fields[0]] = DepEntry(*fields)
    if not entries:
        raise BuildError("no name;URL;SHA1 entries: not an ONNX Runtime cmake/deps.txt", source)
    return list(entries.values())


#: (deps.txt name, upstream version) → the Debian pool tarball of that version (each built ORT 1.21.0
#: offline, see docs/results). Add a row when an ORT version bumps one of these.
DEBIAN_ARCHIVES: dict[tuple[str, str], PoolFile] = {
    ("abseil_cpp", "20240722.0"): PoolFile("a/abseil/abseil_20240722.0.orig.tar.gz",
                                           "df6d1f5ef540725f3851201176a60486aab332410788465c9877910bb471c34a"),
    ("protobuf", "21.12"): PoolFile("p/protobuf/protobuf_3.21.12.orig.tar.gz",
                                    "930c2c3b5ecc6c9c12615cf5ad93f1cd6e12d0aba862b572e076259970ac3a53"),
    ("onnx", "1.17.0"): PoolFile("o/onnx/onnx_1.17.0.orig.tar.gz",
                                 "8d5e983c36037003615e5a02d36b18fc286541bf52de1a78f6cf9f32005a820e"),
    ("re2", "2024-07-02"): PoolFile("r/re2/re2_20240702.orig.tar.gz",
                                    "eb2df807c781601c14a260a507a5bb4509be1ee626024cb45acbd57cb9d4032b"),
    ("flatbuffers", "23.5.26"): PoolFile("f/flatbuffers/flatbuffers_23.5.26+dfsg.orig.tar.xz",
                                         "0d309fd2c47bbbebd450e68d1419c336d53d1b8f5ce47e1f1f7f28f452fc6f3b"),
}  # fmt: skip

_EIGEN_501 = PoolFile("e/eigen3/eigen3_5.0.1.orig.tar.bz2",
                      "197d404a98cb1f99925c4e2cbda278881b167ee2e6437ed97cffb5f9d4952e75")  # fmt: skip
_SAFEINT_DEB = PoolFile("s/safeint/libsafeint-dev_3.0.28a+dfsg-4_all.deb",
                        "f40ba5bfcf33f15f5c9fed9ff4178ea61841b0d5b8d07eb41fcd4bd7cb4a0043")  # fmt: skip


@dataclass(frozen=True)
class Difference:
    """How a CPU build gets one deps.txt entry when it is not a same-version Debian tarball."""

    action: str  # "archive" | "derived" | "deb-headers" | "system" | "wheel-system" | "unused"
    note: str
    pool_file: PoolFile | None = None
    #: for "system"/"wheel-system": (header under the system include dir, Debian package)
    header: tuple[str, str] | None = None


def _unused(*names: str) -> dict[str, Difference]:
    return {name: Difference("unused", "not fetched by a CPU build without tests") for name in names}


#: The one table of known differences between deps.txt and what an offline CPU build uses, for any version.
KNOWN_DIFFERENCES: dict[str, Difference] = {
    "eigen": Difference("archive", "ORT pins an Eigen commit past 3.4.0 (min<PropagateNaN>); Eigen 5.0.1 builds",
                        _EIGEN_501),
    "utf8_range": Difference("derived", "protobuf 21.x's source carries third_party/utf8_range; archived from it "
                                        "with a CMakeLists.txt (deps.make_utf8_range_archive)"),
    "safeint": Difference("deb-headers", "SafeInt has no source tarball in the pool: libsafeint-dev's headers "
                                         "(cmake define safeint_SOURCE_DIR)", _SAFEINT_DEB),
    "date": Difference("system", "find_package", header=("date/date.h", "libhowardhinnant-date-dev")),
    "microsoft_gsl": Difference("system", "find_package", header=("gsl/gsl", "libmsgsl-dev")),
    "json": Difference("system", "find_package", header=("nlohmann/json.hpp", "nlohmann-json3-dev")),
    "mp11": Difference("system", "find_package (Boost)", header=("boost/mp11.hpp", "libboost-dev")),
    "dlpack": Difference("wheel-system", "--wheel only", header=("dlpack/dlpack.h", "libdlpack-dev")),
    "pybind11": Difference("wheel-system", "--wheel only: pybind11's CMake package from the PyPI wheel"),
    "pytorch_cpuinfo": Difference("unused", "onnxruntime_ENABLE_CPUINFO=OFF"),
    **_unused("coremltools", "cxxopts", "fp16", "fxdiv", "google_benchmark", "googletest", "googlexnnpack",
              "microsoft_wil", "mimalloc", "onnx_tensorrt", "protoc_win64", "protoc_win32", "protoc_linux_x64",
              "protoc_linux_x86", "protoc_linux_aarch64", "protoc_mac_universal", "psimd", "pthreadpool",
              "tensorboard", "cutlass", "extensions", "composable_kernel", "directx_headers", "cudnn_frontend",
              "dawn", "kleidiai"),
}  # fmt: skip


@dataclass(frozen=True)
class PlannedDep:
    entry: DepEntry
    action: str  # an action of Difference, or "missing"
    note: str = ""
    pool_file: PoolFile | None = None


@dataclass(frozen=True)
class DepsPlan:
    deps: list[PlannedDep]
    source: str | Path = "deps.txt"

    @property
    def archives(self) -> dict[str, PoolFile]:
        """deps.txt name → pool tarball, for every entry fetched as an archive."""
        return {d.entry.name: d.pool_file for d in self.deps if d.action == "archive" and d.pool_file}

    @property
    def debs(self) -> dict[str, PoolFile]:
        """deps.txt name → Debian package whose unpacked headers stand in for the entry."""
        return {d.entry.name: d.pool_file for d in self.deps if d.action == "deb-headers" and d.pool_file}

    @property
    def derived(self) -> set[str]:
        return {d.entry.name for d in self.deps if d.action == "derived"}

    @property
    def missing(self) -> list[PlannedDep]:
        return [d for d in self.deps if d.action == "missing"]

    def check(self, version: str) -> DepsPlan:
        """self, or one BuildError naming every dependency no table knows (with its URL and the ways out)."""
        if self.missing:
            items = "; ".join(f"{d.entry.name} {d.entry.version} ({d.entry.url})" for d in self.missing)
            raise BuildError(
                f"ONNX Runtime {version}: no offline archive known for {items}. Put those archives in a directory "
                f"named by their deps.txt name (e.g. onnx.zip) and pass --deps DIR, add rows to "
                f"ortprune.ortbuild.depsmap.DEBIAN_ARCHIVES, or build online with --source git:v{version}",
                self.source,
            )
        return self


def plan_deps(text: str, source: str | Path = "deps.txt") -> DepsPlan:
    """What an offline CPU build does with each entry of this deps.txt (no network, no files read)."""
    planned = []
    for e in parse_deps_txt(text, source):
        if (e.name, e.version) in DEBIAN_ARCHIVES:
            planned.append(PlannedDep(e, "archive", f"Debian pool, same version {e.version}",
                                      DEBIAN_ARCHIVES[(e.name, e.version)]))  # fmt: skip
        elif e.name in KNOWN_DIFFERENCES:
            d = KNOWN_DIFFERENCES[e.name]
            planned.append(PlannedDep(e, d.action, d.note, d.pool_file))
        else:
            planned.append(PlannedDep(e, "missing"))
    return DepsPlan(planned, source)


def system_headers(action: str) -> dict[str, tuple[str, str]]:
    """deps.txt name → (header, Debian package) for the entries taken from the system with ``action``."""
    return {name: d.header for name, d in KNOWN_DIFFERENCES.items() if d.action == action and d.header}


def find_deps_txt(tree: Path) -> Path | None:
    """An ORT source tree's own deps.txt: the original, which ``deps.apply_deps`` keeps as deps.txt.orig once
    it has pointed deps.txt at local archives; None when the tree has neither."""
    return next((p for p in (tree / "cmake" / "deps.txt.orig", tree / "cmake" / "deps.txt") if p.is_file()), None)


def read_deps_txt(tree: Path) -> tuple[str, Path]:
    """The text and path of :func:`find_deps_txt`; a tree without one is a BuildError naming the tree."""
    path = find_deps_txt(tree)
    if path is None:
        raise BuildError("not an ONNX Runtime source tree (no cmake/deps.txt)", tree)
    try:
        return path.read_text(encoding="utf-8"), path
    except (OSError, UnicodeDecodeError) as e:
        raise BuildError(f"cannot read: {e}", path) from None
