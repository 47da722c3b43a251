"""The reference graph of a library: its sized symbols (aliases merged) and anonymous data pieces as nodes,
code and relocation references as edges, exported and table-referenced symbols as roots; and the one
search over it (:func:`flood`) that the estimate and the per-op costs share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ortprune.analyze.attribute import SizedSymbol
from ortprune.analyze.decode import code_refs, imported_functions, indirections, reloc_refs
from ortprune.elf import SHF_EXECINSTR, STT_FUNC, STT_OBJECT, ElfFile


@dataclass
class RefGraph:
    starts: np.ndarray  # node start addresses (sorted, unique)
    ends: np.ndarray
    file_sizes: np.ndarray
    is_data: np.ndarray
    names: list[list[SizedSymbol]]
    edges: tuple[np.ndarray, np.ndarray]
    roots: np.ndarray  # bool per node
    rela: np.ndarray  # bool per edge: the reference is a RELA dynamic relocation (24 bytes of .rela.dyn)
    imports: dict[str, np.ndarray]  # imported function → the nodes whose code calls or loads it

    def calls(self, name: str) -> np.ndarray:
        """Bool per node: its code references the imported function ``name`` (through the PLT or the GOT)."""
        out = np.zeros(len(self.starts), dtype=bool)
        out[self.imports.get(name, np.zeros(0, np.int64))] = True
        return out

    def adjacency(self, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The edges (those marked in ``keep``, else all) as CSR: successors of node i are
        ``targets[offsets[i]:offsets[i + 1]]``."""
        src, dst = self.edges
        if keep is not None:
            src, dst = src[keep], dst[keep]
        order = np.argsort(src, kind="stable")
        return np.searchsorted(src[order], np.arange(len(self.starts) + 1)), dst[order]


def _nodes(syms: list[SizedSymbol]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[list[SizedSymbol]]]:
    by_start: dict[int, list[SizedSymbol]] = {}
    for s in syms:
        by_start.setdefault(s.addr, []).append(s)
    keys = sorted(by_start)
    starts = np.array(keys, dtype=np.int64)
    ends = np.array([k + max(s.end - s.start for s in by_start[k]) for k in keys], dtype=np.int64)
    fsz = np.array([max(s.end - s.start for s in by_start[k]) for k in keys], dtype=np.int64)
    # Data objects, and the cold parts of split functions (``foo.cold``), are entered anywhere, not only
    # at their start: references inside them count.
    data = np.array(
        [
            all(s.sym.type == STT_OBJECT or ".cold" in s.sym.name or ".warm" in s.sym.name for s in by_start[k])
            for k in keys
        ],
        dtype=bool,
    )
    return starts, ends, fsz, data, [by_start[k] for k in keys]


def node_at(starts: np.ndarray, ends: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """Node containing each address, or -1."""
    i = np.searchsorted(starts, addrs, side="right") - 1
    ok = (i >= 0) & (addrs < ends[np.maximum(i, 0)])
    return np.where(ok, i, -1)


def _target(starts: np.ndarray, ends: np.ndarray, is_data: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """Node a reference lands on: exactly a node start, or anywhere inside a data object; else -1."""
    j = np.searchsorted(starts, addrs, side="left")
    jc = np.minimum(j, len(starts) - 1)
    exact = (j < len(starts)) & (starts[jc] == addrs)
    inside = node_at(starts, ends, addrs)
    into_data = (inside >= 0) & is_data[np.maximum(inside, 0)]
    return np.where(exact, jc, np.where(into_data, inside, -1))


_DATA_PREFIXES = (".rodata", ".data.rel.ro", ".data", ".lrodata", ".ldata")


def _anonymous_chunks(
    elf: ElfFile, starts: np.ndarray, ends: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pieces of data sections that no symbol covers but code or relocations point at (string literals,
    jump tables, constant pools): each runs from a referenced address to the next reference or symbol."""
    out_lo, out_hi = [], []
    sym_bounds = np.concatenate([starts, ends])
    for sec in elf.sections:
        if not (sec.alloc and sec.file_size and not sec.flags & SHF_EXECINSTR and sec.name.startswith(_DATA_PREFIXES)):
            continue
        lo, hi = sec.addr, sec.addr + sec.file_size
        t = targets[(targets >= lo) & (targets < hi)]
        t = np.unique(t[node_at(starts, ends, t) < 0])
        if not len(t):
            continue
        bounds = np.unique(np.concatenate([t, sym_bounds[(sym_bounds > lo) & (sym_bounds <= hi)], [hi]]))
        nxt = bounds[np.searchsorted(bounds, t, side="right")]
        out_lo.append(t)
        out_hi.append(nxt)
    if not out_lo:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_lo), np.concatenate(out_hi)


def build_graph(elf: ElfFile, syms: list[SizedSymbol]) -> RefGraph:
    starts, ends, fsz, is_data, names = _nodes(syms)
    rel_where, rel_to, rela_entries = reloc_refs(elf)
    indirect = indirections(elf, rel_where, rel_to)
    code_where, code_to = code_refs(elf)
    imported = imported_functions(elf)
    import_refs: list[tuple[str, int]] = []
    if imported:
        addrs = np.array(sorted(imported), dtype=np.int64)
        hit = np.isin(code_to, addrs)
        import_refs = list(zip([imported[a] for a in code_to[hit].tolist()], code_where[hit].tolist(), strict=True))
    if indirect:
        keys = np.array(sorted(indirect), dtype=np.int64)
        vals = np.array([indirect[k] for k in keys.tolist()], dtype=np.int64)
        j = np.minimum(np.searchsorted(keys, code_to), len(keys) - 1)
        code_to = np.where(keys[j] == code_to, vals[j], code_to)
        in_got = np.isin(rel_where, keys)
        rel_where, rel_to = rel_where[~in_got], rel_to[~in_got]
    # Anonymous data becomes nodes too, so a string only a removed kernel uses goes with it.
    chunk_lo, chunk_hi = _anonymous_chunks(elf, starts, ends, np.concatenate([code_to, rel_to]))
    if len(chunk_lo):
        order = np.argsort(np.concatenate([starts, chunk_lo]), kind="stable")
        starts = np.concatenate([starts, chunk_lo])[order]
        ends = np.concatenate([ends, chunk_hi])[order]
        fsz = np.concatenate([fsz, chunk_hi - chunk_lo])[order]
        is_data = np.concatenate([is_data, np.ones(len(chunk_lo), dtype=bool)])[order]
        all_names: list[list[SizedSymbol]] = names + [[] for _ in range(len(chunk_lo))]
        names = [all_names[i] for i in order.tolist()]
    roots = np.zeros(len(starts), dtype=bool)
    exported = {s.value for s in elf.symbols("dynsym") if s.size and s.type in (STT_FUNC, STT_OBJECT)}
    roots[np.isin(starts, np.array(sorted(exported), dtype=np.int64))] = True
    src_parts, dst_parts, rela_parts = [], [], []
    rela_where = np.array(sorted(w for w, _ in rela_entries), dtype=np.int64)
    for where, to, is_rel in ((code_where, code_to, False), (rel_where, rel_to, True)):
        if not len(where):
            continue
        src = node_at(starts, ends, where)
        dst = _target(starts, ends, is_data, to)
        keep = dst >= 0
        src, dst = src[keep], dst[keep]
        roots[dst[src < 0]] = True  # referenced from bytes no symbol owns: init arrays, anonymous tables, crt code
        inner = src >= 0
        src_parts.append(src[inner])
        dst_parts.append(dst[inner])
        rela_parts.append(np.isin(where[keep][inner], rela_where) if is_rel else np.zeros(int(inner.sum()), bool))
    src_all = np.concatenate(src_parts) if src_parts else np.zeros(0, np.int64)
    dst_all = np.concatenate(dst_parts) if dst_parts else np.zeros(0, np.int64)
    rela_all = np.concatenate(rela_parts) if rela_parts else np.zeros(0, bool)
    by_import: dict[str, list[int]] = {}
    if import_refs:
        at = node_at(starts, ends, np.array([w for _, w in import_refs], dtype=np.int64))
        for (name, _), node in zip(import_refs, at.tolist(), strict=True):
            if node >= 0:
                by_import.setdefault(name, []).append(node)
    imports = {k: np.unique(np.array(v, dtype=np.int64)) for k, v in by_import.items()}
    return RefGraph(starts, ends, fsz, is_data, names, (src_all, dst_all), roots, rela_all, imports)


def reach(g: RefGraph, deleted: np.ndarray, cut: np.ndarray | None = None) -> np.ndarray:
    """Nodes the roots reach when the registration tables no longer point at ``deleted`` nodes and the
    edges marked in ``cut`` (a mask over ``g.edges``: references a source transform removes) are gone.

    Only references *from data* (the tables) into a deleted node are cut: code that jumps into it (a
    kept registration folded onto a dropped one by identical-code folding) still reaches it.
    """
    src, dst = g.edges
    keep = ~(deleted[dst] & g.is_data[src])
    if cut is not None:
        keep &= ~cut
    seen = np.zeros(len(g.starts), dtype=bool)

    def enter(i: int) -> bool:
        if seen[i]:
            return False
        seen[i] = True
        return True

    flood(g.adjacency(keep), np.flatnonzero(g.roots & ~deleted).tolist(), enter)
    return seen


def flood(adjacency: tuple[np.ndarray, np.ndarray], starts: list[int], enter: Callable[[int], bool]) -> None:
    """The one graph search: depth-first from ``starts``; ``enter(i)`` marks node ``i`` and says whether to go
    on into its successors (so callers decide what a visit means: reached, or owned by which op)."""
    offsets, dst = adjacency
    stack = list(starts)
    while stack:
        i = stack.pop()
        if enter(i):
            stack.extend(dst[offsets[i] : offsets[i + 1]].tolist())
