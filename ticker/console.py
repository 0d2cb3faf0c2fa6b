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


def load_settings() -> Settings:
    from ticker.settings import Settings  # pydantic-settings: only for commands that need it

    try:
        return Settings()
    except ValueError as exc:
        err.print(f"[red]invalid TICKER_* settings:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
