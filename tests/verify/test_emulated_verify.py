"""probe and verify on another target's library (the official linux-aarch64 1.21.0) under qemu-user, with
tiny models; against this machine's library as the reference."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto

from ortprune.opconfig import OpId
from ortprune.verify import probe, verify
from tests.runtime.tiny import two_inputs_two_outputs


def test_verify_runs_the_aarch64_library_under_qemu_against_this_machines(
    aarch64_official: Path, wheel_lib: Path, tmp_path: Path
) -> None:
    proto = onnx.load_from_string(two_inputs_two_outputs(TensorProto.INT64))
    proto.ir_version = 8
    model = tmp_path / "addmul.onnx"
    onnx.save(proto, model)
    report = verify(aarch64_official, [model], reference=wheel_lib, tolerance=0.0)
    (verdict,) = report.models
    assert verdict.status == "ok", verdict.detail
    assert {o.name for o in verdict.outputs} == {"sum", "prod"} and all(o.max_abs_diff == 0 for o in verdict.outputs)
    assert verdict.pruned_ms is None  # no timings under emulation
    assert report.pruned == str(aarch64_official.resolve())


def test_probe_asks_the_aarch64_library_under_qemu(aarch64_official: Path) -> None:
    report = probe(aarch64_official, [OpId("ai.onnx", 14, "Add"), OpId("com.microsoft", 1, "FusedConv")])
    assert report.library_version == "1.21.0"
    assert {r.op: r.status for r in report.results} == {
        "ai.onnx;14;Add": "implemented",
        "com.microsoft;1;FusedConv": "implemented",
    }


def test_the_verify_command_takes_an_aarch64_library_and_its_official_reference(
    aarch64_official: Path, tmp_path: Path
) -> None:
    """``ortprune verify --lib <aarch64 library> --reference official``: the library's version is read under qemu
    and the official library of its target (not this machine's) is the reference: the same file here, diff 0."""
    import json
    import subprocess
    import sys

    proto = onnx.load_from_string(two_inputs_two_outputs(TensorProto.INT64))
    proto.ir_version = 8
    model = tmp_path / "addmul.onnx"
    onnx.save(proto, model)
    out = tmp_path / "v.json"
    done = subprocess.run([sys.executable, "-m", "ortprune.cli", "verify", "--lib", str(aarch64_official),
                           "--reference", "official", "--tolerance", "0", str(model), "--json", str(out)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["reference"] == str(aarch64_official.resolve())  # the aarch64 release, not the x86-64 one
    assert [m["status"] for m in report["models"]] == ["ok"]
