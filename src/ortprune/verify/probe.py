"""probe: which operators a libonnxruntime really implements, asked one single-node model at a time.

Each probe creates a session on the library through :mod:`ortprune.runtime`. Probes run in worker
processes (a batch each, in parallel); a worker that crashes inside the library is replaced and its
unfinished probes re-run one per process, so a crash is reported for one op instead of ending the run.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import onnx

from ortprune.errors import OrtpruneError, RuntimeLoadError
from ortprune.opconfig import OpConfig, OpId, OpTypes
from ortprune.platform import check_parallel
from ortprune.results.verify import IMPLEMENTED, MISSING, UNKNOWN, ProbeReport, ProbeResult
from ortprune.verify.messages import says_kernel_missing
from ortprune.verify.probe_models import ProbeModel, probe_model

_NOT_IMPLEMENTED = 9  # OrtErrorCode ORT_NOT_IMPLEMENTED
#: Errors raised from a kernel's constructor: ORT found the kernel, only our made-up attributes upset it.
_KERNEL_RAN = re.compile(r"OpKernelInfo|KernelInfo&")


def classify(code: int | None, message: str) -> str:
    """A probe's status from the session-creation result (None: success)."""
    if code is None:
        return IMPLEMENTED
    if says_kernel_missing(message) and code in (_NOT_IMPLEMENTED, 1, 6):
        return MISSING
    if _KERNEL_RAN.search(message):
        return IMPLEMENTED
    return UNKNOWN


def _worker_cmd(lib: str) -> list[str]:
    return [sys.executable, "-m", "ortprune.verify._probe_worker", lib]


def _run_batch(
    lib: str, batch: list[tuple[str, bytes]], on_result: Callable[[str], None] | None = None
) -> dict[str, tuple[int | None, str]]:
    """Probe a batch in one worker; returns what it finished before exiting (all, unless it crashed).
    ``on_result`` hears of each probe as the worker reports it (progress)."""
    from ortprune.runtime.emulated import EmulatedLibrary, foreign_target

    if foreign_target(lib) is not None:  # another machine's library: the runner, under qemu-user
        found = EmulatedLibrary.open(lib).probe(batch, "disable")
        if on_result is not None:
            for key in found:
                on_result(key)
        if len(batch) == 1 and batch[0][0] not in found:
            found[batch[0][0]] = (-1, "the library crashed creating this session (under qemu-user)")
        return found
    payload = json.dumps([[i, base64.b64encode(m).decode()] for i, m in batch])
    done: dict[str, tuple[int | None, str]] = {}
    # the worker's answers are read as they come (one JSON line per probe), not when it exits
    with subprocess.Popen(
        _worker_cmd(lib), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(target=_feed, args=(proc.stdin, payload), daemon=True)
        feeder.start()
        for item in _worker_items(proc.stdout):
            if "id" in item:
                done[item["id"]] = (item["code"], item["message"])
                if on_result is not None:
                    on_result(item["id"])
        feeder.join()
    # a batch that crashed is re-run one probe per process by the caller; a lone probe that crashed is the answer
    if proc.returncode < 0 and len(batch) == 1 and batch[0][0] not in done:
        done[batch[0][0]] = (-1, f"the library crashed (signal {-proc.returncode}) creating this session")
    return done


def _feed(stdin: IO[str], payload: str) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):  # a worker that died early reads no more
        stdin.write(payload)
        stdin.close()


def _worker_items(stdout: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON lines a worker printed (other lines are the library's own output); a fatal one raises."""
    for line in stdout if not isinstance(stdout, str) else stdout.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if item.get("fatal"):
            raise RuntimeLoadError(item["fatal"])
        yield item


def library_info(lib: str | Path) -> tuple[str, str]:
    """(path, version) of ``lib``, asked of a worker process: the library under test is never loaded
    into this one (a broken library may crash whatever loads it)."""
    from ortprune.runtime.emulated import EmulatedLibrary, foreign_target
    from ortprune.runtime.library import find_library

    if foreign_target(lib) is not None:
        emulated = EmulatedLibrary.open(lib)
        return str(emulated.path), emulated.version
    path = find_library(lib)  # path and ELF checks, no dlopen
    proc = subprocess.run(_worker_cmd(path), input="[]", capture_output=True, text=True)
    for item in _worker_items(proc.stdout):
        if "version" in item:
            return str(item["library"]), str(item["version"])
    if proc.returncode < 0:
        raise RuntimeLoadError(f"loading the library killed the process (signal {-proc.returncode})", path)
    raise RuntimeLoadError(f"the probe worker could not load the library: {proc.stderr.strip()[-300:]}", path)


def probe(
    lib: str | Path,
    ops: Iterable[OpId],
    jobs: int | None = None,
    types: dict[tuple[str, str], OpTypes] | None = None,
    converter: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> ProbeReport:
    """Probe each op on ``lib``; isolated in worker processes, ``jobs`` of them at once. ``types`` (a config's
    per-op type info) makes each probe ask for a type a type-reduced build keeps. ``converter`` (the full
    build of the same release) turns each probe into an ORT-format model first: a minimal build loads
    nothing else. ``progress(done, total, op)`` hears of each probe as it finishes."""
    ops = sorted(set(ops))
    if not ops:
        raise OrtpruneError("nothing to probe: no operator given")
    path, version = library_info(lib)  # fails here, once, for a bad path or a non-ORT library
    report = ProbeReport(library=path, library_version=version)
    types = types or {}
    models = {str(op): _probe_model(op, types.get((op.domain, op.op))) for op in ops}
    todo = [(k, p.model) for k, p in models.items() if p.model is not None]
    unconvertible: dict[str, str] = {}
    if converter is not None:
        todo, unconvertible = _to_ort_format(todo, converter)
    jobs = check_parallel(jobs, "jobs") or os.cpu_count() or 2
    batches = [todo[i::jobs] for i in range(jobs) if todo[i::jobs]]
    results: dict[str, tuple[int | None, str]] = {}
    lock, finished = threading.Lock(), [len(ops) - len(todo)]

    def one_done(key: str) -> None:
        if progress is not None:
            with lock:
                finished[0] += 1
                progress(finished[0], len(ops), key)

    with ThreadPoolExecutor(jobs) as pool:
        for done in pool.map(lambda b: _run_batch(path, b, one_done), batches):
            results.update(done)
    leftover = [(k, m) for k, m in todo if k not in results]
    if leftover:  # a worker crashed: isolate each remaining probe
        with ThreadPoolExecutor(jobs) as pool:
            for done in pool.map(lambda item: _run_batch(path, [item], one_done), leftover):
                results.update(done)
    for key, p in models.items():
        if p.model is None:
            report.results.append(ProbeResult(key, UNKNOWN, None, f"no probe model could be built: {p.reason}"))
            continue
        if key in unconvertible:
            report.results.append(ProbeResult(key, UNKNOWN, None, unconvertible[key]))
            continue
        code, message = results.get(key, (-1, "no result from the probe worker"))
        status = classify(code, message) if code != -1 else UNKNOWN
        report.results.append(ProbeResult(key, status, p.element_type, "" if code is None else message[:300]))
    return report


def _probe_model(op: OpId, hints: OpTypes | None) -> ProbeModel:
    """The probe model of ``op``; one onnx cannot build (a schema this code does not foresee) is reported
    as not built, with onnx's reason, instead of ending the run."""
    try:
        return probe_model(op, hints=hints)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, onnx.checker.ValidationError) as e:
        return ProbeModel(op, None, None, f"onnx could not make it ({type(e).__name__}: {str(e)[:200]})")


def _to_ort_format(
    todo: list[tuple[str, bytes]], converter: str | Path
) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """Each probe model saved in ORT format by ``converter`` at level disable; the ones it cannot load
    (an error from the kernel's constructor, say) are reported as not probed, with the reason."""
    import tempfile

    from ortprune.errors import OrtpruneError
    from ortprune.runtime import Session

    converted, failed = [], {}
    with tempfile.TemporaryDirectory(prefix="ortprune-probe-ort-") as tmp:
        out = Path(tmp) / "probe.ort"
        for key, model in todo:
            try:
                Session(
                    model,
                    converter,
                    optimization_level="disable",
                    log_level="fatal",
                    optimized_model_path=out,
                    config={"session.save_model_format": "ORT"},
                ).close()
            except OrtpruneError as e:
                failed[key] = f"the full build could not convert the probe to ORT format: {e}"[:300]
                continue
            converted.append((key, out.read_bytes()))
    return converted, failed


def all_known_ops() -> list[OpId]:
    """Every (domain, since-version, op) of the ONNX schemas and ORT's own (contrib) schemas that ONNX
    Runtime has a CPU kernel for: a schema version no ORT release implements (``ai.onnx;1;Abs``: ORT's
    kernels start at 6) is no library's "missing" op. The kernels are the onnxruntime package's; without
    it every schema version is listed."""
    import onnx.defs

    from ortprune.schemas import _ort_schemas

    ops: set[OpId] = set()
    for s in onnx.defs.get_all_schemas_with_history():
        if not s.deprecated:
            ops.add(OpId(s.domain or "ai.onnx", s.since_version, s.name))
    for (domain, name), versions in _ort_schemas().items():
        if domain not in ("ai.onnx", "ai.onnx.ml"):
            ops.update(OpId(domain, v.since_version, name) for v in versions)
    kernels = cpu_kernel_ranges()
    if kernels:
        ops = {o for o in ops if any(lo <= o.opset <= hi for lo, hi in kernels.get((o.domain, o.op), ()))}
    return sorted(ops)


def cpu_kernel_ranges() -> dict[tuple[str, str], list[tuple[int, int]]]:
    """(domain, op) → the opset ranges of the onnxruntime package's CPU kernels ({} without onnxruntime)."""
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as C
    except ImportError:
        return {}
    ranges: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for k in C.get_all_opkernel_def():
        if k.provider == "CPUExecutionProvider":
            ranges.setdefault((k.domain or "ai.onnx", k.op_name), []).append(tuple(k.version_range))
    return ranges


def ops_for(
    config: Path | None = None, models: list[Path] | None = None, all_ops: bool = False, level: str = "all"
) -> list[OpId]:
    """The ops to probe: a config's, the models' (scanned at ``level``), or every known op."""
    chosen = [x for x in (config, models, all_ops) if x]
    if len(chosen) != 1:
        raise OrtpruneError("probe needs exactly one of --config, --models or --all")
    if config:
        chosen_config = OpConfig.load(config)
        chosen_config.require_ops(config)
        return list(chosen_config)
    if models:
        from ortprune.scan import scan

        return list(scan(models, level).config)
    return all_known_ops()
