"""Benchmark: `ortprune size` on the onnxruntime wheel's libonnxruntime.so (target: < 10 s).

Writes bench/results/size.json: wall time of the CLI (a fresh process, as a user runs it), in-process time per
attribution mode, and pyelftools reading the same tables (the measured reason for the struct reader).

    .venv/bin/python bench/bench_size.py [LIB] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ortprune._io import atomic_write_text
from ortprune.analyze import analyze
from ortprune.analyze.builds import find_builds
from ortprune.platform import machine_info

RESULTS = Path(__file__).parent / "results" / "size.json"


def wheel_library() -> Path:
    import onnxruntime

    libs = sorted((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so*"))
    if not libs:
        raise SystemExit("the onnxruntime wheel has no libonnxruntime.so")
    return libs[0]


def _times(fn: object, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(samples), 4), "max_s": round(max(samples), 4), "runs": repeat}


def _pyelftools_tables(lib: Path) -> None:
    from elftools.elf.elffile import ELFFile

    with open(lib, "rb") as f:
        elf = ELFFile(f)
        sizes = [s["sh_size"] for s in elf.iter_sections()]
        table = elf.get_section_by_name(".symtab") or elf.get_section_by_name(".dynsym")
        syms = [(s.name, s["st_size"]) for s in table.iter_symbols()] if table is not None else []
        assert sizes and syms is not None


def bench_one(lib: Path, repeat: int) -> dict[str, object]:
    exe = Path(sys.executable).with_name("ortprune")
    cli = [str(exe), "size", str(lib), "--format", "json"]
    report = analyze(lib, "section")
    assert report.total == report.file_size, "labels must sum to the file size"
    modes = ("section", "symbol", "op", "dir")
    result: dict[str, object] = {
        "library": str(lib),
        "file_size": report.file_size,
        "symbol_table": report.symbol_table,
        "debug_info": report.debug_info,
        "labels_sum_to_file_size": all(analyze(lib, by).total == report.file_size for by in modes),
        "cli": {
            "command": " ".join(["ortprune", *cli[1:]]),
            **_times(lambda: subprocess.run(cli, check=True, capture_output=True), repeat),
        },
        "in_process": {by: _times(lambda by=by: analyze(lib, by), repeat) for by in modes},
        "pyelftools_sections_and_symbols": _times(lambda: _pyelftools_tables(lib), repeat),
    }
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("libs", nargs="*", type=Path, help="more libraries (default: the wheel's, plus ORT builds)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    builds = [b.library for b in find_builds("1.21.0")]
    libs = [wheel_library(), *builds, *args.libs]
    runs = [bench_one(lib, args.repeat) for lib in libs]
    wheel = runs[0]
    result = {
        "benchmark": "ortprune size",
        "target_s": 10.0,
        "wheel_cli_max_s": wheel["cli"]["max_s"],  # type: ignore[index]
        "under_target": all(r["cli"]["max_s"] < 10.0 for r in runs),  # type: ignore[index]
        "runs": runs,
        "machine": machine_info(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
