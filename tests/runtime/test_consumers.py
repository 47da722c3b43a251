"""Which consumers load a library (`ortprune probe LIB --consumers`), and a real third-party client end to end.

The end-to-end client is the npm registry's onnxruntime-node@1.21.0 (installed by the fixture into the
ortprune cache). Its N-API binding loads libonnxruntime.so.1 through DT_RUNPATH ($ORIGIN), which
LD_LIBRARY_PATH overrides; the test proves that by reading /proc/self/maps of the node process.

What it runs on, honestly:
- default suite: on a fresh CI machine no ORT build exists (a cold one takes 25+ minutes), so the library
  swapped in is PyPI's onnxruntime==1.21.0 libonnxruntime.so (pip download, cached): a second, independent
  build of the exact release npm ships. This proves the mechanism (the line README gives, the binding
  taking another file of the same version, same outputs), not a pruned library.
- `ortbuild` marker: the same run on every ORT 1.21.0 build in ~/.cache/ortprune/builds (the full build and
  the pruned ones); skipped when there is none.
Skipped only where npm/node are absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from typer.testing import CliRunner

from ortprune.cache import cache_dir
from ortprune.cli import app
from ortprune.embed.text import load_tokenizer
from ortprune.ortbuild.runner import BuildResult
from ortprune.runtime import wheel_library
from ortprune.runtime.consumers import CONSUMERS, check_consumers
from tests.runtime.node_client import NODE_ORT_VERSION, npm_package, pypi_library, run_node, shipped_library

needs_node = pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None,
                                reason="npm/node not installed: the onnxruntime-node client cannot run")  # fmt: skip


@pytest.fixture(scope="module")
def old_lib() -> Path:
    """PyPI's libonnxruntime.so.1.21.0: the release ortprune builds offline."""
    return pypi_library(NODE_ORT_VERSION)


def _by_name(report: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["consumer"].split(" (")[0]: c for c in report["consumers"]}


def test_consumers_of_a_current_library() -> None:
    lib = wheel_library()
    assert lib is not None
    report = check_consumers(lib).to_json_dict()
    facts = report["library"]
    assert facts["version"].startswith("1.") and facts["api_level"] == int(facts["version"].split(".")[1])
    assert facts["soname"] == "libonnxruntime.so.1" and facts["accepts_layout_level"]
    c = _by_name(report)
    assert len(c) == len(CONSUMERS)
    assert c["fastembed-rs 6.0.0"]["works"] is True
    assert c["fastembed-rs 6.0.0"]["how"].startswith(f"ORT_DYLIB_PATH={facts['path']} cargo run")
    assert c["Python wheel from `ortprune build --wheel`"]["works"] is None
    assert c["ortprune.runtime / ortprune.embed"]["works"] is True


def test_consumers_of_ort_1_21(old_lib: Path) -> None:
    """ORT 1.21.0 serves C API 21 and rejects optimization level 3: fastembed-rs 6 cannot use it (the
    reasons and the way out are named), ort with api-17 and onnxruntime-node@1.21.0 can."""
    report = check_consumers(old_lib).to_json_dict()
    assert (report["library"]["version"], report["library"]["api_level"]) == ("1.21.0", 21)
    assert report["library"]["accepts_layout_level"] is False  # asked of the real library, not assumed
    c = _by_name(report)
    rs = c["fastembed-rs 6.0.0"]
    assert rs["works"] is False
    assert "needs C API 24" in rs["why"] and "--source git:v1.24.x" in rs["why"] and "level 3" in rs["why"]
    assert c["ort 2.0.0-rc.13 crate, load-dynamic, default-features = false"]["works"] is True
    assert c["ort 2.0.0-rc.10 crate, load-dynamic, default features"]["works"] is False
    node = c["onnxruntime-node@1.21.0"]
    assert node["works"] is True and node["how"].startswith(f"ln -s {old_lib.resolve()} DIR/libonnxruntime.so.1")


def test_probe_consumers_cli(old_lib: Path, tmp_path: Path) -> None:
    out = tmp_path / "consumers.json"
    res = CliRunner().invoke(app, ["probe", str(old_lib), "--consumers", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "fastembed-rs 6.0.0" in res.output and "C API 21" in res.output
    assert json.loads(out.read_text()) == check_consumers(old_lib).to_json_dict()
    p = subprocess.run([sys.executable, "-m", "ortprune.cli", "probe", str(tmp_path / "nope.so"), "--consumers"],
                       capture_output=True, text=True)  # fmt: skip
    assert p.returncode != 0 and "nope.so: no such file" in p.stdout + p.stderr and "Traceback" not in p.stderr


def _feeds(tokenizer_dir: Path) -> dict[str, np.ndarray]:
    tok, _ = load_tokenizer(tokenizer_dir)
    enc = tok.encode_batch(["hello world", "a pruned ONNX Runtime, loaded by node", ""])
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return npm_package(NODE_ORT_VERSION)


def _swap_and_compare(node_modules: Path, lib: Path, model: Path, tokenizer_dir: Path, work: Path) -> float:
    feeds = _feeds(tokenizer_dir)
    own = run_node(node_modules, model, feeds, work / "own")
    shipped = shipped_library(node_modules).resolve()
    assert own["loaded"] == [str(shipped)]
    swapped = run_node(node_modules, model, feeds, work / "swapped", lib=lib)
    assert swapped["loaded"] == [str(lib.resolve())], swapped["loaded"]  # the binding took our file, only it
    assert own["outputs"].keys() == swapped["outputs"].keys()
    diff = 0.0
    for name, want in own["outputs"].items():
        np.testing.assert_allclose(swapped["outputs"][name], want, atol=1e-5)
        diff = max(diff, float(np.abs(swapped["outputs"][name] - want).max()))
    return diff


@needs_node
def test_node_binding_loads_libonnxruntime_through_runpath(node_modules: Path) -> None:
    binding = shipped_library(node_modules).parent / "onnxruntime_binding.node"
    with binding.open("rb") as f:
        tags = {t.entry.d_tag: t for s in ELFFile(f).iter_sections() if isinstance(s, DynamicSection)
                for t in s.iter_tags()}  # fmt: skip
        needed = [t.needed for s in ELFFile(f).iter_sections() if isinstance(s, DynamicSection)
                  for t in s.iter_tags() if t.entry.d_tag == "DT_NEEDED"]  # fmt: skip
    assert "libonnxruntime.so.1" in needed
    assert "DT_RUNPATH" in tags and "DT_RPATH" not in tags  # RUNPATH: LD_LIBRARY_PATH is searched first
    assert "$ORIGIN" in tags["DT_RUNPATH"].runpath


@needs_node
def test_onnxruntime_node_on_another_library_of_its_version(node_modules: Path, old_lib: Path, int8_model: Path,
                                                           tokenizer_dir: Path, tmp_path: Path) -> None:  # fmt: skip
    diff = _swap_and_compare(node_modules, old_lib, int8_model, tokenizer_dir, tmp_path)
    assert diff <= 1e-5


def _cached_builds() -> list[BuildResult]:
    manifests = sorted(cache_dir("builds").glob(f"{NODE_ORT_VERSION}-*/manifest.json"))
    from ortprune.platform import host_target

    return [b for b in map(BuildResult.load, manifests) if b.target in (None, host_target())]  # this machine's


@pytest.mark.ortbuild
@needs_node
def test_onnxruntime_node_on_the_ortprune_builds(node_modules: Path, int8_model: Path, tokenizer_dir: Path,
                                                tmp_path: Path) -> None:  # fmt: skip
    builds = _cached_builds()
    if not builds:
        pytest.skip(f"no ORT {NODE_ORT_VERSION} build in {cache_dir('builds')}")
    from ortprune.opconfig import OpConfig
    from ortprune.scan import scan

    required = scan([int8_model], "all").config
    ran = []
    for b in builds:
        if b.variant == "minimal":
            continue  # a minimal build loads ORT-format models only; onnxruntime-node is given the .onnx
        if b.config is not None and OpConfig.parse(b.config).covers(required):
            continue  # a reduced build made for other models: it cannot run this one
        diff = _swap_and_compare(node_modules, Path(b.library), int8_model, tokenizer_dir, tmp_path / b.key)
        assert diff <= 1e-5, (b.key, diff)
        ran.append(b.key)
    if not ran:  # e.g. only minimal builds are cached (test_bundle runs node on those, through a bundle)
        pytest.skip(f"no cached ONNX-loading build runs this model: {[b.key for b in builds]}")


def test_a_c_api_pruned_library_serves_only_ortprunes_runtime(tmp_path: Path) -> None:
    """``--prune c-api`` keeps the C API functions ortprune's runtime calls: every other client is told so."""
    from ortprune.deploy import consumers
    from ortprune.runtime._capi import NOT_BUILT_MESSAGE as MESSAGE
    from ortprune.runtime._capi import c_api_pruned
    from ortprune.runtime.consumers import LibraryFacts, verdicts

    lib = tmp_path / "libonnxruntime.so.1.21.0"
    lib.write_bytes(b"\x7fELF" + b"\0" * 64 + MESSAGE.encode() + b"\0")
    plain = tmp_path / "plain.so"
    plain.write_bytes(b"\x7fELF" + b"\0" * 64)
    assert c_api_pruned(lib) and not c_api_pruned(plain)

    facts = LibraryFacts(str(lib), "1.21.0", 21, "libonnxruntime.so.1", False, ("CPUExecutionProvider",), True)
    by_name = {v.consumer.split(" (")[0]: v for v in verdicts(facts)}
    assert by_name["ortprune.runtime / ortprune.embed"].works is True
    node = by_name["onnxruntime-node@1.21.0"]
    assert node.works is False and "--prune c-api" in node.why
    assert by_name["Python wheel from `ortprune build --wheel`"].works is None  # not this file's business
    unpruned = {v.consumer: v.works for v in verdicts(LibraryFacts(str(plain), "1.21.0", 21, None, False))}
    assert unpruned["onnxruntime-node@1.21.0 (npm)"] is True

    from ortprune.bundle import BundleModel

    model = BundleModel("m", "m/model.onnx", "onnx", "0" * 64, 1, "0" * 64, "mean", True)
    text = consumers([model], "lib/libonnxruntime.so.1.21.0", "libonnxruntime.so.1", c_api_only=True)
    assert "--prune c-api" in text["ORT_DYLIB_PATH"] and "--prune c-api" in text["LD_LIBRARY_PATH"]
    assert "--prune c-api" not in consumers([model], "lib/x.so", None)["ORT_DYLIB_PATH"]
