"""What every ``ticker`` command shares: the two consoles and loading the settings."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from ticker.settings import Settings

out = Console()
err = Console(stderr=True)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        err.print(f"[red]invalid TICKER_* settings:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
