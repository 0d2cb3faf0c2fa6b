"""``ticker token``: editor tokens, administered straight against Redis (a bootstrap: the
first token cannot come from an API that needs one)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ticker.cli.console import USAGE, Command, Group, err, exit_code, load_settings, out
from ticker.cli.listing import Header, show
from ticker.cli.times import minute, utc

T = TypeVar("T")

AsJson = Annotated[
    bool,
    typer.Option(
        "--json", help="Print the token as JSON (with the new secret, for create and rotate)."
    ),
]

token_app = typer.Typer(
    help="Editor tokens (stored hashed in Redis, shown once).", no_args_is_help=True, cls=Group
)


def _admin(coro: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run a token command against Redis (the configured one, or the local embedded one)."""
    import asyncio

    from ticker.domain.errors import TickerError
    from ticker.newsroom.auth import Tokens
    from ticker.server.embedded import read_state
    from ticker.store import Store

    settings = load_settings()
    url = (
        settings.redis_url.get_secret_value()
        if settings.redis_url
        else read_state(settings.state_dir).get("redis_url")
    )
    if not url:
        err.print("[red]error:[/red] set TICKER_REDIS_URL, or start `ticker serve` here first")
        raise typer.Exit(USAGE)

    async def run() -> T:
        # A token change waits for TICKER_ACK_* as the editors' writes do: a revoked
        # token must not come back in a failover.
        store = Store(url, prefix=settings.key_prefix, ack=settings.ack)
        try:
            return await coro(Tokens(store))
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except TickerError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}")
        raise typer.Exit(exit_code(exc.status_code)) from None


@token_app.command("create", cls=Command)
def token_create(
    name: Annotated[str, typer.Argument(help="Who uses it, e.g. desk-amsterdam.")],
    channel: Annotated[
        list[str],
        typer.Option(
            "--channel", "-c", help="A channel it may act on ('*' for all); repeat for more."
        ),
    ],
    role: Annotated[
        str,
        typer.Option(
            help="viewer (reads the desk's view), contributor (also posts, but its posts "
            "wait for an editor's sign-off), editor (posts, corrects, holds, kills, approves "
            "and rejects), chief (also purges and pins, and reads /metrics and /stats) or "
            "ops (reads /metrics and /stats, nothing else; give it --channel '*')."
        ),
    ] = "editor",
    expires: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="Refused after this long: 30d, 12h (at most 10y)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Make a token. The secret is printed once; only its hash is kept."""
    lifetime = _duration("expires", expires) if expires is not None else None

    async def create(tokens: Any) -> tuple[str, dict[str, Any] | None]:
        secret = await tokens.create(name, channel, role, expires=lifetime)
        return secret, await _record(tokens, name) if as_json else None

    secret, record = _admin(create)
    until = f", expires in {escape(expires)}" if expires else ""
    err.print(
        f"[green]created[/green] {role} token {name!r} for {escape(', '.join(channel))}"
        f"{until}; store it now, it is not shown again:"
    )
    _print_secret(secret, record)


@token_app.command("rotate", cls=Command)
def token_rotate(
    name: Annotated[str, typer.Argument(help="The token to give a new secret.")],
    grace: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            help="How long the old secret keeps working (0s: it stops now; at most 30d).",
        ),
    ] = "1h",
    as_json: AsJson = False,
) -> None:
    """Give a token a new secret, printed once; the old one works until the grace ends."""
    overlap = _duration("grace", grace, zero=True)

    async def rotate(tokens: Any) -> tuple[str, dict[str, Any] | None]:
        secret = await tokens.rotate(name, grace=overlap)
        return secret, await _record(tokens, name) if as_json else None

    secret, record = _admin(rotate)
    ends = "now" if not overlap else f"in {escape(grace)}"
    err.print(
        f"[green]rotated[/green] {escape(repr(name))}; the old secret stops working {ends}. "
        "Store the new one now, it is not shown again:"
    )
    _print_secret(secret, record)


async def _record(tokens: Any, name: str) -> dict[str, Any] | None:
    """The token ``name`` as ``token ls`` lists it, after a change."""
    return next((row for row in await tokens.list() if row["name"] == name), None)


def _print_secret(secret: str, record: dict[str, Any] | None) -> None:
    """The one output of a new secret, on stdout alone (never logged): the bare line, or
    with ``--json`` the token as ``token ls --json`` shows it plus ``secret``."""
    if record is None:
        print(secret)
    else:
        print(json.dumps(_as_object(record) | {"secret": secret}, ensure_ascii=False))


def _duration(field: str, text: str, *, zero: bool = False) -> timedelta:
    """A CLI duration (the API's spellings), or exit 1 naming the option."""
    from ticker.domain.duration import parse_duration

    if zero and text.strip().lower() in ("0", "0s", "0m", "0h", "0d", "pt0s"):
        return timedelta(0)
    try:
        return parse_duration(text)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {field}: {escape(str(exc))}")
        raise typer.Exit(1) from None


TOKEN_COLUMNS = (
    "name",
    "role",
    "channels",
    "created_at",
    "last_used_at",
    "expires_at",
    "status",
    "old_secret_until",
)


def _columns(row: dict[str, Any]) -> list[str]:
    """A token's piped columns (``TOKEN_COLUMNS``)."""
    return [
        row["name"],
        row.get("role", "editor"),
        ",".join(row["channels"]),
        utc(row["created_at"]),
        utc(row.get("last_used_ms")),
        utc(row.get("expires_at")),
        row["status"],
        utc(row["old_secret_until"]),
    ]


def _as_object(row: dict[str, Any]) -> dict[str, Any]:
    """A token as ``--json`` shows it: the piped columns as keys, null for "-", channels a
    list. Never a secret or its hash (``Tokens.list`` has neither)."""
    columns = zip(TOKEN_COLUMNS, _columns(row), strict=True)
    return {column: (None if value == "-" else value) for column, value in columns} | {
        "channels": row["channels"]
    }


@token_app.command("ls", cls=Command)
def token_ls(
    as_json: Annotated[bool, typer.Option("--json", help="Print the tokens as JSON.")] = False,
    header: Header = False,
) -> None:
    """List tokens: role, channels, created, last used, expiry, status (active or
    expired) and, during a rotation's grace, until when the old secret works. Never
    secrets."""
    tokens = _admin(lambda store: store.list())
    lines = [_columns(row) for row in tokens]

    def tables() -> list[Table]:
        columns = ("name", "role", "channels", "created", "last used", "expires", "status")
        table = Table(*columns, "old secret until")
        for name, role, channels, created, used, expires, status, grace in lines:
            table.add_row(
                Text(name),
                role,
                Text(channels.replace(",", ", ")),
                minute(created),
                minute(used),
                minute(expires),
                Text(status, style="red" if status == "expired" else ""),
                minute(grace),
            )
        return [table]

    show(
        {"tokens": [_as_object(row) for row in tokens]},
        as_json=as_json,
        header=header,
        columns=TOKEN_COLUMNS,
        rows=lambda: lines,
        tables=tables,
        one_line_json=True,  # as create and rotate print it, with the secret
    )


@token_app.command("revoke", cls=Command)
def token_revoke(name: str, as_json: AsJson = False) -> None:
    """Revoke a token; writes with it fail from now on."""
    if not _admin(lambda tokens: tokens.revoke(name)):
        err.print(f"[red]error:[/red] no token named {escape(repr(name))}")
        raise typer.Exit(exit_code(404))
    if as_json:
        print(json.dumps({"name": name, "revoked": True}, ensure_ascii=False))
    else:
        out.print(f"revoked {escape(repr(name))}")
