"""Which of ORT's graph transformers change a model's graph at load: read from ORT's own log.

ORT logs ``GraphTransformer NAME modified: 0|1`` (INFO) for every transformer each time it runs
(``graph_transformer.cc``). A transformer that never logs ``modified: 1`` left the graph as it was, so a build
that does not construct it optimizes the model into the same graph. Run this with the full build of the ORT
version being pruned: another version has other transformers.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ortprune.errors import ModelError, OrtpruneError

_APPLY = re.compile(r"GraphTransformer (\S+) modified: ([01])")


@dataclass
class TransformerLog:
    """Per transformer name: whether it modified any model's graph (in any of its runs)."""

    ran: dict[str, bool] = field(default_factory=dict)

    @property
    def used(self) -> tuple[str, ...]:
        return tuple(sorted(n for n, m in self.ran.items() if m))

    @property
    def unused(self) -> tuple[str, ...]:
        return tuple(sorted(n for n, m in self.ran.items() if not m))

    def add(self, log_text: str) -> None:
        for name, modified in _APPLY.findall(log_text):
            self.ran[name] = self.ran.get(name, False) or modified == "1"


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Collect what native code writes to fd 2 (ORT's default log sink is std::cerr)."""
    out: list[str] = []
    sys.stderr.flush()
    with tempfile.TemporaryFile() as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            out.append(f.read().decode("utf-8", errors="replace"))


def transformer_log(models: Iterable[Path], lib: str | Path | None, level: str = "all") -> TransformerLog:
    """Load each model in ``lib`` at ``level`` with INFO logging and collect the transformers' reports."""
    from ortprune.runtime import Session

    log = TransformerLog()
    for model in models:
        with _captured_stderr() as text:
            try:
                Session(model, lib, optimization_level=level, log_level="info").close()
            except OrtpruneError as e:
                raise ModelError(f"ONNX Runtime could not load the model: {e}", model) from None
        log.add(text[0])
        if not _APPLY.search(text[0]) and level != "disable":
            raise OrtpruneError(
                f"ONNX Runtime ({lib or 'default'}) logged no graph transformer at level {level!r}: "
                "cannot tell which ones the model needs",
                model,
            )
    return log


#: Session config key that disables transformers and rewrite rules by name (``;``-separated).
DISABLE_KEY = "optimization.disable_specified_optimizers"


def optimized_bytes(model: Path, lib: str | Path | None, level: str, disabled: Iterable[str], tmp: Path) -> bytes:
    """The graph ORT saves after optimizing ``model`` (the .onnx with its weights), in canonical form
    (``canonical_model_bytes``), for byte comparison."""
    from ortprune.runtime import Session
    from ortprune.scan.optimize import _SAVE_CONFIG

    tmp.mkdir()
    config = dict(_SAVE_CONFIG)
    if disabled:
        config[DISABLE_KEY] = ";".join(disabled)
    Session(
        model,
        lib,
        optimization_level=level,
        log_level="error",
        optimized_model_path=tmp / "optimized.onnx",
        config=config,
    ).close()
    return canonical_model_bytes(tmp / "optimized.onnx")


def canonical_model_bytes(path: Path) -> bytes:
    """A saved model's bytes with its weights inlined and every graph in a canonical form.

    Two sessions of one ORT build can save the same optimized graph differently (seen with
    NchwcTransformer on PP-OCR's Conv nets): independent branches in another topological order, and the
    names it generates (``reorder_token_110``, ``ReorderOutput_token_213``) numbered in that order. So the
    canonical form keeps only what the graph computes: the model's inputs and outputs by name, weights by
    content, every other tensor and node renamed in a topological order that depends on ops, attributes and
    (already canonical) inputs alone. Equal bytes mean the same computation on the same weights.
    """
    import onnx

    m = onnx.load(str(path), load_external_data=True)
    _canonical_graph(m.graph, {})
    return m.SerializeToString(deterministic=True)


def _canonical_graph(g: Any, outer: dict[str, str], prefix: str = "") -> None:
    import heapq

    import onnx

    names = dict(outer)
    names.update({i.name: i.name for i in g.input})
    keep = {o.name for o in g.output}
    seen: dict[str, int] = {}
    tensors = list(g.initializer)
    digests = [_tensor_digest(t) for t in tensors]  # the data itself is replaced by it
    for i in sorted(range(len(tensors)), key=lambda i: (digests[i], tensors[i].name)):
        t, d = tensors[i], digests[i]
        seen[d] = seen.get(d, 0) + 1
        if t.name not in names:  # an initializer that is also a graph input keeps its name
            names[t.name] = f"{prefix}w:{d}:{seen[d]}"
        t.name = names[t.name]
    inits = sorted(g.initializer, key=lambda t: t.name)

    nodes = list(g.node)
    produced = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps = [{produced[x] for x in (*n.input, *_subgraph_refs(n)) if x in produced} for n in nodes]
    users: dict[int, list[int]] = {}
    for i, needed in enumerate(deps):
        for j in needed:
            users.setdefault(j, []).append(i)
    waiting = [len(needed) for needed in deps]

    def key(i: int) -> tuple[str, ...]:
        n = nodes[i]
        attrs = b"".join(a.SerializeToString(deterministic=True) for a in n.attribute if not _is_graph(a))
        return (n.domain, n.op_type, hashlib.sha256(attrs).hexdigest(), *(names.get(x, x) for x in n.input))

    ready = [(key(i), i) for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    out: list[onnx.NodeProto] = []
    while ready:
        _, i = heapq.heappop(ready)
        c = len(out)
        node = onnx.NodeProto()
        node.CopyFrom(nodes[i])
        node.name = f"{prefix}n{c}"
        del node.input[:], node.output[:]
        node.input.extend(names.get(x, x) for x in nodes[i].input)
        for k, o in enumerate(nodes[i].output):
            if o:
                names[o] = o if o in keep else f"{prefix}v{c}.{k}"
            node.output.append(names[o] if o else "")
        for a in node.attribute:
            if a.HasField("g"):
                _canonical_graph(a.g, names, f"{node.name}/{a.name}/")
            for s, sub in enumerate(a.graphs):
                _canonical_graph(sub, names, f"{node.name}/{a.name}{s}/")
            if a.HasField("t"):
                _inline(a.t)
            for t in a.tensors:
                _inline(t)
        out.append(node)
        for j in users.get(i, []):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, (key(j), j))
    if len(out) != len(nodes):  # a cycle: not a valid graph; compare it as saved
        return
    for v in g.value_info:
        v.name = names.get(v.name, v.name)
    infos = sorted(g.value_info, key=lambda v: v.name)
    for repeated, items in ((g.node, out), (g.initializer, inits), (g.value_info, infos)):
        del repeated[:]
        repeated.extend(items)


def _is_graph(a: Any) -> bool:
    return bool(a.HasField("g") or len(a.graphs))


def _subgraph_refs(n: Any) -> set[str]:
    """Every name the nodes inside ``n``'s subgraphs read (outer-scope values among them)."""
    refs: set[str] = set()
    for a in n.attribute:
        for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            for inner in sub.node:
                refs.update(inner.input)
                refs |= _subgraph_refs(inner)
    return refs


#: TensorProto fields that hold data; a canonical tensor keeps a digest of them instead (no copies of weights).
_DATA_FIELDS = ("raw_data", "float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")


def _tensor_digest(t: Any) -> str:
    """A tensor's content (type, shape, data), not its name; its data is replaced by the digest."""
    h = hashlib.sha256(repr((t.data_type, list(t.dims))).encode())
    h.update(t.raw_data)
    for f in _DATA_FIELDS[1:]:
        h.update(repr(list(getattr(t, f))).encode())
    for f in _DATA_FIELDS:
        t.ClearField(f)
    _inline(t)
    digest = h.hexdigest()[:32]
    t.raw_data = digest.encode()
    return digest


def _inline(t: Any) -> None:
    """Loaded external data leaves ``data_location`` explicitly DEFAULT: the same tensor as never set."""
    import onnx

    if t.data_location == onnx.TensorProto.DEFAULT:
        t.ClearField("data_location")


def changed_by_disabling(
    models: Iterable[Path], lib: str | Path | None, disabled: Iterable[str], level: str = "all"
) -> list[Path]:
    """The models whose optimized graph (saved model and weights, byte for byte) differs when ``disabled``
    transformers are switched off: [] proves a build without them optimizes these models identically."""
    disabled = tuple(disabled)
    changed = []
    with tempfile.TemporaryDirectory(prefix="ortprune-tf-") as tmp:
        for i, model in enumerate(models):
            a = optimized_bytes(model, lib, level, (), Path(tmp) / f"{i}-all")
            b = optimized_bytes(model, lib, level, disabled, Path(tmp) / f"{i}-pruned")
            if a != b:
                changed.append(model)
    return changed
