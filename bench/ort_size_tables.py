"""Write docs/results/ tables for the ORT builds in ~/.cache/ortprune/builds, by running the ortprune
commands a user would run (each file records the exact command line that produced it).

    .venv/bin/python bench/ort_size_tables.py [--version 1.21.0]
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ortprune._io import atomic_write_text
from ortprune.analyze.builds import find_builds
from ortprune.cache import cache_dir

ROOT = Path(__file__).resolve().parents[1]


def _portable(text: str) -> str:
    """No machine paths in committed pages: the home directory as ~, a venv's site-packages as <site-packages>."""
    return re.sub(r"[^\s`'\"|]*/site-packages/", "<site-packages>/", _portable(text))


def _run(args: list[str]) -> tuple[str, str, float]:
    exe = str(Path(sys.executable).with_name("ortprune"))
    start = time.perf_counter()
    proc = subprocess.run([exe, *args], capture_output=True, text=True, check=True)
    shown = _portable(shlex.join(["ortprune", *args]))
    return _portable(proc.stdout), shown, time.perf_counter() - start


def _doc(title: str, cmd: str, seconds: float, body: str, extra: str = "") -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"# {title}\n\nMade {when} with ({seconds:.1f} s):\n\n```bash\n{cmd}\n```\n\n{extra}{body}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", default="1.21.0")
    args = ap.parse_args()
    out = ROOT / "docs" / "results"
    builds = find_builds(args.version)
    libs = {b.name: b.library for b in builds}
    if "full" not in libs:
        raise SystemExit(f"no full build of {args.version} in {cache_dir('builds')}")
    paths = [str(b.library) for b in builds]

    named = [a for b in builds for a in ("--name", b.name)]
    body, cmd, secs = _run(["size", *paths, *named, "--format", "markdown", "--top", "25"])
    atomic_write_text(
        out / f"ort-{args.version}-sizes.md",
        _doc(f"ORT {args.version} MinSizeRel shared library: sizes per build", cmd, secs, body),
    )
    body, cmd, secs = _run(["size", str(libs["full"]), "--by", "op", "--format", "markdown", "--top", "0"])
    note = (
        "Bytes attributed to each operator by symbol name (its kernel registrations and the classes named "
        "like it in its domain's namespace). Shared code (MLAS, framework, helpers) is not attributed to any "
        "op, so a row is a lower bound of what removing that op saves; `ortprune estimate` gives the "
        "removable bytes of a whole config.\n\n"
    )
    atomic_write_text(
        out / f"ort-{args.version}-size-by-op.md",
        _doc(f"ORT {args.version} full build: bytes per operator", cmd, secs, body, note),
    )
    body, cmd, secs = _run(["estimate", "--full", str(libs["full"]), "--per-op"])
    note = (
        "What dropping each single operator removes, from the reference graph of the full build (see "
        "`src/ortprune/analyze/estimate.py`): code and data only that op's kernels reach.\n\n"
    )
    atomic_write_text(
        out / f"ort-{args.version}-op-costs.md",
        _doc(f"ORT {args.version} full build: removable bytes per operator", cmd, secs, body, note),
    )
    summary = ["| Reduced build | Config | Real (bytes) | Estimate (bytes) | Error |", "|---|---|---:|---:|---:|"]
    sections = []
    for red in [b for b in builds if b.variant == "reduced" and b.config is not None]:
        assert red.config is not None
        full, config = str(libs["full"]), str(red.config)
        est = json.loads(_run(["estimate", "--full", full, "--config", config, "-f", "json"])[0])
        body, cmd, secs = _run(["estimate", "--full", full, "--config", config])
        real = red.library.stat().st_size
        err = 100 * (est["estimated_size"] - real) / real
        first = next((line for line in red.config.read_text().splitlines() if line.startswith("#")), "")
        summary.append(
            f"| `{red.library.parents[1].name}` | {first.lstrip('# ')[:70]} | {real:,} | "
            f"{est['estimated_size']:,} | {err:+.2f}% |"
        )
        diff, dcmd, _ = _run(["size", "diff", full, str(red.library), "-f", "markdown"])
        config_text = _portable(red.config.read_text())
        sections.append(
            f"## `{red.library.parents[1].name}`\n\n```bash\n{cmd}\n```\n\n({secs:.1f} s) Config:\n\n```\n"
            f"{config_text}```\n\n{body}\n### What actually changed\n\n```bash\n{dcmd}\n```\n\n{diff}"
        )
    if sections:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        text = (
            f"# ORT {args.version}: estimate of each reduced build vs the real one\n\nMade {when} by "
            "`bench/ort_size_tables.py` (target: within 5%).\n\n" + "\n".join(summary) + "\n\n" + "\n".join(sections)
        )
        atomic_write_text(out / f"ort-{args.version}-estimate.md", _portable(text))
    print("\n".join(str(p) for p in sorted(out.glob(f"ort-{args.version}-*.md"))))


if __name__ == "__main__":
    main()
