"""The consumers report (which programs load a library, and how): a terminal table and Markdown lines."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

_WORKS = {True: "yes", False: "no", None: "n/a"}


def consumers_markdown(report: dict[str, Any]) -> list[str]:
    """``report``: :meth:`ortprune.runtime.consumers.ConsumersReport.to_json_dict`."""
    lib = report["library"]
    lines = [
        f"`{lib['path']}`: ONNX Runtime {lib['version']}, C API {lib['api_level']}, SONAME "
        f"`{lib['soname']}`, graph optimization level 3 {'accepted' if lib['accepts_layout_level'] else 'rejected'}.",
        "",
        "| consumer | loads it | why | how |",
        "|---|---|---|---|",
    ]
    for c in report["consumers"]:
        how = c["how"].replace("|", "\\|")
        lines.append(f"| {c['consumer']} | {_WORKS[c['works']]} | {c['why']} | `{how}` |")
    return lines


def print_consumers(report: dict[str, Any], console: Console) -> None:
    """The table (consumer, loads it, why), then each consumer's line to copy, unwrapped, below a ``#``
    comment naming it: a shell command folded into a table cell cannot be copied."""
    lib = report["library"]
    table = Table(title=Text(f"consumers of {lib['path']} (ONNX Runtime {lib['version']}, C API {lib['api_level']}, "
                             f"level 3 {'accepted' if lib['accepts_layout_level'] else 'rejected'})"),
                  title_justify="left")  # fmt: skip
    for col in ("consumer", "loads it", "why"):
        table.add_column(col, overflow="fold")
    style = {True: "green", False: "bold red", None: "dim"}
    for c in report["consumers"]:
        table.add_row(Text(c["consumer"]), _WORKS[c["works"]], Text(c["why"]), style=style[c["works"]])
    console.print(table)
    for c in report["consumers"]:
        console.print(Text(f"# {c['consumer']}\n{c['how']}"), soft_wrap=True, crop=False)
