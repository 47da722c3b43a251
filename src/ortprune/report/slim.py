"""report.md and report.json for a slim run: the seed's table, op origins, verification, savings."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ortprune._io import atomic_write_text
from ortprune.analyze.model import MiB
from ortprune.report.size import VariantRow, variants_markdown

if TYPE_CHECKING:
    from ortprune.slim import SlimResult


def _table(head: list[str], rows: list[list[Any]], align: str = "") -> list[str]:
    sep = [("---:" if a == "r" else "---") for a in (align or "l" * len(head))]
    return ["| " + " | ".join(head) + " |", "| " + " | ".join(sep) + " |"] + [
        "| " + " | ".join(str(c) for c in r) + " |" for r in rows
    ]


def render_markdown(res: SlimResult) -> str:
    scan = res.scan
    lines = [
        "# ortprune slim report",
        "",
        f"Models ({len(scan['models'])}), optimization level `{scan['optimization_level']}` "
        f"(optimizer: onnxruntime {scan['onnxruntime_version']}), ONNX Runtime "
        f"{res.builds['full']['ort_version']} built MinSizeRel as a shared library. "
        f"Verdict: **{'verified' if res.ok else 'NOT verified'}**.",
        "",
        "## Size",
        "",
    ]
    rows = [VariantRow(r["name"], r["path"], r["size"], r["baseline"], r["footprint"]) for r in res.sizes["table"]]
    lines += variants_markdown(rows).splitlines()
    lines += ["", *[f"![{c}]({c})" for c in res.sizes["charts"] if c.endswith(".png")], ""]
    lines += shipped_markdown(res)
    lines += [
        "## Operators",
        "",
        f"Config: `{res.config_path.name}`, the union over the models. `optimizer`: added by ORT's graph "
        "optimizer at load time; `both`: in the file and kept by the optimizer; `model`: in the file only.",
        "",
    ]
    union: dict[str, dict[str, Any]] = {}
    for m in scan["models"]:
        for op in m["ops"]:
            entry = union.setdefault(op["id"], {"origins": set(), "models": []})
            entry["origins"].add(op["origin"])
            entry["models"].append(m["path"].rsplit("/", 1)[-1])
    op_rows = [[k, "/".join(sorted(v["origins"])), ", ".join(v["models"])] for k, v in sorted(union.items())]
    lines += _table(["op (domain;opset;op)", "from", "models"], op_rows)
    lines += ["", "## Verification", ""]
    for v, p in res.probes.items():
        c = p["counts"]
        lines.append(
            f"- probe `{v}`: {c['implemented']} implemented, {c['missing']} missing, "
            f"{c['could-not-probe']} could not be probed (of {len(p['results'])} config ops)"
        )
    lines.append("")
    vrows = []
    for v, rep in res.verifies.items():
        for m in rep["models"]:
            mad = max((o["max_abs_diff"] for o in m["outputs"]), default=None)
            cos = min((o["min_row_cosine"] for o in m["outputs"]), default=None)
            vrows.append(
                [
                    v,
                    m["model"].rsplit("/", 1)[-1],
                    m["status"],
                    "" if mad is None else f"{mad:.2e}",
                    "" if cos is None else f"{cos:.7f}",
                    f"{m['pruned_ms'] or 0:.1f}",
                    f"{m['reference_ms'] or 0:.1f}",
                    m.get("fix") or "",
                ]
            )
    lines += _table(["variant", "model", "status", "max abs diff", "min cosine", "pruned ms", "full ms", "fix"], vrows)
    if res.embeds:
        lines += ["", "Embeddings through `ortprune.embed` (pruned vs full library):", ""]
        lines += _table(
            ["model @ variant", "max abs diff", "min cosine"],
            [[k, f"{e['max_abs_diff']:.2e}", f"{e['min_cosine']:.7f}"] for k, e in res.embeds.items()],
        )
    lines += ["", "## Where the savings come from", ""]
    for v, d in res.sizes["savings_by_op"].items():
        lines += [f"### full → {v}: {d['delta']:+,} bytes", ""]
        for title, label_rows in (
            ("By operator (bytes of symbols named after the op):", [r for r in d["rows"] if r["kind"] == "op"]),
            ("By label (sections and code no single op owns included):", d["rows"]),
        ):
            top = [r for r in label_rows if r["delta"] < 0][:15]
            lines += [title, ""]
            lines += _table(
                ["label", "kind", "full", v, "saved"],
                [[r["name"], r["kind"], f"{r['old']:,}", f"{r['new']:,}", f"{-r['delta']:,}"] for r in top],
                "llrrr",
            )
            lines.append("")
    lines += ["By source directory: needs a build with debug info (DWARF); these builds have symbols only.", ""]
    lines += [f"- {n}" for n in res.sizes.get("notes", [])]
    lines += ["", "## Stages", ""]
    lines += _table(["stage", "seconds"], [[k, f"{v:.1f}"] for k, v in res.stage_seconds.items()], "lr")
    lines += [
        "",
        f"`libonnxruntime.so` in this directory is the `{next(iter(res.probes), 'full')}` build: "
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
    rows = []
    for s in res.shipped:
        rows.append([
            s["variant"], f"{s['library_bytes']:,}", f"{s['library_stripped_bytes']:,}", f"{s['model_bytes']:,}",
            f"{s['tokenizer_bytes']:,}", f"**{s['total']:,}**", f"{s['total'] / MiB:.2f}",
            "yes" if s["verified"] else "no",
        ])  # fmt: skip
    lines += _table(["variant", "library", "library stripped", "models", "tokenizer", "shipped", "shipped MiB",
                     "verified"], rows, "lrrrrrrl")  # fmt: skip
    rec = res.recommended
    lines += ["", f"Recommended: **{rec}** (smallest shipped total that verified)." if rec else
              "No variant verified: nothing to recommend.", ""]  # fmt: skip
    lines += [f"![{c}]({c})" for c in res.sizes.get("shipped_charts", []) if c.endswith(".png")]
    if res.converted:
        lines += ["", "ORT-format models (made by the full build; shipped with the minimal variant):", ""]
        lines += _table(
            ["model", ".onnx bytes", ".ort bytes", "ratio", "quantized weights kept"],
            [[c["name"], f"{c['source_bytes']:,}", f"{c['ort_bytes']:,}", f"{c['ratio']:.2f}x",
              "yes" if c["keep_quantized"] else "no"] for c in res.converted],
            "lrrrl",
        )  # fmt: skip
    return [*lines, ""]


def write_report(res: SlimResult) -> None:
    atomic_write_text(res.out / "report.json", json.dumps(res.to_json_dict(), indent=2, default=str) + "\n")
    atomic_write_text(res.out / "report.md", render_markdown(res))
