"""The verify stage's results: which ops a library implements (probe), and whether models give the same
outputs on it as on a reference (verify)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ortprune._io import atomic_write_text, json_text

IMPLEMENTED, MISSING, UNKNOWN = "implemented", "missing", "could-not-probe"
PROBE_STATUSES = (IMPLEMENTED, MISSING, UNKNOWN)


@dataclass
class ProbeResult:
    op: str  # "domain;opset;Op"
    status: str
    element_type: str | None = None
    detail: str = ""


@dataclass
class ProbeReport:
    library: str
    library_version: str
    results: list[ProbeResult] = field(default_factory=list)

    def by_status(self, status: str) -> list[ProbeResult]:
        return [r for r in self.results if r.status == status]

    def counts(self) -> dict[str, int]:
        return {s: len(self.by_status(s)) for s in PROBE_STATUSES}

    @property
    def ok(self) -> bool:
        return not self.by_status(MISSING)

    def to_dict(self) -> dict[str, Any]:
        return {
            "library": self.library,
            "library_version": self.library_version,
            "counts": self.counts(),
            "results": [asdict(r) for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeReport:
        return cls(d["library"], d["library_version"], [ProbeResult(**r) for r in d["results"]])

    def write_json(self, path: str | Path) -> None:
        atomic_write_text(path, json_text(self.to_dict(), indent=2))


@dataclass
class OutputDiff:
    name: str
    shape: list[int]
    max_abs_diff: float
    min_row_cosine: float
    ok: bool


@dataclass
class ModelVerdict:
    model: str
    status: str  # "ok", "differs", "missing-op", "cannot-load", "cannot-run"
    detail: str = ""
    #: who failed for cannot-load / cannot-run: "model" (the file), "inputs" (none could be made),
    #: "reference" (the reference library) or "pruned" (the library under test)
    side: str | None = None
    missing_op: str | None = None
    fix: str | None = None  # the config line that would make the pruned library load the model
    outputs: list[OutputDiff] = field(default_factory=list)
    pruned_ms: float | None = None
    reference_ms: float | None = None
    #: the feeds both libraries ran: "given", "file (<model>.inputs.npz)", "tokenizer" or "generated
    #: (...)", with each input's type and shape
    inputs: str = ""

    @property
    def max_abs_diff(self) -> float | None:
        return max((o.max_abs_diff for o in self.outputs), default=None)

    @property
    def min_cosine(self) -> float | None:
        return min((o.min_row_cosine for o in self.outputs), default=None)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVerdict:
        return cls(**{**d, "outputs": [OutputDiff(**o) for o in d.get("outputs", [])]})


@dataclass
class VerifyReport:
    pruned: str
    reference: str
    optimization_level: str
    tolerance: float
    models: list[ModelVerdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(m.status == "ok" for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VerifyReport:
        return cls(
            d["pruned"],
            d["reference"],
            d["optimization_level"],
            d["tolerance"],
            [ModelVerdict.from_dict(m) for m in d["models"]],
        )

    def write_json(self, path: str | Path) -> None:
        atomic_write_text(path, json_text(self.to_dict(), indent=2))
