"""The scan stage's result as the later stages and the report read it: per model, every op with where it
came from (the file, ORT's optimizer, or both), and the merged config."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class OpRow:
    id: str  #: "domain;opset;Op"
    domain: str
    opset: int
    op: str
    origin: str  #: "model", "optimizer" or "both"
    nodes_in_model: int
    nodes_after_optimization: int | None  #: None when the model was not optimized (level disable)


@dataclass
class ModelOps:
    path: str
    opsets: dict[str, int]
    functions: list[str]
    ops: list[OpRow]
    optimizer_only: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelOps:
        return cls(**{**d, "ops": [OpRow(**o) for o in d["ops"]]})


@dataclass
class ConfigSummary:
    """``OpConfig.to_json_dict()``: the ops in ORT's grammar, and the per-op types when scanned with them."""

    ops: list[str]
    types: dict[str, Any]
    globally_allowed_types: list[str] | None
    no_ops_means_all: bool


@dataclass
class ScanReport:
    optimization_level: str
    onnxruntime_version: str | None  #: the ORT whose optimizer ran; None at level disable
    machine: dict[str, Any]
    models: list[ModelOps]
    config: ConfigSummary
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScanReport:
        return cls(
            d["optimization_level"],
            d["onnxruntime_version"],
            d["machine"],
            [ModelOps.from_dict(m) for m in d["models"]],
            ConfigSummary(**d["config"]),
            list(d.get("warnings", [])),
        )

    def op_origins(self) -> dict[str, tuple[set[str], list[str]]]:
        """Per op id over all models: where it came from, and the models (file names) that need it."""
        union: dict[str, tuple[set[str], list[str]]] = {}
        for m in self.models:
            for op in m.ops:
                origins, models = union.setdefault(op.id, (set(), []))
                origins.add(op.origin)
                models.append(m.name)
        return union


@dataclass
class TransformerUse:
    """ORT's graph transformers at one level: those that changed the models' graphs (ORT's log), and the rest."""

    used: list[str]
    unused: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransformerUse:
        return cls(list(d["used"]), list(d["unused"]))
