"""The package's imports flow one way: no import cycle, and no module imports from a layer above its own.

The layers, lowest first. A module may import modules of its own layer or below. Within a layer, packages
(stages) are ordered too: a stage imports only earlier stages (scan before ortbuild before analyze ...).
"""

from __future__ import annotations

import ast
from pathlib import Path

import ortprune

SRC = Path(ortprune.__file__).parent

#: Lowest first. Each entry: top-level modules/packages of ``ortprune`` that form one layer.
LAYERS: list[set[str]] = [
    {"errors"},
    {"_args", "_io", "_threads", "cache", "platform", "catalog", "elf"},  # foundation: no stage knowledge
    {"schemas", "opconfig", "ortformat", "bundle"},  # ORT's op grammar, model formats, the bundle manifest
    {"results"},  # typed stage results: data only
    {"runtime"},  # ctypes binding of any libonnxruntime
    {"bundled", "tokenizer"},  # model registry, tokenizer setup (embed and verify)
    {"scan"},
    {"convert"},  # ONNX → ORT format (with the runtime's optimizer)
    {"ortbuild"},
    {"analyze"},
    {"verify"},
    {"embed"},
    {"report"},  # renders results; reads data types only
    {"deploy"},  # deploy bundles: library + models optimized for it (convert, verify, embed)
    {"slim"},  # the pipeline: calls the stages, then the report
    {"cli", "__main__", "__init__"},
]
#: What the report may import: data types and its own helpers, never a stage's code.
REPORT_MAY_IMPORT = {"_io", "cache", "catalog", "errors", "results", "report"}


def layer_of(top: str) -> int:
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"ortprune.{top} is in no layer: add it to LAYERS in {__file__}")


def module_name(path: Path, src: Path = SRC) -> str:
    rel = path.relative_to(src.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, src: Path = SRC) -> set[str]:
    """Every ``ortprune.*`` module ``path`` imports (at any depth: function-level imports count)."""
    name = module_name(path, src)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    type_only = {  # ``if TYPE_CHECKING:`` imports never run
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ortprune"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "ortprune":
                continue
            for a in node.names:  # ``from ortprune.x import y`` may name a submodule y
                sub = f"{mod}.{a.name}"
                found.add(sub if module_path(sub, src) else mod)
    return found


def module_path(name: str, src: Path = SRC) -> Path | None:
    base = src.parent.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(SRC.rglob("*.py"))}


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_is_in_a_layer() -> None:
    for name in graph():
        layer_of(top(name))


def test_no_import_goes_up_a_layer() -> None:
    upward = [
        f"{mod} (layer {layer_of(top(mod))}) imports {dep} (layer {layer_of(top(dep))})"
        for mod, deps in graph().items()
        for dep in deps
        if layer_of(top(dep)) > layer_of(top(mod))
    ]
    assert not upward, "\n".join(upward)


def test_report_imports_data_types_only() -> None:
    bad = [
        f"{mod} imports {dep}"
        for mod, deps in graph().items()
        if top(mod) == "report"
        for dep in deps
        if top(dep) not in REPORT_MAY_IMPORT
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycle() -> None:
    """Between modules, counting an import of ``a.b`` as one of package ``a`` too (its __init__ runs)."""
    g = graph()
    edges: dict[str, set[str]] = {m: set() for m in g}
    for mod, deps in g.items():
        for dep in deps:
            parts = dep.split(".")
            for i in range(2, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in g and target != mod and not mod.startswith(target + "."):
                    edges[mod].add(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(d) :], d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_the_walker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "ortprune" / "scan"
    pkg.mkdir(parents=True)
    (pkg / "sibling.py").write_text("")
    f = pkg / "x.py"
    f.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ortprune.cli import app\n"
        "def f():\n    from ortprune.slim import slim\n\nfrom . import sibling\nfrom .sibling import y\n"
    )
    found = imports(f, tmp_path / "ortprune")
    assert found == {"ortprune.slim", "ortprune.scan.sibling"}  # the TYPE_CHECKING import never runs
    assert layer_of(top("ortprune.slim")) > layer_of(top("ortprune.scan.x"))  # would be reported as upward
