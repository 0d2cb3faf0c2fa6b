"""The ``ticker`` command: the Typer app, its options (``--version``, completion), and
``main()``. Each command lives in its module (``items``, ``actions``, ``views``, ``stats``,
``tail``, ``importer``, ``tokens``); ``serve`` is here.

Editor commands talk to the HTTP API (TICKER_URL, TICKER_TOKEN), so validation and auth
are the same for every client. Token administration speaks to Redis, like any bootstrap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.markup import escape

from ticker.cli import actions, importer, items, stats, tail, views
from ticker.cli.console import (
    HELP,
    Command,
    Group,
    err,
    install_completion_callback,
    settings_error,
    show_completion_callback,
    show_version,
)
from ticker.cli.tokens import token_app

# Every `ticker` run pays these modules' imports, so the heavy ones (httpx, redis, the
# settings' pydantic models, uvicorn) happen inside the commands that need them.

app = typer.Typer(
    help="A breaking-news ticker: Redis Streams in, server-sent events out.",
    no_args_is_help=True,
    # Our own --install-completion/--show-completion (ticker.cli.console) take the shell's
    # name, as `uv generate-shell-completion bash` does; Typer's guess it when shellingham
    # is installed, and cannot be told.
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=Group,
    # Inherited by every subcommand's context: `ticker post -h` as `ticker -h`.
    context_settings=HELP,
)
app.add_typer(token_app, name="token")


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", "-V", callback=show_version, is_eager=True, help="Print the version."
        ),
    ] = None,
    install_completion: Annotated[
        str | None,
        typer.Option(
            metavar="SHELL",
            callback=install_completion_callback,
            is_eager=True,
            expose_value=False,
            help="Install completion for SHELL: bash, zsh or fish.",
        ),
    ] = None,
    show_completion: Annotated[
        str | None,
        typer.Option(
            metavar="SHELL",
            callback=show_completion_callback,
            is_eager=True,
            expose_value=False,
            help="Print the completion script for SHELL: bash, zsh or fish.",
        ),
    ] = None,
) -> None:
    """A breaking-news ticker: Redis Streams in, server-sent events out."""


@app.command(cls=Command)
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Bind address. Default: TICKER_HOST, else 127.0.0.1."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port. Default: TICKER_PORT, else 8000.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="uvicorn worker processes. Default: TICKER_WORKERS, else 1."
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Post a sample headline now and then (gone after a few minutes).",
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option(metavar="LEVEL", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Run the service (and a private Redis, unless one is configured)."""
    from ticker.server.embedded import EmbeddedError
    from ticker.server.serve import StartupError
    from ticker.server.serve import serve as run
    from ticker.settings import Settings

    overrides = {
        k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None
    }
    # Every way start-up can fail is one line on stderr and exit 1 (tests/test_startup.py).
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        err.print(f"[red]error:[/red] {escape(settings_error(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    try:
        run(settings, demo=demo, log_level=log_level)
    except (EmbeddedError, StartupError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None


# The other commands, in this order in `ticker --help` (after serve).
COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("post", items.post),
    ("import", importer.import_items),
    ("correct", items.correct),
    ("hold", actions.hold),
    ("release", actions.release),
    ("pin", actions.pin),
    ("unpin", actions.unpin),
    ("kill", actions.kill),
    ("approve", actions.approve),
    ("reject", actions.reject),
    ("purge", actions.purge),
    ("ls", views.list_items),
    ("queue", views.queue),
    ("history", views.history),
    ("audit", views.audit),
    ("stats", stats.stats),
    ("tail", tail.tail),
)
for _name, _function in COMMANDS:
    app.command(_name, cls=Command)(_function)


def main() -> None:
    # Typer registers its bash, zsh and fish completers only with add_completion=True;
    # without this, a shell's TAB gets "Shell bash not supported". A private module, so
    # tests/test_cli_terminal.py drives a real bash through it.
    from typer._completion_classes import completion_init

    completion_init()
    app(prog_name="ticker")
