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
