"""A markdown table from a declaration: columns (a head and how to write a row's cell),
then rows of any type. bench/report/tables.py declares every table of the page with it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Column(Generic[R]):
    """One column: its head, and its cell for a row. A cell of None is left blank
    (`| |`), for a column that has nothing to say about that row."""

    head: str
    cell: Callable[[R], str | None]


@dataclass(frozen=True)
class Table(Generic[R]):
    columns: Sequence[Column[R]]

    def __add__(self, more: Sequence[Column[R]]) -> Table[R]:
        """This table with more columns on the right."""
        return Table([*self.columns, *more])

    def render(self, rows: Iterable[R]) -> list[str]:
        """The head, the rule and one line per row (no blank line after)."""
        lines = [line([c.head for c in self.columns]), "|" + "---|" * len(self.columns)]
        lines += [line([c.cell(r) for c in self.columns]) for r in rows]
        return lines


def line(cells: Sequence[str | None]) -> str:
    """`| a | b |`; a None cell is left blank."""
    return "|" + "".join(" |" if c is None else f" {c} |" for c in cells)
