"""verify: run each model on a pruned library and on a reference, compare every output, time both."""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ortprune.errors import OrtpruneError
from ortprune.results.verify import ModelVerdict, OutputDiff, VerifyReport
from ortprune.runtime.emulated import EmulatedLibrary, EmulatedSession, foreign_target
from ortprune.scan.lazy import load_structure
from ortprune.tokenizer import load_tokenizer
from ortprune.verify.messages import missing_kernel

SENTENCES = [
    "ONNX Runtime can be pruned to the operators a model needs.",
    "A small library ships faster.",
    "Embeddings map text to vectors; similar texts land close together.",
    "Hello, World!",
]

#: A model's verdict: same outputs; different outputs; a library (or the file) could not load it (a
#: pruned library missing a kernel is the special case "missing-op"); a library failed to run it.
OK, DIFFERS, MISSING_OP, CANNOT_LOAD, CANNOT_RUN = "ok", "differs", "missing-op", "cannot-load", "cannot-run"


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


def companion_files(model: str | Path) -> list[Path]:
    """The files read with a model (that exist): its external data, its ``.inputs.npz`` and the tokenizer
    verify feeds it from. A file that is not a readable model has none (its own error comes later)."""
    from ortprune.tokenizer import TOKENIZER_FILES

    model = Path(model)
    if not model.is_file():
        return []
    found = [inputs_file(model)]
    try:
        lazy = load_structure(model)
        found += [model.parent / s.external_location for s in lazy.initializers if s.external_location]
    except (OrtpruneError, OSError, ValueError):
        pass
    tok = _tokenizer_dir(model)
    if tok is not None:
        found += [tok / n for n in TOKENIZER_FILES]
    return [p for p in dict.fromkeys(found) if p.is_file()]


def inputs_file(model: Path) -> Path:
    """Where verify looks for a model's own feeds: ``<model>.inputs.npz`` beside it (one array per input)."""
    return model.with_name(model.name + ".inputs.npz")


#: Sizes tried, in order, for the free non-batch axes of generated inputs (image sides, audio lengths)
#: when the reference cannot run the first guess: e.g. a detector's stride-32 pyramid needs >= 32.
SIZE_LADDER = (32, 64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640)
#: Metadata keys whose integers are taken for sizes the model was made for (YOLO's ``imgsz``...).
_SIZE_KEYS = ("size", "shape", "imgsz", "height", "width", "resolution", "length")


@dataclass
class Feeds:
    """Inputs for one model and where they came from (the verdict reports it)."""

    arrays: dict[str, np.ndarray]
    source: str  # "given" (--inputs), "file", "tokenizer" or "generated"
    note: str = ""

    def describe(self) -> str:
        shapes = ", ".join(f"{k} {v.dtype}[{','.join(map(str, v.shape))}]" for k, v in self.arrays.items())
        return f"{self.source}{f' ({self.note})' if self.note else ''}: {shapes}"


def free_axes(inputs: Sequence[Any]) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """The free axes of ``inputs`` (TensorInfo): named ones as {name: first axis seen}, unnamed ones as
    (input, axis). A name is one size everywhere it appears (ORT checks that), so it is sized once."""
    named: dict[str, int] = {}
    unnamed: list[tuple[str, int]] = []
    for i in inputs:
        for k, d in enumerate(i.shape):
            if isinstance(d, str) and d not in ("?", ""):
                named[d] = min(named.get(d, k), k)
            elif not (isinstance(d, int) and d > 0):
                unnamed.append((i.name, k))
    return named, unnamed


def generated_shapes(
    inputs: Sequence[Any], batch: int, seq: int, dims: dict[str, int], size: int | None = None
) -> dict[str, list[int]]:
    """One shape per input: fixed dims as they are, ``dims[name]`` where given, a batch-like axis (axis 0
    of some input) ``batch``, any other free axis ``size`` (else ``seq``); one size per dim name."""
    named, _ = free_axes(inputs)
    other = seq if size is None else size
    sizes = {n: dims.get(n, batch if axis == 0 else other) for n, axis in named.items()}
    return {
        i.name: [
            d if isinstance(d, int) and d > 0
            else sizes[d] if isinstance(d, str) and d in sizes
            else (batch if k == 0 else other)
            for k, d in enumerate(i.shape)
        ]
        for i in inputs
    }  # fmt: skip


def _generate(inputs: Sequence[Any], shapes: dict[str, list[int]], model: Path, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    for i in inputs:
        if i.dtype is None:
            raise OrtpruneError(f"input {i.name!r} has a type verify cannot generate ({i.type_name})", model)
    need = sum(math.prod(shapes[i.name]) * np.dtype(i.dtype).itemsize for i in inputs)
    if need > (limit := generated_limit()):
        sizes = ", ".join(f"{n} {s}" for n, s in shapes.items())
        raise OrtpruneError(f"generated inputs would take {need:,} bytes ({sizes}), more than {limit:,} "
                            "(a quarter of this machine's memory)", model)  # fmt: skip
    feeds = {}
    for i in inputs:
        shape, dtype = shapes[i.name], i.dtype
        if np.issubdtype(dtype, np.floating):
            feeds[i.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[i.name] = np.ones(shape, dtype=bool)
        elif "mask" in i.name:
            feeds[i.name] = np.ones(shape, dtype=dtype)
        else:
            feeds[i.name] = rng.integers(0, 100, size=shape).astype(dtype)
    return feeds


def generated_limit() -> int:
    """The most bytes generated inputs may take: a quarter of the machine's memory (1 GiB if unknown)."""
    from ortprune.platform import memory_bytes

    return (memory_bytes() or 4 << 30) // 4


def metadata_sizes(metadata: dict[str, str]) -> list[int]:
    """Sizes a model's metadata names (e.g. ``imgsz: [640, 640]``), for its free non-batch axes."""
    found: list[int] = []
    for key, value in metadata.items():
        if any(k in key.lower() for k in _SIZE_KEYS):
            found += [int(n) for n in re.findall(r"\d+", value) if 8 <= int(n) <= 4096]
    return list(dict.fromkeys(found))


def input_candidates(
    session: Any,
    model: Path,
    dims: dict[str, int] | None = None,
    metadata: dict[str, str] | None = None,
    batch: int = 4,
    seq: int = 16,
    seed: int = 0,
) -> Iterator[Feeds]:
    """Feeds to try, best first: ``<model>.inputs.npz`` when it exists (only that), else token ids from
    the model's tokenizer (only those), else generated values that respect each input's element type and
    shape (:func:`generated_shapes`); then, for a model with free non-batch axes the user did not size
    with ``dims``, the same with those axes at each size of its metadata and of :data:`SIZE_LADDER`."""
    dims = dims or {}
    names = [i.name for i in session.inputs]
    given = inputs_file(model)
    if given.exists():
        feeds = load_feeds(given)
        if set(feeds) != set(names):
            raise OrtpruneError(f"has arrays {sorted(feeds)}, the model's inputs are {sorted(names)}", given)
        yield Feeds(feeds, "file", given.name)
        return
    tok_dir = _tokenizer_dir(model)
    if tok_dir is not None and "input_ids" in names:
        tok, _ = load_tokenizer(tok_dir)  # the tokenization ortprune.embed uses
        enc = tok.encode_batch(SENTENCES[:batch])
        table = {
            "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
        }
        yield Feeds({i.name: table[i.name].astype(i.dtype) for i in session.inputs if i.name in table}, "tokenizer")
        return
    inputs = session.inputs
    yield Feeds(_generate(inputs, generated_shapes(inputs, batch, seq, dims), model, seed), "generated")
    named, unnamed = free_axes(inputs)
    open_named = [n for n, axis in named.items() if axis > 0 and n not in dims]
    if not open_named and not [a for a in unnamed if a[1] > 0]:
        return
    tried = {seq}
    for origin, sizes in (("metadata", metadata_sizes(metadata or {})), ("ladder", SIZE_LADDER)):
        for size in sizes:
            if size in tried:
                continue
            tried.add(size)
            shapes = generated_shapes(inputs, batch, seq, dims, size)
            note = f"free axes at {size}, from its metadata" if origin == "metadata" else f"free axes at {size}"
            yield Feeds(_generate(inputs, shapes, model, seed), "generated", note)


def make_inputs(
    session: Any, model: Path, batch: int = 4, seq: int = 16, seed: int = 0, dims: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """The first feeds of :func:`input_candidates` (realistic ones where the model has them)."""
    return next(input_candidates(session, model, dims, batch=batch, seq=seq, seed=seed)).arrays


def _time(session: Any, feeds: dict[str, np.ndarray], repeat: int) -> tuple[dict[str, np.ndarray], float | None]:
    out = session.run(feeds)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        session.run(feeds)
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times) * 1000 if times else None  # None: not timed


def compare_outputs(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], tolerance: float) -> list[OutputDiff]:
    diffs = []
    for name, r in ref.items():
        g = got[name]
        if r.shape != g.shape:
            diffs.append(OutputDiff(name, list(g.shape), float("inf"), -1.0, False))
            continue
        if r.size == 0:  # nothing to differ (an empty slice); reshape(0, -1) would not even work
            diffs.append(OutputDiff(name, list(r.shape), 0.0, 1.0, True))
            continue
        rf, gf = r.astype(np.float64), g.astype(np.float64)
        # equal values (a NaN or an infinity at the same place on both sides included) differ by 0; a NaN
        # on one side only differs without bound
        same = (rf == gf) | (np.isnan(rf) & np.isnan(gf))
        with np.errstate(invalid="ignore"):
            delta = np.where(same, 0.0, np.abs(rf - gf))
        delta[np.isnan(delta)] = np.inf
        mad = float(np.max(delta)) if r.size else 0.0
        both_odd = same & ~np.isfinite(rf)  # the same NaN or infinity on both sides: no part of the cosine
        rf, gf = np.where(both_odd, 0.0, rf), np.where(both_odd, 0.0, gf)
        rows_r = rf.reshape(rf.shape[0], -1) if rf.ndim > 1 else rf.reshape(1, -1)
        rows_g = gf.reshape(rows_r.shape)
        num = np.sum(rows_r * rows_g, axis=1)
        den = np.linalg.norm(rows_r, axis=1) * np.linalg.norm(rows_g, axis=1)
        with np.errstate(invalid="ignore"):
            cos = np.where(den > 0, num / np.where(den > 0, den, 1), 1.0)
        cos[~np.isfinite(num) | ~np.isfinite(den)] = -1.0  # a NaN or infinity on one side only: no agreement
        diffs.append(OutputDiff(name, list(r.shape), mad, float(np.min(cos)) if cos.size else 1.0, mad <= tolerance))
    return diffs


def load_feeds(path: str | Path) -> dict[str, np.ndarray]:
    """Real inputs for a model from an ``.npz`` file (``numpy.savez(path, input_ids=..., ...)``)."""
    from ortprune._io import input_problem

    path = Path(path)
    problem = input_problem(path)
    if problem is not None:
        raise OrtpruneError(f"cannot read the inputs: {problem}", path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, KeyError, AttributeError) as e:
        raise OrtpruneError(f"not a numpy .npz file of input arrays ({e})", path) from None


def verify(
    pruned: str | Path,
    models: list[Path],
    reference: str | Path | None = None,
    level: str = "all",
    tolerance: float = 1e-5,
    repeat: int = 5,
    reference_model: Path | None = None,
    pruned_level: str | None = None,
    inputs: dict[Path, dict[str, np.ndarray]] | None = None,
    dims: dict[str, int] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> VerifyReport:
    """Load each model on both libraries at ``level``, feed the same inputs, compare outputs and time.

    Every model gets its own verdict: one that cannot be loaded or run (by the file, the inputs, the
    reference or the pruned library) is reported as such and the others still run. ``inputs`` gives
    real feeds per model file; ``dims`` sizes named symbolic dimensions of generated feeds.
    ``reference_model`` (with one model) runs that file on the reference instead: e.g. an original
    model against its quantized or edited copy, or the ``.onnx`` a ``.ort`` was converted from.
    ``pruned_level`` loads the pruned library's model at another level (``disable`` for a ``.ort``,
    whose graph is already optimized). ``progress(done, total, model)`` hears of each model as it starts."""
    if reference_model is not None and len(models) != 1:
        raise OrtpruneError("reference_model compares exactly one model")
    if dims:
        _check_dims(dims, [*models, *([reference_model] if reference_model else [])])
    p_lib = _library(pruned)
    r_lib = _library(reference)
    report = VerifyReport(str(p_lib.path), str(r_lib.path), level, tolerance)
    if isinstance(p_lib, EmulatedLibrary) or isinstance(r_lib, EmulatedLibrary):
        repeat = 0  # times under qemu-user say nothing about the target: none are reported
    given = {Path(k).resolve(): v for k, v in (inputs or {}).items()}
    for done, model in enumerate(models):
        if progress is not None:
            progress(done, len(models), str(model))
        verdict = ModelVerdict(str(model), OK)
        report.models.append(verdict)
        try:
            _verify_one(verdict, Path(model), p_lib, r_lib, level, pruned_level or level, tolerance, repeat,
                        reference_model, given.get(Path(model).resolve()), dims or {})  # fmt: skip
        except MemoryError:  # one model's outputs too large for this machine: its verdict, the others still run
            verdict.status, verdict.side = CANNOT_RUN, None
            verdict.detail = "ran out of memory (inputs or outputs too large for this machine)"
    return report


def _check_dims(dims: dict[str, int], models: list[Path]) -> None:
    """UsageError for a dim name no model input has: the size would silently apply to nothing. A model
    whose inputs cannot be read here (an .ort file, a broken file: its verdict says why) leaves it open."""
    from ortprune.errors import UsageError

    names: set[str] = set()
    for model in models:
        try:
            graph = load_structure(model).model.graph
        except OrtpruneError:
            return
        names |= {d.dim_param for i in graph.input for d in i.type.tensor_type.shape.dim if d.dim_param}
    unknown = sorted(set(dims) - names)
    if unknown:
        theirs = ", ".join(sorted(names)[:20]) or "none"
        raise UsageError(
            f"--dim {', '.join(unknown)}: no input of the models has a dimension of that name (theirs: {theirs})"
        )


def _library(path: str | Path | None) -> Any:
    """The library at ``path`` (None: the default one): loaded here, or for another machine's library the
    runner under qemu-user (``runtime.emulated``)."""
    from ortprune.runtime import load_library

    if path is not None and foreign_target(path) is not None:
        return EmulatedLibrary.open(path)
    return load_library(path)


def _session(model: Path, lib: Any, level: str) -> Any:
    from ortprune.runtime import Session

    if isinstance(lib, EmulatedLibrary):
        return EmulatedSession(model, lib, level)
    return Session(model, lib, optimization_level=level)


def _verify_one(
    verdict: ModelVerdict,
    model: Path,
    p_lib: Any,
    r_lib: Any,
    level: str,
    pruned_level: str,
    tolerance: float,
    repeat: int,
    reference_model: Path | None,
    feeds: dict[str, np.ndarray] | None,
    dims: dict[str, int],
) -> None:
    from ortprune.runtime import OrtError

    def fail(status: str, side: str, detail: str, then: str = "") -> None:
        short = detail if len(detail) <= 600 else f"{detail[:200]} ... {detail[-400:]}"  # ORT ends with the why
        verdict.status, verdict.side, verdict.detail = status, side, short + then

    hint = "; give real inputs with --inputs MODEL=feeds.npz or size symbolic dims with --dim NAME=VALUE"
    try:
        structure = load_structure(reference_model or model)
        opsets = {o.domain or "ai.onnx": o.version for o in structure.model.opset_import}
    except OrtpruneError as e:
        return fail(CANNOT_LOAD, "model", str(e))
    opsets.setdefault("com.microsoft", 1)
    try:
        ref = _session(reference_model or model, r_lib, level)
    except OrtpruneError as e:
        return fail(CANNOT_LOAD, "reference", f"the reference library cannot load it: {e}")
    with ref:
        metadata = {p.key: p.value for p in structure.model.metadata_props}
        candidates = (
            iter([Feeds(feeds, "given")]) if feeds is not None
            else input_candidates(ref, reference_model or model, dims, metadata)
        )  # fmt: skip
        failed: list[tuple[Feeds, OrtpruneError]] = []
        chosen: Feeds | None = None
        while chosen is None:
            try:
                candidate = next(candidates, None)
            except OrtpruneError as e:
                return fail(CANNOT_RUN, "inputs", f"cannot make inputs: {e}", hint)
            if candidate is None:
                first, last = failed[0], failed[-1]
                tried = f"; tried {len(failed)} input sets, the last: {last[0].describe()}" if len(failed) > 1 else ""
                detail = f"the reference library cannot run it on {first[0].describe()}: {first[1]}{tried}"
                return fail(CANNOT_RUN, "reference", detail, hint)
            try:
                ref_out, verdict.reference_ms = _time(ref, candidate.arrays, repeat)
                chosen = candidate
            except OrtpruneError as e:
                failed.append((candidate, e))
        feeds = chosen.arrays
        verdict.inputs = chosen.describe()
        if failed:
            verdict.inputs += f"; {len(failed)} input set(s) before it failed on the reference"
    try:
        sess = _session(model, p_lib, pruned_level)
    except OrtError as e:
        found = missing_op(e.ort_message, opsets)
        if found:
            verdict.missing_op, verdict.fix = found
            return fail(MISSING_OP, "pruned", e.ort_message)
        return fail(CANNOT_LOAD, "pruned", f"the pruned library cannot load it: {e.ort_message}")
    except OrtpruneError as e:
        return fail(CANNOT_LOAD, "pruned", f"the pruned library cannot load it: {e}")
    with sess:
        try:
            got, verdict.pruned_ms = _time(sess, feeds, repeat)
        except OrtpruneError as e:
            return fail(CANNOT_RUN, "pruned", f"the pruned library cannot run it (the reference can): {e}")
    verdict.outputs = compare_outputs(ref_out, got, tolerance)
    if not all(o.ok for o in verdict.outputs):
        verdict.status = DIFFERS
    return None
