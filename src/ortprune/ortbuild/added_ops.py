"""Ops ORT's own build adds to every reduced config (ORT source knowledge the build and the estimate share)."""

from __future__ import annotations

import re
from pathlib import Path

from ortprune.errors import OrtpruneError
from ortprune.opconfig import DOMAINS

#: Ops ORT's reduce_op_kernels.py adds to every config of a build that is not a (basic) minimal build:
#: the layout transformer and NHWC optimizer may insert them (``layout_transformation_potentially_added_ops.h``,
#: region ``extended_minimal_build_required_kernels``; ORT 1.21.0). ``ort_added_ops(source)`` reads another
#: version's list.
ORT_ADDED_OPS: tuple[tuple[str, str, int], ...] = tuple(
    [("ai.onnx", "DequantizeLinear", v) for v in (10, 13, 19, 21)]
    + [("ai.onnx", "Gather", v) for v in (1, 11, 13)]
    + [("ai.onnx", "Identity", v) for v in (1, 13, 14, 16, 19, 21)]
    + [("ai.onnx", "QuantizeLinear", v) for v in (10, 13, 19, 21)]
    + [("ai.onnx", "Squeeze", v) for v in (1, 11, 13, 21)]
    + [("ai.onnx", "Transpose", v) for v in (1, 13, 21)]
    + [("ai.onnx", "Unsqueeze", v) for v in (1, 11, 13, 21)]
    + [("com.microsoft", op, 1) for op in ("DequantizeLinear", "NhwcMaxPool", "QLinearConv", "QuantizeLinear")]
)


def ort_added_ops(source: str | Path) -> tuple[tuple[str, str, int], ...]:
    """The ops an ORT source tree's reduce_op_kernels.py adds to every config (see ORT_ADDED_OPS)."""
    header = (
        Path(source) / "onnxruntime/core/optimizer/layout_transformation/layout_transformation_potentially_added_ops.h"
    )
    try:
        text = header.read_text()
    except OSError:
        raise OrtpruneError(
            "not an ONNX Runtime source tree (no layout_transformation_potentially_added_ops.h)", source
        ) from None
    region = text.split("@@region_begin(extended_minimal_build_required_kernels)@@", 1)[-1]
    region = region.split("@@region_end(extended_minimal_build_required_kernels)@@", 1)[0]
    pattern = r'OpIdentifierWithStringViews{(\w+),\s+"(\w+)",\s+(\d+)}'
    return tuple((DOMAINS[d], op, int(v)) for d, op, v in re.findall(pattern, region) if d in DOMAINS)
