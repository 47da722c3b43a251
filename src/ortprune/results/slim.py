"""The pipeline's result: every stage's typed result for one slim run (what report.json holds)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ortprune.results.build import BuildResult
from ortprune.results.scan import ScanReport
from ortprune.results.size import Shipped, SizeSummary
from ortprune.results.verify import ProbeReport, VerifyReport


@dataclass
class SlimBuild:
    """A build as slim used it: its manifest, and the hash of its library (the key of every later stage)."""

    build: BuildResult
    library_sha: str

    @property
    def library(self) -> str:
        return self.build.library

    def to_dict(self) -> dict[str, Any]:
        return self.build.to_dict() | {"library_sha": self.library_sha}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SlimBuild:
        fields = {k: v for k, v in d.items() if k != "library_sha"}
        return cls(BuildResult.from_dict(fields), d["library_sha"])


@dataclass
class ConvertedModel:
    """A model the full build converted to ORT format for the minimal variant, as exported by slim."""

    source: str  #: the .onnx it came from
    ort: str  #: the exported .ort (``out/models/<name>/<stem>.ort``, tokenizer files beside it)
    optimized_onnx: str | None
    ort_version: str
    level: str
    keep_quantized: bool
    source_bytes: int
    ort_bytes: int
    seconds: float
    ratio: float  #: .ort bytes / .onnx bytes
    name: str  #: the directory under out/models

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConvertedModel:
        return cls(**d)


@dataclass
class EmbedCheck:
    """Embeddings through ``ortprune.embed`` on a pruned library vs the full one."""

    max_abs_diff: float
    min_cosine: float
    dim: int


@dataclass
class SlimResult:
    out: Path
    config_path: Path
    scan: ScanReport
    builds: dict[str, SlimBuild] = field(default_factory=dict)
    probes: dict[str, ProbeReport] = field(default_factory=dict)
    verifies: dict[str, VerifyReport] = field(default_factory=dict)
    embeds: dict[str, EmbedCheck] = field(default_factory=dict)
    sizes: SizeSummary | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: ORT-format models made by the full build for the minimal variant, exported beside the library
    converted: list[ConvertedModel] = field(default_factory=list)
    ort_config_path: Path | None = None
    #: per variant: library + models + tokenizer files, smallest total first
    shipped: list[Shipped] = field(default_factory=list)
    #: per variant: which real consumers load its library, and how (``ConsumersReport.to_json_dict``)
    consumers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the build everything was verified against and measured from: "official" (the release library) or "full"
    reference: str = "full"

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.probes.values()) and all(v.ok for v in self.verifies.values())

    @property
    def exported(self) -> str:
        """The variant whose library slim copies into the output directory (the first pruned one)."""
        return next((v for v in self.probes if v != "full"), next(iter(self.probes), self.reference))

    @property
    def recommended(self) -> str | None:
        """The variant with the smallest shipped total (library + models + tokenizer) that verified."""
        return next((s.variant for s in self.shipped if s.verified), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "config": str(self.config_path),
            "scan": self.scan.to_dict(),
            "builds": {v: b.to_dict() for v, b in self.builds.items()},
            "probes": {v: p.to_dict() for v, p in self.probes.items()},
            "verifies": {v: r.to_dict() for v, r in self.verifies.items()},
            "embeddings": {k: asdict(e) for k, e in self.embeds.items()},
            "sizes": {} if self.sizes is None else self.sizes.to_dict(),
            "stage_seconds": self.stage_seconds,
            "converted": [c.to_dict() for c in self.converted],
            "ort_config": None if self.ort_config_path is None else str(self.ort_config_path),
            "shipped": [x.to_dict() for x in self.shipped],
            "recommended": self.recommended,
            "consumers": self.consumers,
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], out: Path) -> SlimResult:
        """Read back a ``report.json`` written into ``out``."""
        return cls(
            out=out,
            config_path=Path(d["config"]),
            scan=ScanReport.from_dict(d["scan"]),
            builds={v: SlimBuild.from_dict(b) for v, b in d["builds"].items()},
            probes={v: ProbeReport.from_dict(p) for v, p in d["probes"].items()},
            verifies={v: VerifyReport.from_dict(r) for v, r in d["verifies"].items()},
            embeds={k: EmbedCheck(**e) for k, e in d["embeddings"].items()},
            sizes=SizeSummary.from_dict(d["sizes"]) if d["sizes"] else None,
            stage_seconds=dict(d["stage_seconds"]),
            converted=[ConvertedModel.from_dict(c) for c in d.get("converted", [])],
            ort_config_path=None if d.get("ort_config") is None else Path(d["ort_config"]),
            shipped=[Shipped.from_dict(x) for x in d.get("shipped", [])],
            consumers=dict(d.get("consumers", {})),
            reference=str(d.get("reference", "full")),
        )
