"""How a ``ticker`` command calls the service: a client from the settings, and a refusal
as one line per problem on stderr and an exit code."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.markup import escape

from ticker.cli.console import err, exit_code, load_settings

if TYPE_CHECKING:
    from ticker.cli.client import Client

# Every `ticker` run pays the imports of the modules that define commands, so httpx (the
# client) is imported here, in the commands that call the service, not at the top.

T = TypeVar("T")


def client() -> Client:
    from ticker.cli.client import Client, resolve

    return Client(*resolve(load_settings()), on_wait=_rate_limited)


def _rate_limited(seconds: float) -> None:
    err.print(f"[dim]rate-limited; retrying in {seconds:.0f} s[/dim]")


def call(fn: Callable[[Client], T]) -> T:
    """``fn(client)``; a refusal (or no service) is printed and ends the command."""
    from ticker.cli.client import ClientError

    try:
        with client() as c:
            return fn(c)
    except ClientError as exc:
        # Each problem once: the details when there are some (the message sums them up).
        problems = [f"{d.get('field')}: {d.get('message')}" for d in exc.body.get("details", [])]
        for problem in problems or [str(exc)]:
            err.print(f"[red]error:[/red] {escape(problem)}")
        raise typer.Exit(exit_code(exc.status)) from None
