"""verify: run each model on a pruned library and on a reference, compare every output, time both."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from ortprune.errors import OrtpruneError
from ortprune.results.verify import ModelVerdict, OutputDiff, VerifyReport
from ortprune.scan.lazy import load_structure
from ortprune.tokenizer import load_tokenizer
from ortprune.verify.messages import missing_kernel

SENTENCES = [
    "ONNX Runtime can be pruned to the operators a model needs.",
    "A small library ships faster.",
    "Embeddings map text to vectors; similar texts land close together.",
    "Hello, World!",
]


def missing_op(message: str, opsets: dict[str, int]) -> tuple[str, str] | None:
    """(op as ORT names it, config line that fixes it) from ORT's load error, or None."""
    found = missing_kernel(message)
    if found is None:
        return None
    domain, op = found
    opset = opsets.get(domain, 1)
    return f"{domain}:{op}", f"{domain};{opset};{op}"


def _tokenizer_dir(model: Path) -> Path | None:
    """The directory with the model's tokenizer.json: beside it, one level up, or the bundled model's."""
    for d in (model.parent, model.parent.parent):
        if (d / "tokenizer.json").is_file():
            return d
    from ortprune.bundled import BUNDLED

    for b in BUNDLED:
        try:
            if b.path().resolve() == model.resolve():
                return b.tokenizer()
        except OrtpruneError:
            continue
    return None


def inputs_file(model: Path) -> Path:
    """Where verify looks for a model's own feeds: ``<model>.inputs.npz`` beside it (one array per input)."""
    return model.with_name(model.name + ".inputs.npz")


def make_inputs(session: Any, model: Path, batch: int = 4, seq: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """Realistic feeds: ``<model>.inputs.npz`` when it exists (an image size a detector accepts, an audio
    sample rate), else token ids from the model's tokenizer when there is one, else generated values that
    respect each input's element type and shape (symbolic dims: batch first, then sequence)."""
    names = [i.name for i in session.inputs]
    given = inputs_file(model)
    if given.exists():
        try:
            with np.load(given, allow_pickle=False) as npz:
                feeds = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as e:
            raise OrtpruneError(f"not a .npz of input arrays: {e}", given) from None
        if set(feeds) != set(names):
            raise OrtpruneError(f"has arrays {sorted(feeds)}, the model's inputs are {sorted(names)}", given)
        return feeds
    tok_dir = _tokenizer_dir(model)
    if tok_dir is not None and "input_ids" in names:
        tok, _ = load_tokenizer(tok_dir)  # the tokenization ortprune.embed uses
        enc = tok.encode_batch(SENTENCES[:batch])
        table = {
            "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
        }
        return {i.name: table[i.name].astype(i.dtype) for i in session.inputs if i.name in table}
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in session.inputs:
        dims = [d if isinstance(d, int) and d > 0 else (batch if k == 0 else seq) for k, d in enumerate(i.shape)]
        dtype = i.dtype
        if dtype is None:
            raise OrtpruneError(f"input {i.name!r} has a type verify cannot generate ({i.type_name})", model)
        if np.issubdtype(dtype, np.floating):
            feeds[i.name] = rng.standard_normal(dims).astype(dtype)
        elif dtype == np.bool_:
            feeds[i.name] = np.ones(dims, dtype=bool)
        elif "mask" in i.name:
            feeds[i.name] = np.ones(dims, dtype=dtype)
        else:
            feeds[i.name] = rng.integers(0, 100, size=dims).astype(dtype)
    return feeds


def _time(session: Any, feeds: dict[str, np.ndarray], repeat: int) -> tuple[dict[str, np.ndarray], float]:
    out = session.run(feeds)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        session.run(feeds)
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times) * 1000 if times else 0.0


def compare_outputs(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], tolerance: float) -> list[OutputDiff]:
    diffs = []
    for name, r in ref.items():
        g = got[name]
        if r.shape != g.shape:
            diffs.append(OutputDiff(name, list(g.shape), float("inf"), -1.0, False))
            continue
        rf, gf = r.astype(np.float64), g.astype(np.float64)
        mad = float(np.max(np.abs(rf - gf))) if r.size else 0.0
        rows_r = rf.reshape(rf.shape[0], -1) if rf.ndim > 1 else rf.reshape(1, -1)
        rows_g = gf.reshape(rows_r.shape)
        num = np.sum(rows_r * rows_g, axis=1)
        den = np.linalg.norm(rows_r, axis=1) * np.linalg.norm(rows_g, axis=1)
        cos = np.where(den > 0, num / np.where(den > 0, den, 1), 1.0)
        diffs.append(OutputDiff(name, list(r.shape), mad, float(np.min(cos)) if cos.size else 1.0, mad <= tolerance))
    return diffs


def verify(
    pruned: str | Path,
    models: list[Path],
    reference: str | Path | None = None,
    level: str = "all",
    tolerance: float = 1e-5,
    repeat: int = 5,
    reference_model: Path | None = None,
    pruned_level: str | None = None,
) -> VerifyReport:
    """Load each model on both libraries at ``level``, feed the same inputs, compare outputs and time.

    ``reference_model`` (with one model) runs that file on the reference instead: e.g. an original
    model against its quantized or edited copy, or the ``.onnx`` a ``.ort`` was converted from.
    ``pruned_level`` loads the pruned library's model at another level (``disable`` for a ``.ort``,
    whose graph is already optimized)."""
    if reference_model is not None and len(models) != 1:
        raise OrtpruneError("reference_model compares exactly one model")
    from ortprune.runtime import OrtError, Session, load_library

    p_lib = load_library(pruned)
    r_lib = load_library(reference)
    report = VerifyReport(str(p_lib.path), str(r_lib.path), level, tolerance)
    for model in models:
        structure = load_structure(reference_model or model)
        opsets = {o.domain or "ai.onnx": o.version for o in structure.model.opset_import}
        opsets.setdefault("com.microsoft", 1)
        verdict = ModelVerdict(str(model), "ok")
        report.models.append(verdict)
        with Session(reference_model or model, r_lib, optimization_level=level) as ref:
            feeds = make_inputs(ref, reference_model or model)
            ref_out, verdict.reference_ms = _time(ref, feeds, repeat)
        try:
            sess = Session(model, p_lib, optimization_level=pruned_level or level)
        except OrtError as e:
            found = missing_op(e.ort_message, opsets)
            verdict.status = "missing-op" if found else "error"
            verdict.detail = e.ort_message[:500]
            if found:
                verdict.missing_op, verdict.fix = found
            continue
        with sess:
            got, verdict.pruned_ms = _time(sess, feeds, repeat)
        verdict.outputs = compare_outputs(ref_out, got, tolerance)
        if not all(o.ok for o in verdict.outputs):
            verdict.status = "differs"
    return report
