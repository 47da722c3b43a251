"""The build stage's result: the manifest written next to every built library."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ortprune._io import atomic_write_text, json_text
from ortprune.errors import BuildError


@dataclass
class BuildResult:
    """The manifest of one build (JSON next to the library)."""

    ort_version: str
    variant: str
    key: str
    build_py_args: list[str]
    extra_flags: list[str]
    config_hash: str | None
    config: str | None
    compiler: str
    cmake: str
    source: str
    build_dir: str
    library: str
    library_bytes: int
    needed: list[str]
    wall_time_s: float  # summed over every run that worked on this build (resumed builds add up)
    runs: list[dict[str, object]] = field(default_factory=list)  # {"started", "seconds", "steps"} per run
    steps: int = 0  # ninja steps of the whole build (the first run's count when it was resumed)
    finished: str = ""
    wheel_file: str | None = None
    prune: list[str] = field(default_factory=list)  # source-transform levers (ortbuild.prune)
    keep_transformers: list[str] = field(default_factory=list)
    stripped_library: str | None = None  # `strip --strip-all` copy: the file a user ships
    stripped_bytes: int | None = None
    source_id: str = ""  # content hash of the source and its dependencies (part of the key)
    toolchain: str = ""  # compiler and CMake versions (part of the key)
    toolchain_name: str = "gcc"  # catalog.TOOLCHAINS (--toolchain)
    fetched_from: str | None = None  # the artifact store it came from, when it was not built here
    target: str | None = None  # a cross build's target (linux-aarch64); None: built for the build machine

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildResult:
        """The manifest from its JSON form; a ValueError names a field whose value is not of its declared
        type (a hand-edited or damaged manifest stops here, not as a crash where the field is used)."""
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        hints = typing.get_type_hints(cls)
        for name, value in d.items():
            if name in hints and not _is(value, hints[name]):
                raise ValueError(f"field {name!r} must be {_name(hints[name])}, got {value!r:.80}")
        return cls(**d)

    def save(self, path: Path) -> Path:
        return atomic_write_text(path, json_text(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: Path) -> BuildResult:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as e:
            raise BuildError(f"not a build manifest: {e}", path) from None


def _is(value: Any, hint: Any) -> bool:
    """``value`` (from JSON) fits the type annotation ``hint`` (str, int, float, bool, None, lists, dicts,
    unions, object). Hand-written: the manifest's dataclass is the schema, no validation library needed."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_is(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and _is(v, args[1]) for k, v in value.items())
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    return hint in (object, Any)


def _name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


@dataclass
class MeasuredBuild:
    """One row of the measured-builds page (``ortprune results``): a finished build, how to name it, the
    command that reproduces it, and its size after ``strip``."""

    build: BuildResult
    label: str
    command: str
    stripped_bytes: int | None
    config_file: str | None = None  #: the name its config is shown under

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "build": self.build.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MeasuredBuild:
        return cls(**{**d, "build": BuildResult.from_dict(d["build"])})
