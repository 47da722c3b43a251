"""One table model, three renderings: a table is defined once (its columns) and drawn as Markdown or as a
rich terminal table; its JSON is the rows' own ``to_dict`` (bloaty's rule: one rollup, many outputs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rich.table import Table as RichTable
from rich.text import Text

R = TypeVar("R")


@dataclass(frozen=True)
class Column(Generic[R]):
    title: str
    cell: Callable[[R], str]
    right: bool = False  #: numbers are right-aligned


@dataclass
class Table(Generic[R]):
    columns: Sequence[Column[R]]
    rows: Sequence[R]
    title: str = ""
    #: extra rows (totals), already formatted, drawn bold
    footer: list[list[str]] = field(default_factory=list)
    #: terminal style of a row (e.g. red for a failure)
    style: Callable[[R], str | None] | None = None

    def cells(self) -> list[list[str]]:
        return [[c.cell(r) for c in self.columns] for r in self.rows]

    def markdown(self, code: Sequence[int] = ()) -> str:
        """GitHub Markdown; ``code``: column indexes shown as inline code (names with spaces or pipes)."""

        def fmt(i: int, text: str) -> str:
            text = text.replace("|", "\\|")
            return f"`{text}`" if i in code and text else text

        lines = [
            "| " + " | ".join(c.title for c in self.columns) + " |",
            "|" + "|".join("---:" if c.right else "---" for c in self.columns) + "|",
        ]
        lines += ["| " + " | ".join(fmt(i, x) for i, x in enumerate(row)) + " |" for row in self.cells()]
        lines += ["| " + " | ".join(f"**{x}**" if x else "" for x in row) + " |" for row in self.footer]
        return "\n".join(lines) + "\n"

    def rich(self) -> RichTable:
        # Text, never markup: a cell or title is shown as it is, whatever the console's markup setting
        t = RichTable(title=Text(self.title) if self.title else None, title_justify="left")
        for c in self.columns:
            t.add_column(c.title, justify="right" if c.right else "left", overflow="fold")
        for r, row in zip(self.rows, self.cells(), strict=True):
            t.add_row(*(Text(x) for x in row), style=self.style(r) if self.style else None)
        for row in self.footer:
            t.add_row(*(Text(x) for x in row), style="bold")
        return t


def bytes_(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"
