"""The official ONNX Runtime release library of a version and target (from PyPI's ``onnxruntime`` wheel),
cached under ``~/.cache/ortprune/official`` and checked by SHA-256.

It is what users ship today, so it serves as the reference (scan's optimizer, probe/verify's reference) and
as the first baseline of every size table; the MinSizeRel full build becomes opt-in. pip does the download
(it honours the user's index, mirrors and proxies); the library is taken out of the wheel with ``zipfile``
and checked against the wheel's own RECORD hash.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ortprune._io import atomic_path, atomic_write_text
from ortprune.cache import cache_dir, file_digest
from ortprune.errors import OrtpruneError
from ortprune.platform import host_target
from ortprune.results import BuildResult

#: The name the official library goes by where builds are listed (``slim``'s reference and first table row).
OFFICIAL = "official"

#: pip ``--platform`` tags per target, newest first (ORT 1.21.0 ships manylinux_2_27/2_28 wheels; older
#: releases manylinux2014 = manylinux_2_17).
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "linux-x86_64": ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "linux-aarch64": (
        "manylinux_2_28_aarch64",
        "manylinux_2_27_aarch64",
        "manylinux_2_17_aarch64",
        "manylinux2014_aarch64",
    ),
}
#: Wheels of every Python version carry the same library; this order makes the choice the same on every machine.
PYTHON_VERSIONS = ("3.11", "3.12", "3.10", "3.13")
PIP_TIMEOUT_S = 600


class NoOfficialLibrary(OrtpruneError):
    """No official release library could be had for this version and target (none published, or offline)."""


@dataclass(frozen=True)
class OfficialLibrary:
    """One official release library, as cached."""

    version: str
    target: str
    wheel: str  # the wheel's file name
    wheel_sha256: str
    library: str  # path of the cached library
    library_sha256: str
    library_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_build(lib: OfficialLibrary) -> BuildResult:
    """The official library as a build manifest (variant ``official``), so it takes a build's place in
    tables, probes and verifies."""
    from ortprune.ortbuild.runner import dt_needed

    return BuildResult(
        ort_version=lib.version,
        variant=OFFICIAL,
        key=f"{lib.version}-{OFFICIAL}-{lib.target}-{lib.library_sha256[:12]}",
        build_py_args=[],
        extra_flags=[],
        config_hash=None,
        config=None,
        compiler=f"official release ({lib.wheel})",
        cmake="",
        source=lib.wheel,
        build_dir="",
        library=lib.library,
        library_bytes=lib.library_bytes,
        needed=dt_needed(Path(lib.library)),
        wall_time_s=0.0,
        stripped_library=lib.library,  # the release ships it stripped
        stripped_bytes=lib.library_bytes,
        target=None if lib.target == host_target() else lib.target,
    )


def check_version(version: str) -> str:
    """A release version as PyPI names them (``1.21.0``, ``1.22.0rc1``); anything else is one clear error
    (it becomes a cache directory name and a pip requirement)."""
    if not re.fullmatch(r"\d+(\.\d+){1,3}([.-]?(a|b|rc|post|dev)\d*)*", version):
        raise OrtpruneError(f"not an ONNX Runtime release version: {version!r} (e.g. 1.21.0)")
    return version


def check_target(target: str) -> str:
    if target not in PLATFORM_TAGS:
        raise OrtpruneError(f"unknown target {target!r}; known: {', '.join(PLATFORM_TAGS)}")
    return target


def _sha256(path: Path) -> str:
    return file_digest(path, 64)


def cached(version: str, target: str | None = None) -> OfficialLibrary | None:
    """The cached official library of ``version`` for ``target`` (default: this machine), if its bytes still
    have the recorded hash; None otherwise."""
    where = cache_dir("official", f"{check_version(version)}-{check_target(target or host_target())}")
    try:
        lib = OfficialLibrary(**json.loads((where / "official.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
    path = Path(lib.library)
    if not path.is_file() or path.stat().st_size != lib.library_bytes or _sha256(path) != lib.library_sha256:
        return None
    return lib


def official_library(
    version: str,
    target: str | None = None,
    pip_args: tuple[str, ...] = (),
    log: Callable[[str], None] = lambda s: None,
) -> OfficialLibrary:
    """The official ``libonnxruntime.so`` of ONNX Runtime ``version`` for ``target``, downloaded once (pip
    with ``pip_args`` added, e.g. ``--no-index --find-links DIR``) and cached; NoOfficialLibrary when no wheel
    of that version exists for the target or the index cannot be reached."""
    target = check_target(target or host_target())
    found = cached(check_version(version), target)
    if found is not None:
        return found
    log(f"official ONNX Runtime {version} for {target}: downloading the onnxruntime=={version} wheel from PyPI")
    with tempfile.TemporaryDirectory(prefix="ortprune-wheel-") as tmp:
        wheel = _download(version, target, Path(tmp), pip_args)
        return _extract(wheel, version, target)


def _download(version: str, target: str, dest: Path, pip_args: tuple[str, ...]) -> Path:
    tags = [a for t in PLATFORM_TAGS[target] for a in ("--platform", t)]
    problems = []
    for py in PYTHON_VERSIONS:
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", *tags, "--python-version", py, "-d", str(dest), *pip_args,
               f"onnxruntime=={version}"]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise NoOfficialLibrary(f"pip download of onnxruntime=={version} took over {PIP_TIMEOUT_S} s") from None
        wheels = sorted(dest.glob("onnxruntime-*.whl"))
        if proc.returncode == 0 and wheels:
            return wheels[0]
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        problems.append(lines[-1] if lines else f"pip exited {proc.returncode}")
        if "No matching distribution" not in (proc.stderr or "") and "Could not find a version" not in (
            proc.stderr or ""
        ):
            break  # not a missing Python tag (the index is unreachable, say): no use asking again
    raise NoOfficialLibrary(
        f"no official onnxruntime=={version} wheel for {target} could be downloaded ({problems[-1]})"
    )


def _record_hashes(zf: zipfile.ZipFile) -> dict[str, str]:
    record = next((n for n in zf.namelist() if n.endswith(".dist-info/RECORD")), None)
    if record is None:
        return {}
    rows = csv.reader(io.StringIO(zf.read(record).decode("utf-8")))
    return {r[0]: r[1] for r in rows if len(r) >= 2 and r[1].startswith("sha256=")}


def _extract(wheel: Path, version: str, target: str) -> OfficialLibrary:
    """The library out of ``wheel``, checked against the wheel's RECORD, written to the cache atomically."""
    name = f"onnxruntime/capi/libonnxruntime.so.{version}"
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as e:
        raise NoOfficialLibrary(f"not a readable wheel ({e})", wheel) from None
    with zf:
        if name not in zf.namelist():
            raise NoOfficialLibrary(f"the wheel holds no {name}", wheel)
        data = zf.read(name)
        want = _record_hashes(zf).get(name)
    digest = hashlib.sha256(data)
    got = "sha256=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    if want is None or want != got:
        raise NoOfficialLibrary(f"{name} does not match the wheel's RECORD ({want or 'no hash'} != {got})", wheel)
    where = cache_dir("official", f"{version}-{target}")
    where.mkdir(parents=True, exist_ok=True)
    lib_path = where / Path(name).name
    with atomic_path(lib_path) as tmp:
        tmp.write_bytes(data)
        tmp.chmod(0o755)
    lib = OfficialLibrary(version, target, wheel.name, _sha256(wheel), str(lib_path), digest.hexdigest(), len(data))
    atomic_write_text(where / "official.json", json.dumps(lib.to_dict(), indent=2) + "\n")
    return lib
