"""Property: whatever ranges a data source claims, painting covers every byte exactly once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ortprune.analyze.attribute import Painter, Piece

ranges = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 80), st.sampled_from("abcd")), max_size=40)


@given(ranges, st.integers(0, 100), st.integers(0, 300))
def test_paint_covers_each_byte_once(raw: list[tuple[int, int, str]], lo: int, width: int) -> None:
    hi = lo + width
    pieces = sorted((Piece(s, s + n, label, "symbol") for s, n, label in raw), key=lambda p: p.start)
    painter = Painter()
    painter.paint(pieces, lo, hi, ("[rest]", "section"))
    assert painter.painted == hi - lo
    # first claim wins: recompute byte by byte
    owner: dict[int, str] = {}
    for p in pieces:
        for b in range(max(p.start, lo), min(p.end, hi)):
            owner.setdefault(b, p.label)
    expected: dict[str, int] = {}
    for b in range(lo, hi):
        label = owner.get(b, "[rest]")
        expected[label] = expected.get(label, 0) + 1
    assert {name: size for (name, _), (size, _) in painter.sizes.items()} == expected


# ---- corrupted files: a clear ElfError or a correct report, never a crash ----------------------------
import random  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from ortprune.analyze import analyze  # noqa: E402
from ortprune.elf import ElfFile  # noqa: E402
from ortprune.errors import ElfError  # noqa: E402


@pytest.mark.parametrize("seed", range(40))
def test_corrupted_headers_fail_cleanly(seed: int, miniort: Path, tmp_path: Path) -> None:
    data = bytearray(miniort.read_bytes())
    with ElfFile(miniort) as elf:
        regions = [(0, 64), (elf.shoff, elf.shnum * elf.shentsize), (elf.phoff, elf.phnum * elf.phentsize)]
    rng = random.Random(seed)
    start, length = regions[seed % len(regions)]
    for _ in range(1 + seed % 5):
        data[start + rng.randrange(length)] = rng.randrange(256)
    bad = tmp_path / "corrupt.so"
    bad.write_bytes(bytes(data))
    for by in ("section", "symbol", "op"):
        try:
            report = analyze(bad, by)
        except ElfError as e:
            assert str(bad) in str(e)
        else:
            assert report.total == report.file_size
