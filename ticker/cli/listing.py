"""The one way a listing is printed (``ls``, ``queue``, ``history``, ``audit``, ``stats``,
``token ls``): with ``--json``, the reply as JSON; into a pipe, tab-separated rows (README,
"Piped output"); at a terminal, rich tables."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ticker.cli.console import out, piped

if TYPE_CHECKING:
    from rich.console import RenderableType

Header = Annotated[
    bool,
    typer.Option("--header", help="Into a pipe: first, a line naming the columns (see README)."),
]


def show(
    body: Any,
    *,
    as_json: bool,
    header: bool,
    columns: Sequence[str],
    rows: Callable[[], Iterable[Sequence[str]]],
    tables: Callable[[], Iterable[RenderableType]],
    one_line_json: bool = False,
) -> None:
    """Print a listing: ``body`` as JSON (``as_json``); else into a pipe ``rows()``, one
    tab-separated line each, nothing cut, after a line of ``columns`` if ``header``; else,
    at a terminal, each of ``tables()``. Columns are only ever added at the end: scripts
    cut by position. Rows and tables are built only when they are printed."""
    if as_json:
        print_json(body, one_line=one_line_json)
    elif piped():
        if header:
            print("\t".join(columns))
        for line in rows():
            print("\t".join(line))
    else:
        for table in tables():
            out.print(table)


def print_json(body: Any, *, one_line: bool = False) -> None:
    """A reply as JSON: one line into a pipe (for jq and for files) or when ``one_line``,
    indented and coloured at a terminal."""
    if one_line or piped():
        print(json.dumps(body, ensure_ascii=False))
    else:
        out.print_json(json.dumps(body))


def widest(rows: list[dict[str, Any]], key: str) -> int:
    """A column as wide as its longest value: ids and uris are never cut."""
    return max((len(str(row.get(key, ""))) for row in rows), default=0)


def line(item: dict[str, Any]) -> str:
    """An item's one line: "Source: headline"."""
    source = f"{item['source']}: " if item.get("source") else ""
    return f"{source}{item['headline']}"
