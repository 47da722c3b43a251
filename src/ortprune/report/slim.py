"""report.md and report.json for a slim run: the seed's table, op origins, verification, savings.

Reads the typed results only (``ortprune.results``)."""

from __future__ import annotations

from ortprune._io import atomic_write_text, json_text
from ortprune.catalog import VARIANTS, variant
from ortprune.report.size import variants_markdown
from ortprune.report.table import Column, Table
from ortprune.results import ConvertedModel, DiffRow, MiB, ModelVerdict, Shipped, SlimResult


def _num(x: float | None, fmt: str) -> str:
    return "" if x is None else format(x, fmt)


def _build_options(res: SlimResult) -> list[str]:
    """One line per pruned build made with options beyond its variant's (slim --extra/--prune/--toolchain)."""
    lines = []
    for name, b in res.builds.items():
        opts = [f"--extra={e}" for e in b.build.extra_flags]
        own = variant(name).prune if name in VARIANTS else ()
        levers = [p for p in b.build.prune if p not in own]
        opts += [f"--prune {','.join(levers)}"] if levers else []
        opts += [f"--toolchain {b.build.toolchain_name}"] if b.build.toolchain_name != "gcc" else []
        if name != res.reference and opts:
            lines.append(f"- `{name}` built with {' '.join(f'`{o}`' for o in opts)}")
    return [*lines, ""] if lines else []


def render_markdown(res: SlimResult) -> str:
    scan = res.scan
    ref = res.builds[res.reference].build
    against = (
        f"the official ONNX Runtime {ref.ort_version} release library ({ref.source})"
        if res.reference == "official"
        else f"the full ONNX Runtime {ref.ort_version} library built MinSizeRel"
    )
    lines = [
        "# ortprune slim report",
        "",
        f"Models ({len(scan.models)}), optimization level `{scan.optimization_level}` "
        f"(optimizer: onnxruntime {scan.onnxruntime_version}); pruned builds: ONNX Runtime {ref.ort_version} "
        f"MinSizeRel shared libraries, verified against and measured from {against}. "
        f"Verdict: **{'verified' if res.ok else 'NOT verified'}**.",
        "",
        *_build_options(res),
        "## Size",
        "",
    ]
    sizes = res.sizes
    if sizes is not None:
        lines += variants_markdown(sizes.table).splitlines()
        lines += ["", *[f"![{c}]({c})" for c in sizes.charts if c.endswith(".png")], ""]
    lines += shipped_markdown(res)
    lines += [
        "## Operators",
        "",
        f"Config: `{res.config_path.name}`, the union over the models. `optimizer`: added by ORT's graph "
        "optimizer at load time; `both`: in the file and kept by the optimizer; `model`: in the file only.",
        "",
    ]
    ops = Table[tuple[str, tuple[set[str], list[str]]]](
        [
            Column("op (domain;opset;op)", lambda r: r[0]),
            Column("from", lambda r: "/".join(sorted(r[1][0]))),
            Column("models", lambda r: ", ".join(r[1][1])),
        ],
        sorted(scan.op_origins().items()),
    )
    lines += ops.markdown().splitlines()
    lines += ["", "## Verification", ""]
    for v, p in res.probes.items():
        c = p.counts()
        lines.append(
            f"- probe `{v}`: {c['implemented']} implemented, {c['missing']} missing, "
            f"{c['could-not-probe']} could not be probed (of {len(p.results)} config ops)"
        )
    lines.append("")
    verdicts = Table[tuple[str, ModelVerdict]](
        [
            Column("variant", lambda r: r[0]),
            Column("model", lambda r: r[1].model.rsplit("/", 1)[-1]),
            Column("status", lambda r: r[1].status),
            Column("max abs diff", lambda r: _num(r[1].max_abs_diff, ".2e")),
            Column("min cosine", lambda r: _num(r[1].min_cosine, ".7f")),
            Column("pruned ms", lambda r: f"{r[1].pruned_ms or 0:.1f}"),
            Column(f"{res.reference} ms", lambda r: f"{r[1].reference_ms or 0:.1f}"),
            Column("fix", lambda r: r[1].fix or ""),
            Column("inputs", lambda r: r[1].inputs),
        ],
        [(v, m) for v, rep in res.verifies.items() for m in rep.models],
    )
    lines += verdicts.markdown().splitlines()
    if res.embeds:
        lines += ["", f"Embeddings through `ortprune.embed` (pruned vs {res.reference} library):", ""]
        embeds = Table(
            [
                Column("model @ variant", lambda r: r[0]),
                Column("max abs diff", lambda r: f"{r[1].max_abs_diff:.2e}"),
                Column("min cosine", lambda r: f"{r[1].min_cosine:.7f}"),
            ],
            list(res.embeds.items()),
        )
        lines += embeds.markdown().splitlines()
    if res.consumers:
        from ortprune.report.consumers import consumers_markdown

        lines += ["", "## Who can load it", ""]
        for v, found in res.consumers.items():
            lines += [f"### {v}", "", *consumers_markdown(found), ""]
    lines += ["", "## Where the savings come from", ""]
    for v, d in (sizes.savings_by_op if sizes else {}).items():
        lines += [f"### {res.reference} → {v}: {d.delta:+,} bytes", ""]
        changed = d.changed()
        for title, label_rows in (
            ("By operator (bytes of symbols named after the op):", [r for r in changed if r.kind == "op"]),
            ("By label (sections and code no single op owns included):", changed),
        ):
            saved = Table[DiffRow](
                [
                    Column("label", lambda r: r.name),
                    Column("kind", lambda r: r.kind),
                    Column(res.reference, lambda r: f"{r.old:,}", right=True),
                    Column(v, lambda r: f"{r.new:,}", right=True),
                    Column("saved", lambda r: f"{-r.delta:,}", right=True),
                ],
                [r for r in label_rows if r.delta < 0][:15],
            )
            lines += [title, "", *saved.markdown().splitlines(), ""]
    lines += ["By source directory: needs a build with debug info (DWARF); these builds have symbols only.", ""]
    lines += [f"- {n}" for n in (sizes.notes if sizes else [])]
    lines += ["", "## Stages", ""]
    stages = Table(
        [Column("stage", lambda r: r[0]), Column("seconds", lambda r: f"{r[1]:.1f}", right=True)],
        list(res.stage_seconds.items()),
    )
    lines += stages.markdown().splitlines()
    lines += [
        "",
        f"`libonnxruntime.so` in this directory is the `{res.exported}` build: "
        "use it with `ORT_DYLIB_PATH` (fastembed-rs `ort-load-dynamic`) or `ortprune.runtime`.",
        "",
    ]
    return "\n".join(lines)


def shipped_markdown(res: SlimResult) -> list[str]:
    """What each variant ships (stripped library + models + tokenizer files), smallest first, the
    recommendation and the ORT-format conversions behind the minimal variant."""
    if not res.shipped:
        return []
    lines = ["## Shipped footprint (library + models + tokenizer)", ""]
    shipped = Table[Shipped](
        [
            Column("variant", lambda s: s.variant),
            Column("library", lambda s: f"{s.library_bytes:,}", right=True),
            Column("library stripped", lambda s: f"{s.library_stripped_bytes:,}", right=True),
            Column("models", lambda s: f"{s.model_bytes:,}", right=True),
            Column("tokenizer", lambda s: f"{s.tokenizer_bytes:,}", right=True),
            Column("shipped", lambda s: f"**{s.total:,}**", right=True),
            Column("shipped MiB", lambda s: f"{s.total / MiB:.2f}", right=True),
            Column("verified", lambda s: "yes" if s.verified else "no"),
        ],
        res.shipped,
    )
    lines += shipped.markdown().splitlines()
    rec = res.recommended
    lines += [
        "",
        f"Recommended: **{rec}** (smallest shipped total that verified)."
        if rec
        else "No variant verified: nothing to recommend.",
        "",
    ]
    lines += [f"![{c}]({c})" for c in (res.sizes.shipped_charts if res.sizes else []) if c.endswith(".png")]
    if res.converted:
        lines += ["", "ORT-format models (made by the full build; shipped with the minimal variant):", ""]
        converted = Table[ConvertedModel](
            [
                Column("model", lambda c: c.name),
                Column(".onnx bytes", lambda c: f"{c.source_bytes:,}", right=True),
                Column(".ort bytes", lambda c: f"{c.ort_bytes:,}", right=True),
                Column("ratio", lambda c: f"{c.ratio:.2f}x", right=True),
                Column("quantized weights kept", lambda c: "yes" if c.keep_quantized else "no"),
            ],
            res.converted,
        )
        lines += converted.markdown().splitlines()
    return [*lines, ""]


def write_report(res: SlimResult) -> None:
    atomic_write_text(res.out / "report.json", json_text(res.to_dict(), indent=2))
    atomic_write_text(res.out / "report.md", render_markdown(res))
