"""What every ``ticker`` command shares: the two consoles, loading the settings, and the
shape of ``--help``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from ticker.settings import Settings

out = Console()
err = Console(stderr=True)
# Into a pipe or a file, a line is a line: never hard-wrapped at 80 columns.
out.soft_wrap = not out.is_terminal


def piped() -> bool:
    """Is stdout a pipe or a file (one plain, tab-separated line per item)?"""
    return not out.is_terminal


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


class Command(typer.core.TyperCommand):
    """Help that reads like git's or uv's: ``ticker post [OPTIONS] HEADLINE``, ``--channel
    CHANNEL``, and flags (``--json``, ``--help``) that do not look as if they took a value.

    Typer's parameters are its own vendored click classes, so they are told apart by
    ``param_type_name``, click's documented attribute, not by ``isinstance``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.param_type_name == "option" and param.metavar is None:
                flag = getattr(param, "is_flag", False)
                param.metavar = "" if flag else (param.name or "value").upper()

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = (param.metavar or param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def format_options(self, ctx: Any, formatter: Any) -> None:
        # Arguments as `HEADLINE  help`, not `headline <str>`.
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                name = (param.metavar or param.name or "").upper()
                args.append((name, getattr(param, "help", None) or ""))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class Group(typer.core.TyperGroup):
    """``ticker --help`` and ``ticker token --help``: ``--help`` takes no value."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option
