"""The typed results the stages hand down and the report reads: below both the pipeline and the report.

Data only (dataclasses with ``to_dict``/``from_dict``); nothing here runs a stage.
"""

from ortprune.results.build import BuildResult, MeasuredBuild
from ortprune.results.scan import ConfigSummary, ModelOps, OpRow, ScanReport, TransformerUse
from ortprune.results.size import (
    DiffRow,
    Footprint,
    FootprintEntry,
    Label,
    LabelSize,
    MiB,
    SectionInfo,
    Shipped,
    ShippedFile,
    SizeDiff,
    SizeReport,
    SizeSummary,
    VariantRow,
)
from ortprune.results.slim import ConvertedModel, EmbedCheck, SlimBuild, SlimResult
from ortprune.results.verify import ModelVerdict, OutputDiff, ProbeReport, ProbeResult, VerifyReport

__all__ = [
    "BuildResult",
    "ConfigSummary",
    "ConvertedModel",
    "DiffRow",
    "EmbedCheck",
    "Footprint",
    "FootprintEntry",
    "Label",
    "LabelSize",
    "MeasuredBuild",
    "MiB",
    "ModelOps",
    "ModelVerdict",
    "OpRow",
    "OutputDiff",
    "ProbeReport",
    "ProbeResult",
    "ScanReport",
    "SectionInfo",
    "Shipped",
    "ShippedFile",
    "SizeDiff",
    "SizeReport",
    "SizeSummary",
    "SlimBuild",
    "SlimResult",
    "TransformerUse",
    "VariantRow",
    "VerifyReport",
]
