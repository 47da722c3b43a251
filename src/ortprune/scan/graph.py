"""Walk an ONNX model's graph, subgraphs and model-local functions into an OpConfig."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from ortprune.errors import ModelError
from ortprune.opconfig import KNOWN_DOMAINS, OpConfig, OpId, check_op, normalize_domain
from ortprune.scan import types as typeinfo
from ortprune.schemas import _ort_schemas, get_schema, latest_opset

#: Domains whose every op a schema library here knows (ONNX's always; ORT's when onnxruntime is installed).
_ONNX_DOMAINS = ("ai.onnx", "ai.onnx.ml")


@dataclass
class GraphOps:
    """The operators one model file needs, as written in the file."""

    config: OpConfig
    opsets: dict[str, int]
    node_counts: Counter[OpId] = field(default_factory=Counter)
    functions: list[str] = field(default_factory=list)
    #: domains used by nodes but missing from opset_import, with the opset ORT assumes for them
    assumed_opsets: dict[str, int] = field(default_factory=dict)


def _iter_nodes(
    nodes: Iterable[onnx.NodeProto], opsets: dict[str, int], where: str
) -> Iterator[tuple[onnx.NodeProto, dict[str, int], str]]:
    for node in nodes:
        yield node, opsets, where
        for attr in node.attribute:
            sub = where + f"/{node.name or node.op_type}.{attr.name}"
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _iter_nodes(attr.g.node, opsets, sub)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for k, g in enumerate(attr.graphs):
                    yield from _iter_nodes(g.node, opsets, f"{sub}[{k}]")


def walk_nodes(model: onnx.ModelProto) -> Iterator[tuple[onnx.NodeProto, dict[str, int], str]]:
    """Every node of the main graph, of every subgraph (GRAPH/GRAPHS attributes) and of every local
    function body, with the opsets in force for it and where it sits."""
    opsets = {normalize_domain(o.domain): o.version for o in model.opset_import}
    yield from _iter_nodes(model.graph.node, opsets, "graph")
    for f in model.functions:
        fopsets = dict(opsets)
        fopsets.update({normalize_domain(o.domain): o.version for o in f.opset_import})
        yield from _iter_nodes(f.node, fopsets, f"function {f.domain}:{f.name}")


def graph_ops(
    model: onnx.ModelProto,
    path: Path,
    with_types: bool = False,
    initializer_types: dict[str, tuple[int, list[int]]] | None = None,
) -> GraphOps:
    """The ops of ``model``; raises ModelError naming ``path`` for nodes no ORT kernel could serve."""
    opsets = {normalize_domain(o.domain): o.version for o in model.opset_import}
    local = {(normalize_domain(f.domain), f.name) for f in model.functions}
    result = GraphOps(config=OpConfig(), opsets=opsets, functions=sorted(f"{d}:{n}" for d, n in local))
    kernel_nodes = []
    for node, node_opsets, where in walk_nodes(model):
        domain = normalize_domain(node.domain)
        if (domain, node.op_type) in local:
            continue  # a call of a model-local function: ORT inlines its body, which we walk separately
        if domain not in KNOWN_DOMAINS:
            raise ModelError(
                f"node {node.name or node.op_type!r} in {where} uses unknown domain {domain!r}: "
                f"ONNX Runtime has no kernels for it (a custom-op library would be needed)",
                path,
            )
        if domain not in node_opsets:
            # ORT loads such models (onnxruntime.transformers.optimizer writes them) by assuming the
            # newest opset it knows for the domain; ORT's own config script silently skips these nodes.
            assumed = latest_opset(domain)
            if assumed is None:
                raise ModelError(
                    f"node {node.name or node.op_type!r} ({domain}:{node.op_type}) in {where} uses domain "
                    f"{domain!r}, which the model does not import",
                    path,
                )
            node_opsets = {**node_opsets, domain: assumed}
            result.assumed_opsets[domain] = assumed
        op = OpId(domain, node_opsets[domain], node.op_type)
        _check_node(op, node, where, path)
        result.config.add(op.domain, op.opset, op.op)
        result.node_counts[op] += 1
        kernel_nodes.append(node)
    if with_types and typeinfo.available():
        elem = typeinfo.value_types(model, initializer_types)
        for key, t in typeinfo.collect_types(kernel_nodes, elem.get).items():
            result.config.types[key] = t
    return result


def ort_graph_ops(path: Path, with_types: bool = False) -> GraphOps:
    """The ops of an ORT-format model, read by ORT's own processor: each op at its kernel's since-version
    (``ai.onnx;15;Shape``), which is what a ``--minimal_build`` config lists; types from ORT's
    OperatorTypeUsageManager when ``with_types``."""
    from ortprune.opconfig import OpTypes
    from ortprune.ortformat import ops_and_types, read_info

    required, manager = ops_and_types(path, with_types)
    info = read_info(path)
    result = GraphOps(config=OpConfig(), opsets=dict(info.opsets))
    for domain, by_opset in required.items():
        for opset, ops in by_opset.items():
            for op in ops:
                types = None
                if manager is not None:
                    entry = manager.get_config_entry(domain, op)
                    types = OpTypes.from_json(entry) if entry else None
                result.config.add(domain, opset, op, types)
    return result


def _check_node(op: OpId, node: onnx.NodeProto, where: str, path: Path) -> None:
    """A node ORT could run and its config can name: a valid op name and opset (ORT's config grammar),
    an opset no newer than the schemas know, and an op some schema defines at that opset."""
    label = f"node {(node.name or node.op_type)[:80]!r} in {where[:200]}"
    try:
        check_op(op.domain, op.opset, op.op)
    except ValueError as e:
        raise ModelError(f"{label}: {e}", path) from None
    newest = latest_opset(op.domain)
    if newest is not None and op.opset > newest:
        raise ModelError(f"{label}: opset {op.opset} of {op.domain!r} is newer than any known ({newest})", path)
    known = op.domain in _ONNX_DOMAINS or (op.domain.startswith("com.microsoft") and bool(_ort_schemas()))
    if known and get_schema(op.domain, op.op, op.opset) is None:
        raise ModelError(f"{label}: no schema defines {op.domain}:{op.op} at opset {op.opset}", path)


def check_structure(model: onnx.ModelProto, initializer_names: Iterable[str], path: Path) -> None:
    """ModelError for a model ONNX Runtime refuses to load (``Graph::Resolve``): a name defined twice, a
    node input nothing defines, a graph output nothing produces, a cycle, a recursive local function.

    The raw scan (level disable) never loads the model in ORT, so it checks here what ORT would.
    Written out rather than ``onnx.checker``: the checker also demands nodes in topological order, which
    ORT does not (it sorts them), and it needs the weights this scan does not read.
    """
    _check_graph(model.graph, set(initializer_names), frozenset(), "graph", path)
    _check_local_functions(model, path)


def _subgraphs(node: onnx.NodeProto) -> Iterator[tuple[str, onnx.GraphProto]]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.name, attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            for k, g in enumerate(attr.graphs):
                yield f"{attr.name}[{k}]", g


def _free_names(graph: onnx.GraphProto) -> set[str]:
    """Names a (sub)graph uses from outer scopes: what it reads minus what it defines."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    defined |= {s.values.name for s in graph.sparse_initializer}
    used: set[str] = {o.name for o in graph.output}
    for node in graph.node:
        defined.update(node.output)
        used.update(node.input)
        for _, sub in _subgraphs(node):
            used |= _free_names(sub)
    return used - defined - {""}


def _check_graph(graph: onnx.GraphProto, initializers: set[str], outer: frozenset[str], where: str, path: Path) -> None:
    inputs = {v.name for v in graph.input}
    initializers = (
        initializers | {t.name for t in graph.initializer} | {s.values.name for s in graph.sparse_initializer}
    )
    producer: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.output:
            if not name:
                continue  # an optional output left out
            if name in producer or name in inputs or name in initializers:
                raise ModelError(
                    f"{where}: duplicate definition of name {name[:200]!r} (ONNX Runtime refuses it)", path
                )
            producer[name] = index
    visible = outer | inputs | initializers | set(producer)
    needs: list[set[int]] = []
    for node in graph.node:
        label = f"node {(node.name or node.op_type)[:80]!r} in {where[:200]}"
        reads = {n for n in node.input if n}
        for _, sub in _subgraphs(node):
            reads |= _free_names(sub)
        for name in sorted(n for n in node.input if n and n not in visible):
            raise ModelError(
                f"{label}: input {name[:200]!r} is not a graph input, initializer or output of a node "
                "(ONNX Runtime refuses it)",
                path,
            )
        needs.append({producer[n] for n in reads if n in producer})
    for out in graph.output:
        if out.name not in visible:
            raise ModelError(
                f"{where}: graph output {out.name[:200]!r} is produced by no node (ONNX Runtime refuses it)", path
            )
    _check_acyclic(graph, needs, where, path)
    for node in graph.node:
        for sub_name, sub in _subgraphs(node):
            sub_where = f"{where}/{node.name or node.op_type}.{sub_name}"
            _check_graph(sub, set(), frozenset(visible), sub_where, path)


def _check_acyclic(graph: onnx.GraphProto, needs: list[set[int]], where: str, path: Path) -> None:
    """Kahn's algorithm over the nodes' data dependencies: what is left unsorted lies on a cycle."""
    waiting = [len(n) for n in needs]
    users: dict[int, list[int]] = {}
    for index, deps in enumerate(needs):
        for d in deps:
            users.setdefault(d, []).append(index)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        for u in users.get(i, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    if done < len(needs):
        stuck = next(i for i, w in enumerate(waiting) if w > 0)
        node = graph.node[stuck]
        raise ModelError(
            f"{where}: the graph has a cycle (through node {(node.name or node.op_type)[:80]!r}; "
            "ONNX Runtime refuses it)",
            path,
        )


def _check_local_functions(model: onnx.ModelProto, path: Path) -> None:
    """A local function that calls itself, directly or through others, cannot be inlined: ORT refuses it."""
    local = {(normalize_domain(f.domain), f.name) for f in model.functions}
    calls: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for f in model.functions:
        key = (normalize_domain(f.domain), f.name)
        called = calls.setdefault(key, set())
        for node, _, _ in _iter_nodes(f.node, {}, ""):
            target = (normalize_domain(node.domain), node.op_type)
            if target in local:
                called.add(target)
    state: dict[tuple[str, str], int] = {}  # 1: on the current path, 2: done

    def visit(key: tuple[str, str], trail: list[tuple[str, str]]) -> None:
        state[key] = 1
        for target in sorted(calls.get(key, ())):
            if state.get(target) == 1:
                cycle = " -> ".join(f"{d}:{n}" for d, n in [*trail[trail.index(target) :], target])
                raise ModelError(
                    f"local functions must not be recursive (ONNX Runtime refuses it): {cycle[:300]}", path
                )
            if target not in state:
                visit(target, [*trail, target])
        state[key] = 2

    for key in sorted(calls):
        if key not in state:
            visit(key, [key])
