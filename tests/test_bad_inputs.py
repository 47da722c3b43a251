"""Every bad input gives one clear error and destroys nothing: the real CLI, in subprocesses, over a table
of bad inputs and faults covering every command (issue 12).

For each case: the exit code (2: usage, 1: an error the user can fix), no traceback, no signal, one
``error:`` line naming the file, nothing left behind in the work directory and nothing there changed
(every file's bytes, mode and kind are compared before and after; a FIFO stays a FIFO, /dev/null a device).
"""

from __future__ import annotations

import ctypes.util
import hashlib
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from ortprune.runtime import find_library

CLI = [sys.executable, "-m", "ortprune.cli"]


# -- the world each case runs in ----------------------------------------------------------------------
def _model(
    nodes: list[onnx.NodeProto],
    opset: int = 17,
    domain_opsets: dict[str, int] | None = None,
    inits: list[onnx.TensorProto] | None = None,
) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (domain_opsets or {}).items()]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits or []), opset_imports=imports)
    model.ir_version = 8
    return model


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())  # no checker: these models are meant to be wrong
    return path


def _elf_with_machine(src: Path, dest: Path, machine: int) -> Path:
    data = bytearray(src.read_bytes())
    data[18:20] = machine.to_bytes(2, "little")  # e_machine
    dest.write_bytes(bytes(data))
    return dest


def _external(model: onnx.ModelProto, location: str, length: str) -> onnx.ModelProto:
    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", length)):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    model.graph.initializer.append(w)
    return model


@pytest.fixture(scope="module")
def real_lib() -> Path:
    return Path(find_library(None))


@pytest.fixture
def world(tmp_path: Path, real_lib: Path) -> Path:
    """The files the table's cases name, made fresh for each case."""
    w = tmp_path / "w"
    w.mkdir()
    add = helper.make_node("Relu", ["x"], ["y"], name="relu")
    _save(_model([add]), w / "good.onnx")
    _save(_model([helper.make_node("Relu\nai.onnx;1;Evil", ["x"], ["y"], name="inj")]), w / "newline_op.onnx")
    _save(_model([add], opset=0), w / "opset0.onnx")
    _save(_model([add], opset=10**6), w / "opset_huge.onnx")
    _save(_model([helper.make_node("", ["x"], ["y"], name="empty")]), w / "empty_op.onnx")
    _save(_model([helper.make_node("Relu;Add", ["x"], ["y"], name="semi")]), w / "semicolon_op.onnx")
    _save(_model([helper.make_node("Evil", ["x"], ["y"], name="evil")]), w / "unknown_op.onnx")
    _save(
        _model(
            [helper.make_node("Relu", ["x"], ["y"], name="dom", domain="com.example")], domain_opsets={"com.example": 1}
        ),
        w / "unknown_domain.onnx",
    )
    _save(_external(_model([add]), "weights.bin", "four"), w / "ext_length.onnx")
    _save(_external(_model([add]), "../outside.bin", "4"), w / "ext_escape.onnx")
    (w / "weights.bin").write_bytes(b"\0" * 4)
    good = (w / "good.onnx").read_bytes()
    (w / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (w / "empty.onnx").write_bytes(b"")
    (w / "text.onnx").write_text("not a model\n")
    (w / "ops.config").write_text("ai.onnx;17;Relu\n")
    (w / "bad_types.config").write_text('ai.onnx;17;Relu{"custom": 5}\n')
    (w / "latin1.config").write_bytes("# caf\xe9\nai.onnx;17;Relu\n".encode("latin-1"))
    (w / "not.npz").write_text("not numpy\n")
    (w / "dir").mkdir()
    (w / "dir.onnx").mkdir()
    os.mkfifo(w / "fifo")
    os.mkfifo(w / "fifo.onnx")
    (w / "loop_a").symlink_to(w / "loop_b")
    (w / "loop_b").symlink_to(w / "loop_a")
    (w / "link_to_good.onnx").symlink_to(w / "good.onnx")
    (w / "plain.txt").write_text("a file, not a directory\n")
    lib = real_lib.read_bytes()
    (w / "truncated.so").write_bytes(lib[: len(lib) // 2])
    (w / "text.so").write_text("not an ELF file\n")
    libz = Path(
        next(
            p
            for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib")
            if (p := Path(d) / (ctypes.util.find_library("z") or "libz.so.1")).exists()
        )
    )
    (w / "libz.so").write_bytes(libz.read_bytes())
    _elf_with_machine(libz, w / "arm.so", 183)  # EM_AARCH64
    (w / "empty_include").mkdir()
    with open(w / "short.tar.gz", "wb") as f:  # a gzip'd tar cut short: passes the magic check, fails to extract
        import io
        import tarfile

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            data = os.urandom(200_000)
            info = tarfile.TarInfo("onnxruntime/tools/ci_build/build.py")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        f.write(buf.getvalue()[:60_000])
    (w / "ro").mkdir()
    return w


def _snapshot(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under ``root``: kind, mode and content hash (symlinks: their target)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                digest = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                digest = ""
            snap[str(p.relative_to(root))] = (str(kind), stat.S_IMODE(st.st_mode), digest)
    return snap


# -- the table --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]  # {w}: the world directory, {lib}: the onnxruntime wheel's library
    code: int  # 2: usage error, 1: an error the user can fix
    message: str  # regex the error line must match (it names the file where there is one)
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None
    check: Callable[[Path], None] | None = None  # more assertions on the world after the run


def _still_device(w: Path) -> None:
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


USAGE = [
    Case("scan-unknown-option", ["scan", "--bogus"], 2, r"No such option: --bogus"),
    Case("verify-missing-argument", ["verify"], 2, r"Missing argument"),
    Case("size-bad-format", ["size", "--format", "x", "{lib}"], 2, r"Invalid value for '--format'"),
    Case("probe-missing-lib", ["probe"], 2, r"Missing argument"),
    Case("embed-threads-not-int", ["embed", "--threads", "abc", "hi"], 2, r"Invalid value for '--threads'"),
    Case("slim-bad-level", ["slim", "-O", "nonsense", "{w}/good.onnx"], 2, r"Invalid value for '--optimization"),
    Case("build-unknown-variant", ["build", "--variant", "tiny"], 2, r"Invalid value for '--variant'"),
    Case("results-missing-output", ["results"], 2, r"Missing option '-o'"),
    Case("estimate-missing-full", ["estimate"], 2, r"Missing option '--full'"),
    Case("deps-fetch-unknown-option", ["deps", "fetch", "--bogus"], 2, r"No such option"),
    Case("source-fetch-missing-version", ["source", "fetch"], 2, r"Missing argument"),
    Case("unknown-command", ["frobnicate"], 2, r"No such command"),
    Case("embed-negative-precision", ["embed", "--precision", "-3", "hi"], 2, r"--precision must be from 0"),
    Case("embed-zero-batch", ["embed", "--batch-size", "0", "hi"], 2, r"--batch-size must be at least 1"),
    Case("verify-dim-not-int", ["verify", "{w}/good.onnx", "--lib", "{lib}", "--dim", "n=abc"], 2, r"--dim takes"),
    Case(
        "verify-tolerance-nan",
        ["verify", "{w}/good.onnx", "--lib", "{lib}", "--tolerance", "nan"],
        2,
        r"--tolerance must be",
    ),
    Case(
        "verify-inputs-other-model",
        ["verify", "{w}/good.onnx", "--lib", "{lib}", "--inputs", "{w}/other.onnx={w}/not.npz"],
        2,
        r"not one of the models",
    ),
    Case(
        "results-config-no-label",
        ["results", "-o", "{w}/r.md", "--config", "{w}/ops.config"],
        2,
        r"--config takes LABEL=FILE",
    ),
    Case(
        "slim-unknown-variant",
        ["slim", "{w}/good.onnx", "--variants", "bogus", "--out", "{w}/out"],
        2,
        r"unknown variant\(s\) 'bogus'",
    ),
    Case(
        "slim-empty-variants",
        ["slim", "{w}/good.onnx", "--variants", ",", "--out", "{w}/out"],
        2,
        r"--variants is empty",
    ),
    Case(
        "slim-negative-tolerance",
        ["slim", "{w}/good.onnx", "--tolerance", "-1", "--out", "{w}/out"],
        2,
        r"--tolerance must be",
    ),
    Case("probe-zero-jobs", ["probe", "{lib}", "--config", "{w}/ops.config", "-j", "0"], 2, r"--jobs must be"),
    Case("size-negative-top", ["size", "{lib}", "--top", "-1"], 2, r"--top must be >= 0"),
]

OUTPUTS = [
    Case(
        "scan-o-dev-null",
        ["scan", "-O", "disable", "{w}/good.onnx", "-o", "/dev/null"],
        1,
        r"/dev/null: is a character device, not a regular file; refusing",
        check=_still_device,
    ),
    Case("scan-o-fifo", ["scan", "-O", "disable", "{w}/good.onnx", "-o", "{w}/fifo"], 1, r"w/fifo: is a FIFO"),
    Case("scan-o-directory", ["scan", "-O", "disable", "{w}/good.onnx", "-o", "{w}/dir"], 1, r"w/dir: is a directory"),
    Case(
        "scan-o-its-input",
        ["scan", "-O", "disable", "{w}/good.onnx", "-o", "{w}/good.onnx"],
        1,
        r"good.onnx: is also an input",
    ),
    Case(
        "scan-o-symlink-to-input",
        ["scan", "-O", "disable", "{w}/good.onnx", "-o", "{w}/link_to_good.onnx"],
        1,
        r"link_to_good.onnx: is also an input",
    ),
    Case(
        "scan-json-same-as-o",
        ["scan", "-O", "disable", "{w}/good.onnx", "-o", "{w}/a.cfg", "--json", "{w}/a.cfg"],
        1,
        r"a.cfg: is given as two outputs",
    ),
    Case(
        "scan-o-under-a-file",
        ["scan", "-O", "disable", "{w}/good.onnx", "-o", "{w}/plain.txt/x.config"],
        1,
        r"plain.txt/x.config: cannot write here: Not a directory",
    ),
    Case(
        "scan-o-symlink-loop",
        ["scan", "-O", "disable", "{w}/good.onnx", "-o", "{w}/loop_a"],
        1,
        r"loop_a: cannot follow the symlink",
    ),
    Case("size-o-its-input", ["size", "{w}/libz.so", "-o", "{w}/libz.so"], 1, r"libz.so: is also an input"),
    Case(
        "size-chart-is-a-file",
        ["size", "{w}/libz.so", "--chart", "{w}/plain.txt"],
        1,
        r"plain.txt: exists and is not a directory",
    ),
    Case(
        "estimate-o-its-config",
        ["estimate", "--full", "{w}/libz.so", "--config", "{w}/ops.config", "-o", "{w}/ops.config"],
        1,
        r"ops.config: is also an input",
    ),
    Case("embed-o-directory", ["embed", "hi", "-o", "{w}/dir"], 1, r"w/dir: is a directory"),
    Case("embed-o-fifo", ["embed", "hi", "-o", "{w}/fifo"], 1, r"w/fifo: is a FIFO"),
    Case("results-o-directory", ["results", "-o", "{w}/dir"], 1, r"w/dir: is a directory"),
    Case(
        "probe-json-its-config",
        ["probe", "{lib}", "--config", "{w}/ops.config", "--json", "{w}/ops.config"],
        1,
        r"ops.config: is also an input",
    ),
    Case(
        "verify-json-its-model",
        ["verify", "{w}/good.onnx", "--lib", "{lib}", "--json", "{w}/good.onnx"],
        1,
        r"good.onnx: is also an input",
    ),
    Case("build-out-is-a-file", ["build", "--out", "{w}/plain.txt"], 1, r"plain.txt: exists and is not a directory"),
    Case("build-distcc-absurd-port", ["build", "--distcc", "build1:99999"], 1, r"--distcc: port 99999"),
    Case("build-distcc-empty", ["build", "--distcc", ""], 1, r"--distcc names no host"),
    Case(
        "build-distcc-env-garbage",
        ["build"],
        1,
        r"'http://b:1' is not a distcc host",
        env={"ORTPRUNE_DISTCC_HOSTS": "http://b:1"},
    ),
    Case("slim-distcc-zero-jobs", ["slim", "{w}/good.onnx", "--distcc", "b1 b2/0"], 1, r"job limit 0 in 'b2/0'"),
    Case(
        "slim-out-is-a-file",
        ["slim", "{w}/good.onnx", "--out", "{w}/plain.txt"],
        1,
        r"plain.txt: exists and is not a directory",
    ),
]

LOADER = [
    Case(
        "embed-truncated-lib-env",
        ["embed", "hi"],
        1,
        r"truncated.so: truncated or corrupt: segment",
        env={"ORT_DYLIB_PATH": "{w}/truncated.so"},
    ),
    Case("embed-lib-not-elf", ["embed", "hi", "--lib", "{w}/text.so"], 1, r"text.so: not an ELF shared library"),
    Case("embed-lib-directory", ["embed", "hi", "--lib", "{w}/dir"], 1, r"w/dir: not a regular file"),
    Case("embed-lib-fifo", ["embed", "hi", "--lib", "{w}/fifo"], 1, r"w/fifo: not a regular file"),
    Case(
        "embed-lib-not-onnxruntime", ["embed", "hi", "--lib", "{w}/libz.so"], 1, r"libz.so: not an ONNX Runtime library"
    ),
    Case("embed-lib-other-machine", ["embed", "hi", "--lib", "{w}/arm.so"], 1, r"arm.so: built for EM_AARCH64"),
    Case(
        "embed-bare-name-not-found",
        ["embed", "hi"],
        1,
        r"libnonexistent-ort.so.9: cannot load as a shared",
        env={"ORT_DYLIB_PATH": "libnonexistent-ort.so.9"},
    ),
    Case(
        "probe-truncated-lib",
        ["probe", "{w}/truncated.so", "--config", "{w}/ops.config"],
        1,
        r"truncated.so: truncated or corrupt",
    ),
    Case(
        "verify-truncated-lib",
        ["verify", "{w}/good.onnx", "--lib", "{w}/truncated.so"],
        1,
        r"truncated.so: truncated or corrupt",
    ),
    Case(
        "scan-runtime-not-elf",
        ["scan", "{w}/good.onnx", "--runtime", "{w}/text.so"],
        1,
        r"text.so: not an ELF shared library",
    ),
]

MODELS = [
    Case(
        "scan-op-with-newline",
        ["scan", "-O", "disable", "{w}/newline_op.onnx"],
        1,
        r"newline_op.onnx: node 'inj' in graph: invalid operator name",
    ),
    Case("scan-opset-zero", ["scan", "-O", "disable", "{w}/opset0.onnx"], 1, r"opset0.onnx: node 'relu' .*opset must"),
    Case(
        "scan-opset-huge",
        ["scan", "-O", "disable", "{w}/opset_huge.onnx"],
        1,
        r"opset_huge.onnx: node 'relu' .*opset must be an integer from 1 to 1000",
    ),
    Case(
        "scan-empty-op-name",
        ["scan", "-O", "disable", "{w}/empty_op.onnx"],
        1,
        r"empty_op.onnx: node 'empty' .*invalid operator name ''",
    ),
    Case(
        "scan-op-with-semicolon",
        ["scan", "-O", "disable", "{w}/semicolon_op.onnx"],
        1,
        r"semicolon_op.onnx: node 'semi' .*invalid operator name",
    ),
    Case(
        "scan-op-no-schema",
        ["scan", "-O", "disable", "{w}/unknown_op.onnx"],
        1,
        r"unknown_op.onnx: node 'evil' .*no schema defines ai.onnx:Evil at opset 17",
    ),
    Case(
        "scan-unknown-domain",
        ["scan", "-O", "disable", "{w}/unknown_domain.onnx"],
        1,
        r"unknown_domain.onnx: node 'dom' .*unknown domain 'com.example'",
    ),
    Case(
        "scan-external-length-not-int",
        ["scan", "-O", "disable", "{w}/ext_length.onnx"],
        1,
        r"ext_length.onnx: initializer 'w': external data length 'four' is not",
    ),
    Case(
        "scan-external-outside-dir",
        ["scan", "-O", "disable", "{w}/ext_escape.onnx"],
        1,
        r"ext_escape.onnx: external data location '../outside.bin' .*inside the model's directory",
    ),
    Case("scan-truncated", ["scan", "{w}/truncated.onnx"], 1, r"truncated.onnx: not a valid ONNX model"),
    Case("scan-empty-file", ["scan", "{w}/empty.onnx"], 1, r"empty.onnx: file is empty"),
    Case("scan-text-file", ["scan", "{w}/text.onnx"], 1, r"text.onnx: not a valid ONNX model"),
    Case("scan-fifo", ["scan", "{w}/fifo.onnx"], 1, r"fifo.onnx: is a FIFO"),
    Case("scan-symlink-loop", ["scan", "{w}/loop_a"], 1, r"loop_a: a symlink loop"),
    Case("scan-missing", ["scan", "{w}/nope/missing.onnx"], 1, r"missing.onnx: no such file or directory"),
    Case("scan-empty-directory", ["scan", "{w}/dir"], 1, r"w/dir: directory contains no .onnx"),
    Case("slim-not-a-model", ["slim", "{w}/text.onnx", "--out", "{w}/out"], 1, r"text.onnx: not a valid ONNX model"),
    Case(
        "slim-bad-ort-source",
        ["slim", "{w}/good.onnx", "--ort", "{w}/nope", "--out", "{w}/out"],
        1,
        r"w/nope: ORT source: no such file",
    ),
    Case(
        "verify-inputs-not-npz",
        ["verify", "{w}/good.onnx", "--lib", "{lib}", "--inputs", "{w}/good.onnx={w}/not.npz"],
        1,
        r"not.npz: not a numpy .npz",
    ),
]

FILES = [
    Case("probe-config-directory", ["probe", "{lib}", "--config", "{w}/dir"], 1, r"w/dir: is not a regular file"),
    Case(
        "probe-config-bad-type-json",
        ["probe", "{lib}", "--config", "{w}/bad_types.config"],
        1,
        r"bad_types.config:1: \"custom\" must be a list of lists",
    ),
    Case(
        "estimate-config-not-utf8",
        ["estimate", "--full", "{w}/libz.so", "--config", "{w}/latin1.config"],
        1,
        r"latin1.config: config file is not UTF-8",
    ),
    Case("embed-stdin-not-utf8", ["embed", "-"], 1, r"standard input is not UTF-8 text", stdin=b"caf\xe9\n"),
    Case(
        "embed-lone-surrogate",
        ["embed", b"\xed\xa0\x80 half a pair".decode("utf-8", "surrogateescape")],
        1,
        r"document 0 is not valid Unicode text",
    ),
    Case("embed-model-missing", ["embed", "hi", "--model", "{w}/nope"], 1, r"nope"),
    Case(
        "results-config-missing",
        ["results", "-o", "{w}/r.md", "--config", "L={w}/missing.config"],
        1,
        r"missing.config: --config L: no such file",
    ),
    Case(
        "build-truncated-tarball",
        ["build", "--source", "{w}/short.tar.gz"],
        1,
        r"short.tar.gz: cannot extract the archive",
    ),
    Case("build-git-tag-escapes", ["build", "--source", "git:../../etc"], 1, r"invalid git tag '../../etc'"),
    Case("build-reduced-without-config", ["build", "--variant", "reduced"], 1, r"needs --config ops.config"),
    Case(
        "build-config-directory",
        ["build", "--variant", "reduced", "--config", "{w}/dir"],
        1,
        r"w/dir: is not a regular file",
    ),
    Case(
        "build-wheel-without-dlpack",
        ["build", "--wheel"],
        1,
        r"dlpack/dlpack.h \(apt-get install libdlpack-dev\)",
        env={"ORTPRUNE_SYSTEM_INCLUDE": "{w}/empty_include"},
    ),
    Case("size-fifo", ["size", "{w}/fifo"], 1, r"w/fifo: is a FIFO"),
    Case("size-symlink-loop", ["size", "{w}/loop_a"], 1, r"loop_a: a symlink loop"),
    Case("size-text-file", ["size", "{w}/text.so"], 1, r"text.so: not an ELF file"),
    Case("size-directory", ["size", "{w}/dir"], 1, r"w/dir: is a directory"),
    Case(
        "estimate-full-not-elf",
        ["estimate", "--full", "{w}/text.so", "--config", "{w}/ops.config"],
        1,
        r"text.so: not an ELF file",
    ),
    Case("source-fetch-unknown-release", ["source", "fetch", "9.9.9"], 1, r"no Debian pool recipe for .* 9.9.9"),
    Case("deps-fetch-unknown-origin", ["deps", "fetch", "--from", "github"], 1, r"unknown origin 'github'"),
    Case(
        "deps-plan-not-deps-txt", ["deps", "plan", "--deps-txt", "{w}/ops.config"], 1, r"ops.config: line 1: expected"
    ),
    Case(
        "deps-plan-dir-no-deps-txt", ["deps", "plan", "--deps-txt", "{w}/dir"], 1, r"w/dir: not an ONNX Runtime source"
    ),
    Case("deps-fetch-deps-txt-fifo", ["deps", "fetch", "--deps-txt", "{w}/fifo"], 1, r"w/fifo: deps.txt: is a FIFO"),
]

CASES = USAGE + OUTPUTS + LOADER + MODELS + FILES


def test_the_table_covers_enough() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    commands = {c.args[0] for c in CASES}
    assert commands >= {
        "scan",
        "build",
        "results",
        "slim",
        "deps",
        "source",
        "probe",
        "verify",
        "size",
        "estimate",
        "embed",
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, world: Path, real_lib: Path, tmp_path: Path) -> None:
    run_case(case, world, real_lib, tmp_path)


def run_case(case: Case, world: Path, real_lib: Path, tmp_path: Path) -> None:
    """Run one case's CLI in a subprocess; check its exit, its one error line, and that the world is as it was."""

    def fill(text: str) -> str:
        return text.replace("{w}", str(world)).replace("{lib}", str(real_lib))

    env = {k: v for k, v in os.environ.items() if k != "ORT_DYLIB_PATH"}
    env.update({k: fill(v) for k, v in case.env.items()})
    env["ORTPRUNE_CACHE"] = str(tmp_path / "cache")  # a case may touch the cache, never the shared one
    env["COLUMNS"] = "200"
    before = _snapshot(world)
    proc = subprocess.run(
        [*CLI, *map(fill, case.args)], input=case.stdin or b"", capture_output=True, env=env, cwd=world, timeout=120
    )
    out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}\n{err}"
    assert "Traceback" not in out + err, err
    assert proc.returncode == case.code, f"exit {proc.returncode}\n{out}\n{err}"
    if case.code == 1 or "Usage:" not in err:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert re.search(case.message, lines[0]), lines[0]
    else:  # click's form: the usage line, then one Error: line
        assert err.startswith("Usage: ortprune"), err
        assert re.search(case.message, err), err
    assert _snapshot(world) == before, "the world changed"
    if case.check:
        case.check(world)
