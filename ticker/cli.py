"""The ``ticker`` command: serve, and the editor's desk (post, import, correct, hold, kill, pin,
approve, reject, ls, queue, history, audit, tail).

Editor commands talk to the HTTP API (TICKER_URL, TICKER_TOKEN), so validation and auth
are the same for every client. Token administration speaks to Redis, like any bootstrap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ticker.cli_tokens import token_app
from ticker.console import (
    HELP,
    Command,
    Group,
    Header,
    err,
    exit_code,
    install_completion_callback,
    load_settings,
    out,
    piped,
    rows,
    show_completion_callback,
    show_version,
    utc,
)

if TYPE_CHECKING:
    from ticker.client import Client

# Every `ticker` run pays this module's imports, so the heavy ones (httpx, redis, the
# settings' pydantic models, uvicorn) happen inside the commands that need them.

app = typer.Typer(
    help="A breaking-news ticker: Redis Streams in, server-sent events out.",
    no_args_is_help=True,
    # Our own --install-completion/--show-completion (ticker.console) take the shell's name,
    # as `uv generate-shell-completion bash` does; Typer's guess it when shellingham is
    # installed, and cannot be told.
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=Group,
    # Inherited by every subcommand's context: `ticker post -h` as `ticker -h`.
    context_settings=HELP,
)
app.add_typer(token_app, name="token")
command = app.command


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


T = TypeVar("T")

Channel = Annotated[str, typer.Option("--channel", "-c", help="Channel (edition).")]
Uri = Annotated[str, typer.Argument(help="The item's uri, as `post` and `ls` print it.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON reply instead.")]
Urgency = Annotated[
    int, typer.Option("--urgency", "-u", metavar="1-9", help="1 (most urgent) to 9.")
]
Source = Annotated[
    str | None, typer.Option("--source", "-s", help='Who says so, e.g. "Dutch Police".')
]
Regions = Annotated[
    list[str] | None,
    typer.Option("--region", "-r", help="Region slug; repeat for more: -r europe -r mena."),
]
Categories = Annotated[
    list[str] | None,
    typer.Option("--category", help="Category slug; repeat for more."),
]
Link = Annotated[str | None, typer.Option("--link", "-l", metavar="URL", help="http(s) link.")]
Ttl = Annotated[
    str | None,
    typer.Option(metavar="DURATION", help="How long it stays on the ticker: 30m, 6h, 1d."),
]
ExpiresAt = Annotated[
    str | None,
    typer.Option(metavar="TIME", help="When it leaves the ticker (RFC 3339, with a zone)."),
]
# Sent as typed: the service reads it (ticker/when.py), so every client means the same.
Embargo = Annotated[
    str | None,
    typer.Option(
        metavar="WHEN",
        help="Not shown before then: a duration (30m, 2h), a clock time (18:30, in the"
        " channel's time zone) or an RFC 3339 time.",
    ),
]
URGENCY_STYLE = {1: "bold white on red", 2: "bold red", 3: "yellow", 4: "yellow"}


def _client() -> Client:
    from ticker.client import Client, resolve

    return Client(*resolve(load_settings()), on_wait=_rate_limited)


def _rate_limited(seconds: float) -> None:
    err.print(f"[dim]rate-limited; retrying in {seconds:.0f} s[/dim]")


def _call(fn: Callable[[Client], T]) -> T:
    from ticker.client import ClientError

    try:
        with _client() as client:
            return fn(client)
    except ClientError as exc:
        # Each problem once: the details when there are some (the message sums them up).
        problems = [f"{d.get('field')}: {d.get('message')}" for d in exc.body.get("details", [])]
        for problem in problems or [str(exc)]:
            err.print(f"[red]error:[/red] {escape(problem)}")
        raise typer.Exit(exit_code(exc.status)) from None


def _print_json(body: Any) -> None:
    if piped():
        print(json.dumps(body, ensure_ascii=False))  # one line: for jq and for files
    else:
        out.print_json(json.dumps(body))


def _show(item: dict[str, Any], action: str, as_json: bool) -> None:
    if as_json:
        _print_json(item)
        return
    if item.get("changed") is False:
        action = "unchanged"  # it already was so: nothing written, nothing sent
    release = item.get("embargoed_until")
    held_back = f", embargoed until {release} ({_relative(release)})" if release else ""
    # A killed item never shows again: its expiry means nothing to the editor.
    ends = "" if item["status"] == "canceled" else f", expires {_relative(item['expires_at'])}"
    # This version is a marked correction, or a kill with a note: say so.
    corrected = item.get("corrected_at")
    if corrected and corrected == item.get("updated_at") and item.get("changed") is not False:
        ends += ", marked as corrected"
    if item.get("notice"):
        ends += f", notice {escape(json.dumps(item['notice'], ensure_ascii=False))}"
    kind = ", an advisory (never on air)" if item.get("kind") == "advisory" else ""
    status = item["status"] + (" (needs sign-off)" if item["status"] == "pending" else "")
    out.print(
        f"[green]{action}[/green] {item['uri']} (v{item['version']}) on "
        f"[bold]{item['channel']}[/bold], status {status}{held_back}{ends}{kind}"
    )


# Piped output's columns, in order (README, "Piped output"). `ls` has one more than its
# table: "pinned" is its own column, where the table marks the uri "(pinned)".
LS_COLUMNS = ("uri", "urgency", "headline", "regions", "expires_at", "pinned", "reach")
QUEUE_COLUMNS = ("uri", "status", "embargoed_until", "author", "updated_at", "headline", "note")
# What the queue calls an item that waits for sign-off, or was refused it.
QUEUE_WORDS = {"pending": "needs sign-off", "rejected": "rejected"}
HISTORY_COLUMNS = ("id", "event", "uri", "version", "status", "author", "reach", "headline")
AUDIT_COLUMNS = ("id", "action", "uri", "by", "at", "reason")
STATS_COLUMNS = ("channel", "readers", "live", "history", "oldest_at", "last_publish_at")


def _line(item: dict[str, Any]) -> str:
    source = f"{item['source']}: " if item.get("source") else ""
    return f"{source}{item['headline']}"


@command(cls=Command)
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
    from ticker.console import settings_error
    from ticker.embedded import EmbeddedError
    from ticker.serve import StartupError
    from ticker.serve import serve as run
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


@command(cls=Command)
def post(
    headline: Annotated[str, typer.Argument(help="One line, at most 280 characters.")],
    channel: Channel = "en",
    urgency: Urgency = 5,
    source: Source = None,
    region: Regions = None,
    category: Categories = None,
    link: Link = None,
    ttl: Ttl = None,
    expires_at: ExpiresAt = None,
    embargo: Embargo = None,
    hold: Annotated[
        bool, typer.Option("--hold", help="Post it withheld: not shown until released.")
    ] = False,
    story: Annotated[
        str | None,
        typer.Option(metavar="SLUG", help="Link it to its editions on other channels."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Post it even if the same headline was just posted."),
    ] = False,
    advisory: Annotated[
        bool,
        typer.Option(
            "--advisory", help="A note for the desk and partners: never on the bar or public."
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Publish a new item (or, with --advisory, a note that is never on air).

    A headline that an item posted on the channel a moment ago already has (the same
    words and digits) is refused, naming that item (exit 1); --force posts it anyway.
    """
    from ticker.client import ClientError

    body: dict[str, Any] = {"headline": headline, "urgency": urgency}
    for key, value in (
        ("source", source),
        ("link", link),
        ("ttl", ttl),
        ("expires_at", expires_at),
        ("embargo", embargo),
        ("story", story),
    ):
        if value is not None:
            body[key] = value
    if region:
        body["regions"] = region
    if category:
        body["categories"] = category
    if hold:
        body["status"] = "withheld"
    if force:
        body["force"] = True
    if advisory:
        body["kind"] = "advisory"

    def send(client: Client) -> Any:
        try:
            return client.request("POST", f"/channels/{channel}/items", json=body)
        except ClientError as exc:
            if exc.status == 409 and exc.body.get("error") == "duplicate":
                _duplicate(exc.body.get("item") or {})
                raise typer.Exit(exit_code(exc.status)) from None  # 1: refused
            raise

    _show(_call(send), "posted", as_json)


def _duplicate(other: dict[str, Any]) -> None:
    """The item a post would duplicate, and how to post it all the same."""
    when = _relative(str(other.get("created_at")))
    err.print(
        f"[red]error:[/red] not posted: {escape(str(other.get('author')))} posted the same "
        f"headline {'just now' if when == 'now' else when} as {escape(str(other.get('uri')))}"
        f" on {escape(str(other.get('channel')))}, status {other.get('status')}"
    )
    if other.get("headline"):
        err.print(f"  {escape(_line(other))}", soft_wrap=True)
    err.print("  nothing was written; to post it anyway, run the same command with --force")


@command("import", cls=Command)
def import_items(
    file: Annotated[str, typer.Argument(help="JSON Lines: a POST body per line; - is stdin.")],
    channel: Annotated[
        str, typer.Option("--channel", "-c", help='For lines without a "channel" field.')
    ] = "en",
    concurrency: Annotated[
        int,
        typer.Option(
            min=1, max=16, metavar="N", help="Requests in flight (1-16); above 1, order is lost."
        ),
    ] = 1,
    stop_on_error: Annotated[
        bool, typer.Option("--stop-on-error", help="Stop at the first failed line.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print each line's item (uri, version) or error as JSON."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Post lines whose headline was just posted, too."),
    ] = False,
) -> None:
    """Post items from a JSON Lines file; a re-run posts nothing twice.

    Lines go in file order (with --concurrency 1), so the last line is the newest item.
    """
    from ticker.cli_import import command
    from ticker.client import resolve

    code = command(
        file,
        channel=channel,
        concurrency=concurrency,
        stop_on_error=stop_on_error,
        force=force,
        server=resolve(load_settings()),
        out=out,
        err=err,
        json_out=as_json,
    )
    if code:
        raise typer.Exit(code)


@command(cls=Command)
def correct(
    uri: Uri,
    headline: Annotated[str | None, typer.Argument(help="The corrected headline.")] = None,
    channel: Channel = "en",
    urgency: Annotated[
        int | None, typer.Option("--urgency", "-u", metavar="1-9", help="1 (most urgent) to 9.")
    ] = None,
    source: Source = None,
    region: Annotated[
        list[str] | None,
        typer.Option("--region", "-r", help="The new regions (replace the old); repeat."),
    ] = None,
    category: Annotated[
        list[str] | None,
        typer.Option("--category", help="The new categories (replace the old); repeat."),
    ] = None,
    link: Link = None,
    ttl: Annotated[
        str | None, typer.Option(metavar="DURATION", help="New time on the ticker, from now.")
    ] = None,
    expires_at: ExpiresAt = None,
    embargo: Annotated[
        str | None,
        typer.Option(
            metavar="WHEN",
            help="Move the embargo of an item still under one: 30m, 18:30 or RFC 3339.",
        ),
    ] = None,
    base_version: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="The version you are correcting; refused if it has changed since. "
            "Default: the version read just before the correction.",
        ),
    ] = None,
    notice: Annotated[
        bool,
        typer.Option(
            "--notice",
            help='Mark it as a correction: readers see "Updated" on it for a while. '
            "Without it a fix is silent.",
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Correct an item: a new version replaces it everywhere.

    It reads the item first and corrects that version: if someone changed it meanwhile,
    nothing is written, and it says what changed (exit 1).
    """
    from ticker.client import ClientError

    body: dict[str, Any] = {}
    for key, value in (
        ("headline", headline),
        ("urgency", urgency),
        ("source", source),
        ("link", link),
        ("ttl", ttl),
        ("expires_at", expires_at),
        ("embargo", embargo),
        ("regions", region),
        ("categories", category),
    ):
        if value is not None:
            body[key] = value
    if notice:
        body["notice"] = "corrected"
    path = f"/channels/{channel}/items/{uri}"
    seen: dict[str, Any] = {}

    def send(client: Client) -> Any:
        base = base_version
        if base is None:
            seen.update(client.request("GET", path))
            base = int(seen["version"])
        try:
            return client.request("PATCH", path, json=body, headers={"If-Match": f'"v{base}"'})
        except ClientError as exc:
            if exc.status == 409 and exc.body.get("error") == "stale":
                _stale(client, path, base, seen, exc.body.get("item") or {})
                raise typer.Exit(1) from None
            raise

    _show(_call(send), "corrected", as_json)


def _stale(client: Client, path: str, base: int, seen: dict[str, Any], now: dict[str, Any]) -> None:
    """What changed since the version a correction was made from."""
    if not seen:  # --base-version: that version's text is in the item's history
        versions = client.request("GET", path).get("versions", [])
        seen.update(next((v for v in versions if v.get("version") == base), {}))
    err.print(
        f"[red]error:[/red] not corrected: {escape(now.get('uri', ''))} changed since v{base}; "
        f"it is now v{now.get('version')} by {escape(str(now.get('author')))} "
        f"({_relative(str(now.get('updated_at')))}), status {now.get('status')}"
    )
    if seen.get("headline"):
        err.print(f"  v{base} (yours):   {escape(_line(seen))}", soft_wrap=True)
    if now.get("headline"):
        err.print(f"  v{now.get('version')} (now):     {escape(_line(now))}", soft_wrap=True)
    err.print("  nothing was written; correct the new version if you still want to")


@command(cls=Command)
def hold(uri: Uri, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Withhold an item: it leaves every ticker until released."""
    item = _call(
        lambda c: c.request(
            "PATCH", f"/channels/{channel}/items/{uri}", json={"status": "withheld"}
        )
    )
    _show(item, "held", as_json)


@command(cls=Command)
def release(uri: Uri, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Put an item on air now: lift its hold and its embargo."""
    item = _call(
        lambda c: c.request(
            "PATCH",
            f"/channels/{channel}/items/{uri}",
            json={"status": "usable", "embargoed_until": None},
        )
    )
    _show(item, "released", as_json)


@command(cls=Command)
def pin(uri: Uri, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Pin an item: it stays on the bar, first, until unpinned, killed or expired.

    Needs a chief token; at most 3 pins per channel.
    """
    item = _call(
        lambda c: c.request("PATCH", f"/channels/{channel}/items/{uri}", json={"pinned": True})
    )
    _show(item, "pinned", as_json)


@command(cls=Command)
def unpin(uri: Uri, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Unpin an item: it takes its turn on the bar again. Needs a chief token."""
    item = _call(
        lambda c: c.request("PATCH", f"/channels/{channel}/items/{uri}", json={"pinned": False})
    )
    _show(item, "unpinned", as_json)


@command(cls=Command)
def kill(
    uri: Uri,
    channel: Channel = "en",
    all_editions: Annotated[
        bool,
        typer.Option(
            "--all-editions", help="Also kill its story's editions on every channel you write."
        ),
    ] = False,
    notice: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT",
            help='A note for readers, shown in place of the item ("Withdrawn: ..."; one line, '
            "at most 280 characters) where the channel shows kill notices.",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Kill an item: it is removed everywhere and never shows again."""
    path = f"/channels/{channel}/items/{uri}"
    note = None if notice is None else {"notice": notice}
    if not all_editions:
        _show(_call(lambda c: c.request("DELETE", path, json=note)), "killed", as_json)
        return
    params = {"all_editions": "true"}
    body = _call(lambda c: c.request("DELETE", path, json=note, params=params))
    if as_json:
        _print_json(body)
    else:
        for item in body["killed"]:
            _show(item, "killed", False)
    for miss in body["refused"]:
        err.print(
            f"[red]error:[/red] not killed: {miss['uri']} on {escape(miss['channel'])} "
            f"({miss['status']} {escape(miss['error'])})"
        )
    if body["refused"]:
        raise typer.Exit(exit_code(int(body["refused"][0]["status"])))


@command(cls=Command)
def approve(uri: Uri, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Sign off an item that waits: on air now, or at its embargo. Needs an editor token."""
    path = f"/channels/{channel}/items/{uri}/approve"
    _show(_call(lambda c: c.request("POST", path)), "approved", as_json)


@command(cls=Command)
def reject(
    uri: Uri,
    note: Annotated[str, typer.Option(help="Why, for its author (one line, ≤ 500 chars).")],
    channel: Channel = "en",
    as_json: AsJson = False,
) -> None:
    """Reject an item that waits: it never goes on air; its author reads the note in the
    queue. Needs an editor token."""
    path = f"/channels/{channel}/items/{uri}/reject"
    _show(_call(lambda c: c.request("POST", path, json={"note": note})), "rejected", as_json)


@command(cls=Command)
def purge(
    uri: Uri,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit record; ≤ 500 chars).")],
    channel: Channel = "en",
    as_json: AsJson = False,
) -> None:
    """Purge an item: a legal takedown, every text of it leaves Redis.

    Needs a chief token.
    """
    body = _call(
        lambda c: c.request(
            "POST", f"/channels/{channel}/items/{uri}/purge", json={"reason": reason}
        )
    )
    if as_json:
        _print_json(body)
        return
    out.print(f"[green]purged[/green] {body['uri']} on [bold]{channel}[/bold]")
    disk = body.get("disk") or {}
    if disk.get("rewrite_due_at"):
        due = disk["rewrite_due_at"]
        out.print(f"its text leaves Redis's append-only file: rewrite due {_relative(due)}")
    elif disk.get("aof") == "off":
        out.print("Redis keeps no append-only file: nothing on disk to rewrite")


@command("ls", cls=Command)
def list_items(channel: Channel = "en", as_json: AsJson = False, header: Header = False) -> None:
    """The items on the ticker now, newest first."""
    body = _call(lambda c: c.request("GET", f"/channels/{channel}/items"))
    if as_json:
        _print_json(body)
        return
    items = body["items"]
    if piped():
        rows(
            [
                [
                    i["uri"],
                    str(i["urgency"]),
                    _line(i),
                    ",".join(i["regions"]),
                    utc(i["expires_at"]),
                    "pinned" if i.get("pinned") else "-",
                    str(i.get("reach", "-")),
                ]
                for i in items
            ],
            LS_COLUMNS,
            header=header,
        )
        return
    table = Table(title=f"{channel}: {len(items)} on the ticker")
    pins = " (pinned)" if any(i.get("pinned") for i in items) else ""
    table.add_column("uri", no_wrap=True, min_width=_widest(items, "uri") + len(pins))
    table.add_column("u")
    table.add_column("headline", ratio=1)
    table.add_column("regions")
    table.add_column("expires", no_wrap=True)
    table.add_column("reach", justify="right")
    for item in items:
        table.add_row(
            item["uri"] + (" (pinned)" if item.get("pinned") else ""),
            str(item["urgency"]),
            Text(_line(item)),
            Text(",".join(item["regions"])),
            _relative(item["expires_at"]),
            str(item.get("reach", "-")),
        )
    out.print(table)


@command(cls=Command)
def queue(channel: Channel = "en", as_json: AsJson = False, header: Header = False) -> None:
    """What waits: items that need sign-off, rejected ones (with the note), held and
    embargoed items, newest first.

    The desk's view: needs a token (any role).
    """
    body = _call(lambda c: c.request("GET", f"/channels/{channel}/queue"))
    if as_json:
        _print_json(body)
        return
    items = body["items"]
    if piped():
        rows(
            [
                [
                    i["uri"],
                    i.get("queue_status") or i["status"],
                    utc(i.get("embargoed_until")),
                    i["author"],
                    utc(i["updated_at"]),
                    _line(i),
                    _rejection(i) or "-",
                ]
                for i in items
            ],
            QUEUE_COLUMNS,
            header=header,
        )
        return
    table = Table(title=f"{channel}: {len(items)} waiting")
    table.add_column("uri", no_wrap=True, min_width=_widest(items, "uri"))
    for column in ("status", "embargoed until", "author", "last change"):
        table.add_column(column, no_wrap=True)
    table.add_column("headline", ratio=1)
    for item in items:
        until = item.get("embargoed_until")
        why = _rejection(item)
        status = item.get("queue_status") or item["status"]
        table.add_row(
            item["uri"],
            QUEUE_WORDS.get(status, status),
            _relative(until) if until else "-",
            Text(item["author"]),
            _relative(item["updated_at"]),
            Text(_line(item) + (f"\n{why}" if why else "")),
        )
    out.print(table)


def _rejection(item: dict[str, Any]) -> str:
    """A rejected item's note, with who wrote it; "" for others."""
    if item.get("status") != "rejected":
        return ""
    return f"rejected by {item.get('rejected_by')}: {item.get('rejection_note')}"


@command(cls=Command)
def history(
    channel: Channel = "en",
    limit: Annotated[int, typer.Option(metavar="N", help="Entries per page (1-500).")] = 50,
    before: Annotated[
        str | None, typer.Option(metavar="ID", help="The page before this event id.")
    ] = None,
    as_json: AsJson = False,
    header: Header = False,
) -> None:
    """The recent history, newest first: edits, kills, expiries.

    Posts, corrections, holds, releases, kills and expiries. With a token, the desk's
    view: every version and its author.
    """
    params: dict[str, Any] = {"history": "true", "limit": limit}
    if before:
        params["before"] = before
    body = _call(lambda c: c.request("GET", f"/channels/{channel}/items", params=params))
    if as_json:
        _print_json(body)
        return
    entries = body["items"]
    lines = [
        [
            entry["id"],
            entry["event"] + (f" ({entry['reason']})" if entry.get("reason") else ""),
            entry["uri"],
            str(entry.get("version", "")),
            entry.get("status", ""),
            entry.get("author", ""),
            str(entry.get("reach", "")),
            _line(entry) if entry.get("headline") else "",
        ]
        for entry in entries
    ]
    if piped():
        rows(lines, HISTORY_COLUMNS, header=header)
    else:
        table = Table(title=f"{channel}: history")
        table.add_column("id", no_wrap=True, min_width=_widest(entries, "id"))
        table.add_column("event")
        table.add_column("uri", no_wrap=True, min_width=_widest(entries, "uri"))
        for column in ("v", "status", "author"):
            table.add_column(column)
        table.add_column("reach", justify="right")
        table.add_column("headline", ratio=1)
        for row in lines:
            table.add_row(*row[:5], Text(row[5]), row[6], Text(row[7]))
        out.print(table)
    if body.get("next_before"):
        err.print(f"more: ticker history --channel {channel} --before {body['next_before']}")


@command(cls=Command)
def audit(
    channel_name: Annotated[
        str | None, typer.Argument(metavar="CHANNEL", help="Channel (edition); or --channel.")
    ] = None,
    channel: Channel = "en",
    limit: Annotated[int, typer.Option(metavar="N", help="Records per page (1-500).")] = 50,
    before: Annotated[
        str | None, typer.Option(metavar="ID", help="The page before this record id.")
    ] = None,
    as_json: AsJson = False,
    header: Header = False,
) -> None:
    """Kills, purges and sign-offs, newest first: who, when, which item, why (never the
    text).

    Needs an editor or a chief token.
    """
    channel = channel_name or channel
    params: dict[str, Any] = {"limit": limit}
    if before:
        params["before"] = before
    body = _call(lambda c: c.request("GET", f"/channels/{channel}/audit", params=params))
    if as_json:
        _print_json(body)
        return
    records = body["records"]
    lines = [
        [r["id"], r["action"], r["uri"], r["by"], utc(r["at"]), r.get("reason") or "-"]
        for r in records
    ]
    if piped():
        rows(lines, AUDIT_COLUMNS, header=header)
    else:
        table = Table(title=f"{channel}: {len(records)} kills, purges and sign-offs")
        table.add_column("when", no_wrap=True)
        table.add_column("action")
        table.add_column("uri", no_wrap=True, min_width=_widest(records, "uri"))
        table.add_column("by")
        table.add_column("reason", ratio=1)
        for row in lines:
            table.add_row(_relative(row[4]), row[1], row[2], Text(row[3]), Text(row[5]))
        out.print(table)
    if body.get("next_before"):
        err.print(f"more: ticker audit {channel} --before {body['next_before']}")


@command(cls=Command)
def stats(as_json: AsJson = False, header: Header = False) -> None:
    """Per channel: readers (every process), items live, history, last publish; then each
    process of the fleet: id, host, pid, readers, uptime."""
    body = _call(lambda c: c.request("GET", "/stats"))
    if as_json:
        _print_json(body)
        return
    fleet = body.pop("_fleet", None)
    disk = body.pop("_disk", None)
    table_rows = [
        [
            name,
            str(info["readers"]),
            str(info["live"]),
            str(info["history"]),
            _when(info["oldest_id"]),
            _when(info["last_id"]),
        ]
        for name, info in body.items()
    ]
    procs = [
        [p["id"], p["host"], str(p["pid"]), str(p["readers"]), _uptime(p["uptime_s"])]
        for p in (fleet or {}).get("processes", [])
    ]
    disk_row = _disk_row(disk) if disk else []
    if piped():
        # Channels, then one "process" line per process (a first column tells them apart),
        # then the "disk" line; times in UTC, uptime in seconds.
        channels = [
            [*row[:4], _id_utc(info["oldest_id"]), _id_utc(info["last_id"])]
            for row, info in zip(table_rows, body.values(), strict=True)
        ]
        fleet_rows = [
            [
                "process",
                p["id"],
                p["host"],
                str(p["pid"]),
                str(p["readers"]),
                str(int(p["uptime_s"])),
            ]
            for p in (fleet or {}).get("processes", [])
        ]
        disk_rows = (
            [
                [
                    "disk",
                    str(disk.get("aof")),
                    utc(disk.get("rewrite_asked_at")),
                    str(disk.get("last_rewrite_status") or "-"),
                    str(disk.get("purges_waiting", 0)),
                    utc(disk.get("rewrite_due_at")),
                ]
            ]
            if disk
            else []
        )
        rows_out = channels + fleet_rows + disk_rows
        rows(rows_out, STATS_COLUMNS, header=header)
        return
    table = Table(title="ticker stats")
    for column in ("channel", "readers", "live", "history", "oldest", "last publish"):
        table.add_column(column)
    for row in table_rows:
        table.add_row(*row)
    out.print(table)
    if fleet is None:
        return
    processes = Table(title=f"{len(procs)} processes, {fleet['readers']} readers")
    for column in ("process", "host", "pid", "readers", "uptime"):
        processes.add_column(column)
    for proc in procs:
        processes.add_row(*(Text(cell) for cell in proc))
    out.print(processes)
    if disk:
        _, aof, asked, status, waiting, due = disk_row
        out.print(
            f"disk: AOF {aof}; last rewrite asked {asked} ({status}); {waiting} purges "
            f"waiting" + (f", rewrite due {due}" if due != "-" else "")
        )


def _disk_row(disk: dict[str, Any]) -> list[str]:
    """The AOF line of ``ticker stats``: state, last rewrite asked, its status, purges
    waiting for one, when it is due."""
    asked, due = disk.get("rewrite_asked_at"), disk.get("rewrite_due_at")
    return [
        "disk",
        str(disk.get("aof")),
        _relative(asked) if asked else "never",
        str(disk.get("last_rewrite_status") or "-"),
        str(disk.get("purges_waiting", 0)),
        _relative(due) if due else "-",
    ]


def _uptime(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _widest(rows: list[dict[str, Any]], key: str) -> int:
    """A column as wide as its longest value: ids and uris are never cut."""
    return max((len(str(row.get(key, ""))) for row in rows), default=0)


def _id_utc(entry_id: str | None) -> str:
    """A stream ID's time (milliseconds since the epoch) in UTC."""
    return utc(int(entry_id.split("-")[0])) if entry_id else "-"


def _when(entry_id: str | None) -> str:
    """A stream ID's time, relative to now (IDs are milliseconds since the epoch)."""
    if not entry_id:
        return "-"
    moment = datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, tz=UTC)
    return _relative(moment.isoformat())


def _relative(timestamp: str) -> str:
    """An RFC 3339 time as "in 5h 59m" or "3m ago"; one reading, whatever the zone."""
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    seconds = round((moment - datetime.now(UTC)).total_seconds())
    span = _span(abs(seconds))
    if span == "0s":
        return "now"
    return f"in {span}" if seconds > 0 else f"{span} ago"


def _span(seconds: int) -> str:
    """4d 2h, 5h 59m, 12m, 40s: the two largest units."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if not parts:
        return f"{secs}s"
    return " ".join(parts[:2])


@command(cls=Command)
def tail(
    channel: Channel = "en",
    region: Regions = None,
    category: Categories = None,
    max_urgency: Annotated[
        int | None,
        typer.Option(metavar="1-9", help="Only items at least this urgent (1 is the most)."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help='JSON Lines: {"event", "id", "data"} per event.'),
    ] = False,
) -> None:
    """Follow the live stream; Ctrl-C to stop.

    It reconnects and resumes by itself, and says so once if no service answers.
    """
    params: dict[str, Any] = {}
    if region:
        params["region"] = region
    if category:
        params["category"] = category
    if max_urgency:
        params["max_urgency"] = max_urgency
    import httpx

    from ticker.client import ClientError, unreachable

    last_id: str | None = None
    delay = TAIL_RETRY_S[0]
    told = False  # "no service answers" is said once; then retries are quiet
    with _client() as client:
        while True:
            try:
                for event in client.events(channel, params=params, last_event_id=last_id):
                    last_id = event.id or None
                    delay, told = TAIL_RETRY_S[0], False
                    data = json.loads(event.data)
                    if as_json:
                        line = {"event": event.event, "id": event.id or None, "data": data}
                        print(json.dumps(line, ensure_ascii=False), flush=True)
                    else:
                        _print_event(event.event, data)
                err.print("[dim]stream ended; reconnecting[/dim]")
            except ClientError as exc:
                err.print(f"[red]error:[/red] {escape(str(exc))}")
                if exc.status:
                    raise typer.Exit(exit_code(exc.status)) from None
            except KeyboardInterrupt:
                raise typer.Exit(0) from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if not told:
                    err.print(
                        f"[yellow]{escape(unreachable(client.url, exc))}[/yellow]\n"
                        "[dim]waiting for it; Ctrl-C to stop[/dim]"
                    )
                    told = True
            except Exception as exc:  # network drop mid-stream: resume from last_id
                err.print(f"[dim]connection lost ({exc.__class__.__name__}); reconnecting[/dim]")
            try:
                time.sleep(delay)
            except KeyboardInterrupt:
                raise typer.Exit(0) from None
            delay = TAIL_RETRY_S[min(TAIL_RETRY_S.index(delay) + 1, len(TAIL_RETRY_S) - 1)]


# Waits between reconnects while the service is away (a drop mid-stream starts again at 1 s).
TAIL_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def _print_event(kind: str, data: dict[str, Any]) -> None:
    # A clock time for the eye; into a pipe or a log, the one piped time format.
    stamp = utc(datetime.now(UTC).isoformat()) if piped() else datetime.now().strftime("%H:%M:%S")
    if kind == "item":
        style = URGENCY_STYLE.get(data["urgency"], "")
        text = f"[{style}]{escape(_line(data))}[/{style}]" if style else escape(_line(data))
        out.print(
            f"{stamp} [bold]ITEM[/bold] u{data['urgency']} {text} "
            f"[dim]{data['uri']} v{data['version']}[/dim]"
        )
    elif kind == "remove":
        note = (
            f" {escape(json.dumps(data['notice'], ensure_ascii=False))}" if "notice" in data else ""
        )
        out.print(
            f"{stamp} [bold magenta]REMOVE[/bold magenta] {escape(data['uri'])} "
            f"({escape(data['reason'])}){note}"
        )
    elif kind == "reset":
        out.print(f"{stamp} [bold cyan]RESET[/bold cyan] current items follow")


def main() -> None:
    # Typer registers its bash, zsh and fish completers only with add_completion=True;
    # without this, a shell's TAB gets "Shell bash not supported". A private module, so
    # tests/test_cli_terminal.py drives a real bash through it.
    from typer._completion_classes import completion_init

    completion_init()
    app(prog_name="ticker")


if __name__ == "__main__":  # pragma: no cover
    main()
