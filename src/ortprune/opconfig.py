"""OpConfig: the data model of ORT's reduced-build config (``build.py --include_ops_by_config``).

The grammar is the one ``tools/python/util/reduced_build_config_parser.py`` accepts:

    # comment
    domain;opset[,opset...];Op1,Op2{"inputs": {"0": ["float"]}},Op3
    !globally_allowed_types;float,int64_t
    !no_ops_specified_means_all_ops_are_required

Unlike ORT's parser, repeated entries for the same op *union* their type info instead of replacing it
(ORT issue #16742), so merging configs never drops a type a model needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ortprune._args import path_arg
from ortprune._io import atomic_write_text
from ortprune.errors import ArgumentTypeError, ArgumentValueError, ConfigError

#: Operator domains ORT registers kernels for (``tools/ci_build/op_registration_utils.py``), public names.
#: ORT's domain constants (``core/graph/constants.h``) → public domain names.
DOMAINS: dict[str, str] = {
    "kOnnxDomain": "ai.onnx",
    "kMLDomain": "ai.onnx.ml",
    "kMSDomain": "com.microsoft",
    "kMSNchwcDomain": "com.microsoft.nchwc",
    "kMSInternalNHWCDomain": "com.ms.internal.nhwc",
    "kMSExperimentalDomain": "com.microsoft.experimental",
    "kMSDmlDomain": "com.microsoft.dml",
    "kPytorchAtenDomain": "org.pytorch.aten",
}

KNOWN_DOMAINS: frozenset[str] = frozenset(
    {
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.training",
        "ai.onnx.preview.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.experimental",
        "com.microsoft.dml",
        "com.ms.internal.nhwc",
        "org.pytorch.aten",
        "com.intel.ai",
        "com.xilinx",
    }
)

#: C++ type names ORT's config uses for tensor element types (``ort_format_model/types.py``).
CPP_TYPES: frozenset[str] = frozenset(
    {
        "float",
        "double",
        "MLFloat16",
        "BFloat16",
        "int8_t",
        "int16_t",
        "int32_t",
        "int64_t",
        "uint8_t",
        "uint16_t",
        "uint32_t",
        "uint64_t",
        "bool",
        "std::string",
        "Float8E4M3FN",
        "Float8E4M3FNUZ",
        "Float8E5M2",
        "Float8E5M2FNUZ",
    }
)


#: ORT's config grammar: an op name is a C identifier (its generators write ``OpSchema`` names), a
#: domain a dotted name, an opset a positive decimal no larger than any ONNX / ORT opset could be.
OP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DOMAIN_NAME = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
MAX_OPSET = 1000
#: Characters ``str.splitlines`` (and so a config reader) treats as line ends: never inside a comment.
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def check_op(domain: str, opset: int, op: str) -> None:
    """ArgumentValueError (a ValueError) unless (domain, opset, op) can be written as a config line ORT
    parses back the same."""
    if not isinstance(domain, str) or not DOMAIN_NAME.fullmatch(domain):
        raise ArgumentValueError(f"invalid domain name {domain!r}")
    if isinstance(opset, bool) or not isinstance(opset, int) or not 1 <= opset <= MAX_OPSET:
        raise ArgumentValueError(f"opset must be an integer from 1 to {MAX_OPSET}, got {opset!r}")
    if not isinstance(op, str) or not OP_NAME.fullmatch(op):
        raise ArgumentValueError(f"invalid operator name {op!r} (ORT's config takes C identifiers)")


def escape_comment(text: str) -> str:
    """A header comment that cannot break out of its line (a file name may hold a newline)."""
    return _LINE_BREAKS.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def normalize_domain(domain: str) -> str:
    """ONNX spells the default domain as ''; ORT's config calls it 'ai.onnx'."""
    return domain or "ai.onnx"


@dataclass(frozen=True, order=True)
class OpId:
    """One operator at one opset of its domain: the unit of a config line."""

    domain: str
    opset: int
    op: str

    def __str__(self) -> str:
        return f"{self.domain};{self.opset};{self.op}"


@dataclass
class OpTypes:
    """Per-op type info: element types per input/output index, or ORT's 'custom' tuples (OneHot)."""

    inputs: dict[int, set[str]] = field(default_factory=dict)
    outputs: dict[int, set[str]] = field(default_factory=dict)
    custom: set[tuple[str, ...]] = field(default_factory=set)

    def update(self, other: OpTypes) -> None:
        for mine, theirs in ((self.inputs, other.inputs), (self.outputs, other.outputs)):
            for idx, types in theirs.items():
                mine.setdefault(idx, set()).update(types)
        self.custom.update(other.custom)

    def is_empty(self) -> bool:
        return not any(self.inputs.values()) and not any(self.outputs.values()) and not self.custom

    def to_json(self) -> str:
        """The same JSON ORT's ``to_config_entry`` writes (sorted indices and types)."""
        if self.custom:
            return json.dumps({"custom": sorted(list(t) for t in self.custom)})
        info: dict[str, dict[int, list[str]]] = {}
        for key, table in (("inputs", self.inputs), ("outputs", self.outputs)):
            entries = {i: sorted(t) for i, t in sorted(table.items()) if t}
            if entries:
                info[key] = entries
        return json.dumps(info)

    @classmethod
    def from_json(cls, text: str) -> OpTypes:
        """ORT's per-op type info; ArgumentValueError (a ValueError) for anything ORT's parser would not take."""
        if not isinstance(text, str):
            raise ArgumentTypeError(f"type info must be JSON text, got {type(text).__name__}")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise ArgumentValueError(f"type info is not JSON: {e}") from None
        if not isinstance(data, dict) or not set(data) <= {"inputs", "outputs", "custom"}:
            raise ArgumentValueError('type info must be an object with keys "inputs", "outputs" or "custom"')
        result = cls()
        for key, table in (("inputs", result.inputs), ("outputs", result.outputs)):
            entries = data.get(key, {})
            if not isinstance(entries, dict):
                raise ArgumentValueError(f'"{key}" must be an object of index → list of type names')
            for idx, types in entries.items():
                if not (isinstance(idx, str) and idx.isascii() and idx.isdigit()):
                    raise ArgumentValueError(f'"{key}" index must be a non-negative integer, got {idx!r}')
                if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                    raise ArgumentValueError(f"{key}[{idx}] must be a list of type names")
                unknown = sorted(set(types) - CPP_TYPES)
                if unknown:
                    raise ArgumentValueError(f"{key}[{idx}]: unknown type name(s) {unknown}")
                table[int(idx)] = set(types)
        custom = data.get("custom", [])
        if not isinstance(custom, list) or not all(
            isinstance(t, list) and all(isinstance(x, str) for x in t) for t in custom
        ):
            raise ArgumentValueError('"custom" must be a list of lists of type names')
        for triple in custom:
            result.custom.add(tuple(triple))
        return result

    def copy(self) -> OpTypes:
        new = OpTypes()
        new.update(self)
        return new


@dataclass
class OpConfig:
    """Required operators (domain → opset → op names), with optional per-op type info."""

    ops: dict[str, dict[int, set[str]]] = field(default_factory=dict)
    types: dict[tuple[str, str], OpTypes] = field(default_factory=dict)
    globally_allowed_types: frozenset[str] | None = None
    no_ops_means_all: bool = False
    comments: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """A config built by hand holds what the grammar can carry, or ArgumentTypeError/ValueError says why."""
        if not isinstance(self.ops, dict):
            raise ArgumentTypeError(f"OpConfig.ops must be a dict domain -> opset -> set of ops, got "
                                    f"{type(self.ops).__name__}")  # fmt: skip
        for domain, by_opset in self.ops.items():
            if not isinstance(by_opset, dict):
                raise ArgumentTypeError(f"OpConfig.ops[{domain!r}] must be a dict opset -> set of ops")
            for opset, names in by_opset.items():
                if not isinstance(names, set | frozenset):
                    raise ArgumentTypeError(f"OpConfig.ops[{domain!r}][{opset!r}] must be a set of op names")
                for op in names:
                    check_op(domain, opset, op)
        if not isinstance(self.types, dict) or not all(
            isinstance(k, tuple) and isinstance(v, OpTypes) for k, v in self.types.items()
        ):
            raise ArgumentTypeError("OpConfig.types must be a dict (domain, op) -> OpTypes")
        if self.globally_allowed_types is not None:
            if isinstance(self.globally_allowed_types, str) or not all(
                isinstance(t, str) for t in self.globally_allowed_types
            ):
                raise ArgumentTypeError("OpConfig.globally_allowed_types must be a set of type names or None")
            unknown = sorted(set(self.globally_allowed_types) - CPP_TYPES)
            if unknown:
                raise ArgumentValueError(f"unknown type name(s) {unknown} in globally_allowed_types")
        if not isinstance(self.comments, list) or not all(isinstance(c, str) for c in self.comments):
            raise ArgumentTypeError("OpConfig.comments must be a list of str")

    # ---- construction ---------------------------------------------------------------------------
    def add(self, domain: str, opset: int, op: str, types: OpTypes | None = None) -> None:
        """Add one op; ConfigError for a name or opset ORT's config grammar cannot carry."""
        if not isinstance(domain, str):
            raise ConfigError(f"invalid domain name {domain!r}")
        if types is not None and not isinstance(types, OpTypes):
            raise ArgumentTypeError(f"types must be an OpTypes or None, got {type(types).__name__}")
        domain = normalize_domain(domain)
        try:
            check_op(domain, opset, op)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.ops.setdefault(domain, {}).setdefault(int(opset), set()).add(op)
        if types is not None and not types.is_empty():
            self.types.setdefault((domain, op), OpTypes()).update(types)

    @classmethod
    def from_ids(cls, ids: Iterable[OpId]) -> OpConfig:
        config = cls()
        for i in ids:
            config.add(i.domain, i.opset, i.op)
        return config

    # ---- queries --------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[OpId]:
        for domain in sorted(self.ops):
            for opset in sorted(self.ops[domain]):
                for op in sorted(self.ops[domain][opset]):
                    yield OpId(domain, opset, op)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, OpId):
            return False
        return item.op in self.ops.get(item.domain, {}).get(item.opset, set())

    def op_names(self) -> set[tuple[str, str]]:
        """(domain, op) pairs regardless of opset."""
        return {(i.domain, i.op) for i in self}

    def has_type_info(self) -> bool:
        return any(not t.is_empty() for t in self.types.values())

    def unknown_ops(self) -> list[OpId]:
        """The ops no schema known here defines at their opset (ONNX's; ORT's own when onnxruntime is
        installed): a reduced build keeps no kernel for them. Ops of a domain with no schemas here are not
        judged."""
        from ortprune.schemas import domain_has_schemas, get_schema

        return [i for i in self if domain_has_schemas(i.domain) and get_schema(i.domain, i.op, i.opset) is None]

    def require_ops(self, source: str | Path | None = None) -> None:
        """ConfigError unless the config names at least one operator a schema knows: an empty, comment-only
        or unknown-op-only config would give a library (or a probe, an estimate) that runs no model."""
        ids = list(self)
        if not ids:
            hint = (
                " (its !no_ops_specified_means_all_ops_are_required keeps every op: use --variant full)"
                if self.no_ops_means_all
                else " (`ortprune scan MODEL -o ops.config` writes one)"
            )
            raise ConfigError(f"the config names no operator, so it keeps no kernel{hint}", source)
        unknown = self.unknown_ops()
        if len(unknown) == len(ids):
            names = ", ".join(str(i) for i in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise ConfigError(
                f"no operator of the config is known to ONNX or ONNX Runtime at its opset ({names}), "
                "so it keeps no kernel",
                source,
            )

    # ---- algebra --------------------------------------------------------------------------------
    def copy(self) -> OpConfig:
        return OpConfig(
            ops={d: {o: set(s) for o, s in m.items()} for d, m in self.ops.items()},
            types={k: v.copy() for k, v in self.types.items()},
            globally_allowed_types=self.globally_allowed_types,
            no_ops_means_all=self.no_ops_means_all,
            comments=list(self.comments),
        )

    @classmethod
    def merge(cls, *configs: OpConfig) -> OpConfig:
        """Union of ops, opsets and type info (types are unioned per op, never replaced)."""
        result = cls()
        allowed: set[str] | None = None
        for config in configs:
            _config_arg(config, "merge")
            for i in config:
                result.add(i.domain, i.opset, i.op)
            for key, types in config.types.items():
                result.types.setdefault(key, OpTypes()).update(types)
            if config.globally_allowed_types is not None:
                allowed = (allowed or set()) | set(config.globally_allowed_types)
            result.no_ops_means_all |= config.no_ops_means_all
        result.globally_allowed_types = None if allowed is None else frozenset(allowed)
        return result

    def __or__(self, other: OpConfig) -> OpConfig:
        return OpConfig.merge(self, _config_arg(other, "|"))

    def diff(self, other: OpConfig) -> ConfigDiff:
        """What ``other`` adds to and removes from ``self`` (per domain, opset and op)."""
        mine, theirs = set(self), set(_config_arg(other, "diff"))
        return ConfigDiff(added=sorted(theirs - mine), removed=sorted(mine - theirs))

    def covers(self, required: OpConfig) -> list[OpId]:
        """The ops of ``required`` (e.g. a model's scan) this config would not keep a kernel for.

        ORT keeps a kernel registration when some opset listed for the op falls inside the
        registration's [since, until] range. Registrations follow the op's schema versions, so a
        listed opset serves a required one when both resolve to the same schema version.
        """
        from ortprune.schemas import since_version

        _config_arg(required, "covers")
        missing = []
        for need in required:
            listed = [o for o, ops in self.ops.get(need.domain, {}).items() if need.op in ops]
            want = since_version(need.domain, need.op, need.opset)
            if not any(o == need.opset or since_version(need.domain, need.op, o) == want for o in listed):
                missing.append(need)
        return missing

    # ---- text -----------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, source: str | Path | None = None) -> OpConfig:
        if not isinstance(text, str):
            raise ArgumentTypeError(f"OpConfig.parse takes the config text (str), got {type(text).__name__}")
        config = cls()
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            try:
                config._parse_line(line)
            except (ValueError, RecursionError, ConfigError) as e:  # JSONDecodeError is a ValueError
                raise ConfigError(f"{e} in line {line[:200]!r}", source, lineno) from None
        if config.globally_allowed_types is not None and config.has_type_info():
            raise ConfigError("globally allowed types and per-op type info cannot be combined (ORT rejects it)", source)
        return config

    def _parse_line(self, line: str) -> None:
        if not line:
            return
        if line.startswith("#"):
            self.comments.append(line[1:].strip())
            return
        if line.startswith("!globally_allowed_types;"):
            if self.globally_allowed_types is not None:
                raise ArgumentValueError("globally allowed types were already specified")
            types = {t.strip() for t in line.split(";", 1)[1].split(",") if t.strip()}
            unknown = types - CPP_TYPES
            if unknown:
                raise ArgumentValueError(f"unknown type name(s) {sorted(unknown)}")
            self.globally_allowed_types = frozenset(types)
            return
        if line == "!no_ops_specified_means_all_ops_are_required":
            self.no_ops_means_all = True
            return
        if line.startswith("!"):
            raise ArgumentValueError("unknown directive")
        fields = [f.strip() for f in line.split(";")] if "{" not in line else _split_op_line(line)
        if len(fields) != 3:
            raise ArgumentValueError(f"expected 'domain;opset;Op1,Op2' (3 fields separated by ';'), got {len(fields)}")
        domain, opsets_text, ops_text = fields
        if domain not in KNOWN_DOMAINS:
            raise ArgumentValueError(f"unknown domain {domain!r} (known: {', '.join(sorted(KNOWN_DOMAINS))})")
        parts = [p.strip() for p in opsets_text.split(",")]
        if not all(p.isascii() and p.isdigit() for p in parts):
            raise ArgumentValueError(f"opset must be a comma-separated list of integers, got {opsets_text!r}")
        opsets = [int(p) for p in parts]
        if any(not 1 <= o <= MAX_OPSET for o in opsets):
            raise ArgumentValueError(f"opset must be from 1 to {MAX_OPSET}, got {opsets_text!r}")
        entries = list(_split_ops(ops_text))
        if not entries:
            raise ArgumentValueError("no operators listed")
        for op, type_json in entries:
            if not OP_NAME.fullmatch(op):
                raise ArgumentValueError(f"invalid operator name {op!r}")
            op_types = OpTypes.from_json(type_json) if type_json else None
            for opset in opsets:
                self.add(domain, opset, op, op_types)

    def format(self, header: Iterable[str] | None = None) -> str:
        """The config text; byte-compatible with what ORT's generators write."""
        lines = [f"# {escape_comment(c)}" if c else "#" for c in (self.comments if header is None else header)]
        if self.no_ops_means_all:
            lines.append("!no_ops_specified_means_all_ops_are_required")
        if self.globally_allowed_types is not None:
            lines.append("!globally_allowed_types;" + ",".join(sorted(self.globally_allowed_types)))
        for domain in sorted(self.ops):
            for opset in sorted(self.ops[domain]):
                names = sorted(self.ops[domain][opset])
                if not names:
                    continue
                rendered = []
                for op in names:
                    t = self.types.get((domain, op))
                    rendered.append(op + (t.to_json() if t is not None and not t.is_empty() else ""))
                lines.append(f"{domain};{opset};{','.join(rendered)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> OpConfig:
        path = path_arg(path, "path")
        try:
            if path.exists() and not path.is_file():
                raise ConfigError("is not a regular file; expected an ops.config text file", path)
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("config file does not exist", path) from None
        except UnicodeDecodeError:
            raise ConfigError("config file is not UTF-8 text", path) from None
        except OSError as e:
            raise ConfigError(f"cannot read the config: {e.strerror or e}", path) from None
        return cls.parse(text, path)

    def save(self, path: str | Path, header: Iterable[str] | None = None) -> Path:
        return atomic_write_text(path_arg(path, "path"), self.format(header))

    # ---- interop with ORT's own parser ----------------------------------------------------------
    def to_ort_required_ops(self) -> dict[str, dict[int, set[str]]]:
        """The ``required_ops`` dict ORT's ``parse_config`` returns for this config."""
        return {d: {o: set(s) for o, s in m.items() if s} for d, m in self.ops.items()}

    def to_json_dict(self) -> dict[str, object]:
        return {
            "ops": [str(i) for i in self],
            "types": {f"{d}:{o}": json.loads(t.to_json()) for (d, o), t in sorted(self.types.items())},
            "globally_allowed_types": None
            if self.globally_allowed_types is None
            else sorted(self.globally_allowed_types),
            "no_ops_means_all": self.no_ops_means_all,
        }


def _config_arg(value: object, where: str) -> OpConfig:
    if not isinstance(value, OpConfig):
        raise ArgumentTypeError(f"OpConfig {where} takes OpConfig objects, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class ConfigDiff:
    added: list[OpId]
    removed: list[OpId]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def format(self) -> str:
        return "".join([f"+ {i}\n" for i in self.added] + [f"- {i}\n" for i in self.removed])


def _split_op_line(line: str) -> list[str]:
    """Split on the first two ';' only: JSON type info may not contain ';' but be defensive."""
    parts = line.split(";", 2)
    return [p.strip() for p in parts]


def _split_ops(text: str) -> Iterator[tuple[str, str | None]]:
    """Yield (op, json-or-None) from 'A,B{...},C', matching braces as ORT's parser does."""
    cur, end = 0, len(text)
    while cur < end:
        comma = text.find(",", cur)
        brace = text.find("{", cur)
        if comma == -1:
            comma = end
        if brace != -1 and brace < comma:
            depth, i = 0, brace
            while i < end:
                if text[i] == "{":
                    depth += 1
                elif text[i] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            if depth != 0:
                raise ArgumentValueError("unbalanced '{' in type info")
            yield text[cur:brace].strip(), text[brace : i + 1]
            cur = i + 1
            if cur < end:
                if text[cur] != ",":
                    raise ArgumentValueError(f"expected ',' after type info, got {text[cur]!r}")
                cur += 1
        else:
            name = text[cur:comma].strip()
            if name:
                yield name, None
            elif comma != end or cur != end:
                raise ArgumentValueError("empty operator name")
            cur = comma + 1
