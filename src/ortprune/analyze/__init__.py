"""ELF size analysis: every byte of a library labelled once (by section, symbol, op, source file or dir),
diffs between builds, the shipped footprint, and an estimate of a reduced build from a full one."""

from ortprune.analyze.attribute import BY, analyze
from ortprune.analyze.diff import SizeDiff, diff_reports
from ortprune.results.size import Footprint, Label, SizeReport

__all__ = ["BY", "Footprint", "Label", "SizeDiff", "SizeReport", "analyze", "diff_reports"]
