"""What every ``ticker`` command shares: the two consoles, exit codes, loading the settings,
and the shape of ``--help``."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from ticker.settings import Settings

out = Console()
err = Console(stderr=True)
# Into a pipe or a file (a log, a CI job), a line is a line: never hard-wrapped at 80
# columns, in the middle of a command to copy.
out.soft_wrap = not out.is_terminal
err.soft_wrap = not err.is_terminal


# Exit codes (README, "Exit codes"): a script can tell "try later" from "fix the token".
OK, REFUSED, USAGE, UNREACHABLE, AUTH = 0, 1, 2, 3, 4


def exit_code(status: int) -> int:
    """The exit code for a refusal with this HTTP status (0: no service answered)."""
    if status == 0 or status >= 500:
        return UNREACHABLE  # nothing answered, or the service (or its Redis) is away
    if status in (401, 403):
        return AUTH
    return REFUSED


def piped() -> bool:
    """Is stdout a pipe or a file (one plain, tab-separated line per item)?"""
    return not out.is_terminal


def settings_error(exc: ValueError) -> str:
    """Invalid settings as one line: each field named as its TICKER_* variable, in pydantic's
    words without its links and without the input (TICKER_REDIS_URL may hold a password)."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        # pydantic-settings' JSON parse error names its "EnvSettingsSource"; say ours.
        named = re.search(r'field "(\w+)"', str(exc))
        if named is None:
            return "invalid settings: " + " ".join(str(exc).split())
        cause = exc.__cause__
        why = f" ({cause})" if isinstance(cause, json.JSONDecodeError) else ""
        return f"invalid settings: TICKER_{named[1].upper()}: not valid JSON{why}"
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
        raise typer.Exit(USAGE) from None


HELP: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
SHELLS = ("bash", "zsh", "fish")


def show_version(value: bool | None) -> None:
    if value:
        from importlib.metadata import version

        print(f"ticker {version('ticker')}")
        raise typer.Exit(0)


def _shell(value: str) -> str:
    """A shell we complete for, or exit 2 naming them."""
    if value not in SHELLS:
        err.print(f"error: unknown shell {value!r}; one of: {', '.join(SHELLS)}", markup=False)
        raise typer.Exit(USAGE)
    return value


def show_completion_callback(ctx: Any, param: Any, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer.completion import show_callback

    show_callback(ctx, param, _shell(value))  # prints the script, exits 0


def install_completion_callback(ctx: Any, param: Any, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer.completion import install_callback

    install_callback(ctx, param, _shell(value))  # says where, exits 0


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
