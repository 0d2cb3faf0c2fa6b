"""What every ``ticker`` command shares: the two consoles and loading the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from ticker.settings import Settings

out = Console()
err = Console(stderr=True)


def settings_error(exc: ValueError) -> str:
    """Invalid settings as one line: each field named as its TICKER_* variable, in pydantic's
    words without its links and without the input (TICKER_REDIS_URL may hold a password)."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):  # e.g. pydantic-settings' JSON parse errors
        return "invalid settings: " + " ".join(str(exc).split())
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        field, *inner = error["loc"] or ("settings",)
        name = f"TICKER_{str(field).upper()}" + "".join(f"[{part}]" for part in inner)
        message = error["msg"].removeprefix("Value error, ")
        parts.append(message if message.startswith(name) else f"{name}: {message}")
    return "invalid settings: " + "; ".join(parts)


def load_settings() -> Settings:
    from ticker.settings import Settings  # pydantic-settings: only for commands that need it

    try:
        return Settings()
    except ValueError as exc:
        err.print(f"[red]error:[/red] {escape(settings_error(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
