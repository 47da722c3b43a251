"""Archive members ORT's final link never pulls, so a cold build need not compile them.

``libonnxruntime.so`` is linked from static archives (ORT's own ``libonnxruntime_*.a``, abseil, protobuf-lite,
onnx, re2, flatbuffers). ld takes a member of an archive only when it defines a symbol still undefined, so a
member that no link pulls adds nothing to the library: not compiling it changes no byte of the output. The
linker map of one real build (``ld -Map``, section "Archive member included to satisfy reference") names the
members pulled; every other member's source goes into a list shipped per release, target and toolchain
(``ortprune/data/unpulled-<version>-<target>-<toolchain>.txt``), which the ``sources`` lever reads for a cold
build. Kernel and MLAS archives are left out: what they pull depends on the config (the kernels: the
``sources`` lever's own rule). A member some other config needs fails the link (ORT links with
``--no-undefined``) and is put back (``prune.restore_for``, then the whole list), never a different library.

Regenerate the list from a finished build of the release (objects still in its build directory)::

    python -m ortprune.ortbuild.members ~/.cache/ortprune/builds/<key> -o src/ortprune/data/unpulled-….txt

No library reads ld's map format (it is GNU ld's human-readable report), hence the small parser here.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from ortprune._io import atomic_write_text
from ortprune.errors import BuildError

MAP_SECTION = "Archive member included to satisfy reference by file (symbol)"
#: Archives whose pulled members depend on the op config: kernels (the ``sources`` lever's kernel rule covers
#: them) and MLAS (a Conv model pulls the convolution routines a BERT model does not; quick to compile).
CONFIG_ARCHIVES = ("libonnxruntime_providers.a", "libonnxruntime_mlas.a")
#: Entry prefixes: a path relative to the ORT source tree, or to the build's CMake directory (``_deps/…``).
SOURCE, BUILD = "source:", "build:"
_MEMBER = re.compile(r"^(\S+\.a)\(([^)\s]+)\)", re.M)  # a short one has its referrer on the same line
_ARCHIVE_CMD = re.compile(r"\bar\s+q?c\w*\s+(\S+\.a)\s+(.*?)(?:\s+&&|$)")
_COMPILE = re.compile(r"\s-o\s+(\S+\.o)\s+-c\s+(\S+)")


def pulled_members(map_text: str) -> set[tuple[str, str]]:
    """``(archive file name, member name)`` of every member ld took, from its ``-Map`` output."""
    if MAP_SECTION not in map_text:
        raise BuildError(f"not a GNU ld map with archive members (no {MAP_SECTION!r} section)")
    section = map_text.split(MAP_SECTION, 1)[1]
    ends = [i for i in (section.find(f"\n{h}") for h in ("Discarded input sections", "Allocating common",
                                                          "Memory Configuration")) if i >= 0]  # fmt: skip
    section = section[: min(ends)] if ends else section
    return {(os.path.basename(a), m) for a, m in _MEMBER.findall(section)}


def archive_objects(commands: str) -> dict[str, list[str]]:
    """Each archive of a ``ninja -t commands`` listing (CMake's ``ar qc LIB OBJ...``) and the objects put in it."""
    found: dict[str, list[str]] = {}
    for line in commands.splitlines():
        m = _ARCHIVE_CMD.search(line)
        if m:
            found[m[1]] = [o for o in m[2].split() if o.endswith(".o")]
    return found


def object_sources(commands: str) -> dict[str, str]:
    """Each object of a ``ninja -t commands`` listing and the source it is compiled from (as ninja names it)."""
    return {m[1]: m[2] for m in _COMPILE.finditer(commands)}


def entry_for(path: str, source: Path, config_dir: Path) -> str | None:
    """``source:`` or ``build:`` and the path relative to that root; None for a file under neither."""
    p = Path(os.path.normpath(path if os.path.isabs(path) else config_dir / path))
    for prefix, root in ((BUILD, config_dir), (SOURCE, source)):
        if p.is_relative_to(root):
            return prefix + p.relative_to(root).as_posix()
    return None


def resolve(entry: str, source: Path, config_dir: Path) -> Path:
    """The absolute path of a list entry in this build."""
    if entry.startswith(SOURCE):
        return source / entry[len(SOURCE) :]
    if entry.startswith(BUILD):
        return config_dir / entry[len(BUILD) :]
    raise BuildError(f"unpulled-member entry without {SOURCE!r} or {BUILD!r}: {entry!r}")


def unpulled(map_text: str, commands: str, source: Path, config_dir: Path) -> list[str]:
    """The list entries of the sources whose objects the mapped link did not pull (config archives excepted).
    A member name twice in one archive counts as pulled if either was (the map names members, not objects)."""
    pulled = pulled_members(map_text)
    sources = object_sources(commands)
    out = set()
    for archive, objects in archive_objects(commands).items():
        name = os.path.basename(archive)
        if name in CONFIG_ARCHIVES:
            continue
        for obj in objects:
            if (name, os.path.basename(obj)) in pulled or obj not in sources:
                continue
            entry = entry_for(sources[obj], source, config_dir)
            if entry is not None:
                out.add(entry)
    return sorted(out)


def list_path(version: str, target: str, toolchain: str) -> Path:
    return Path(__file__).parent.parent / "data" / f"unpulled-{version}-{target}-{toolchain}.txt"


def load(version: str, target: str, toolchain: str) -> list[str]:
    """The shipped list for a release, target and toolchain; empty when none was recorded (nothing dropped)."""
    path = list_path(version, target, toolchain)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as e:
        raise BuildError(f"the unpulled-member list is not readable: {e.strerror}", path) from None
    entries = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    bad = [e for e in entries if not e.startswith((SOURCE, BUILD))]
    if bad:
        raise BuildError(f"line {bad[0]!r} is not {SOURCE}PATH or {BUILD}PATH", path)
    return entries


def link_command(commands: str) -> str:
    """The command that links ``libonnxruntime.so`` in a ``ninja -t commands onnxruntime`` listing."""
    links = [ln for ln in commands.splitlines() if " -shared " in ln and re.search(r"\s-o\s+libonnxruntime\.so", ln)]
    if len(links) != 1:
        raise BuildError(f"expected one link of libonnxruntime.so in the build's commands, found {len(links)}")
    return links[0]


def link_map(config_dir: Path, commands: str, env: dict[str, str] | None = None) -> str:
    """Run the build's own link of ``libonnxruntime.so`` again into a scratch file with ``-Wl,-Map``, and
    return the map: what the link pulls, with the objects the build left in place."""
    with tempfile.TemporaryDirectory(prefix="ortprune-map-") as tmp:
        out, map_file = Path(tmp) / "lib.so", Path(tmp) / "link.map"
        cmd = re.sub(r"(\s)-o\s+libonnxruntime\.so\S*", rf"\1-o {shlex.quote(str(out))} "
                     rf"-Wl,-Map={shlex.quote(str(map_file))}", link_command(commands), count=1)  # fmt: skip
        done = subprocess.run(["bash", "-c", cmd], cwd=config_dir, env=env, capture_output=True, text=True)
        if done.returncode != 0 or not map_file.is_file():
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise BuildError(f"relinking with a map failed (are the build's objects still there?):\n{tail}", config_dir)
        return map_file.read_text(errors="replace")


def record(build_dir: Path, out: Path, env: dict[str, str] | None = None) -> list[str]:
    """Write the list of a finished build (its ``state.json`` names the source) to ``out``."""
    import json

    config_dir = build_dir / "MinSizeRel"
    try:
        manifest = json.loads((build_dir / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise BuildError(f"not a finished ortprune build (manifest.json: {e})", build_dir) from None
    source = Path(manifest["source"])
    commands = subprocess.run(["ninja", "-C", str(config_dir), "-t", "commands", "onnxruntime"], env=env,
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    entries = unpulled(link_map(config_dir, commands, env), commands, source, config_dir)
    header = (
        f"# Sources of archive members the link of libonnxruntime.so never pulls ({len(entries)}), recorded\n"
        f"# from the build {build_dir.name} (variant {manifest.get('variant')}, ortprune.ortbuild.members).\n"
    )
    atomic_write_text(out, header + "".join(f"{e}\n" for e in entries))
    return entries


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ortprune.ortbuild.members", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("build_dir", type=Path, help="a finished build's directory (~/.cache/ortprune/builds/<key>)")
    ap.add_argument("-o", "--out", type=Path, required=True, help="the list to write")
    args = ap.parse_args(argv)
    # cmake and ninja from this interpreter's environment (as ``runner.build_env``, not imported: no cycle)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    try:
        entries = record(args.build_dir, args.out, env)
    except (BuildError, subprocess.CalledProcessError) as e:  # one line, as the CLI says it
        raise SystemExit(f"error: {e}") from None
    print(f"{len(entries)} unpulled member sources -> {args.out}")


if __name__ == "__main__":
    main()
