"""The ``ticker`` command: serve, and the editor's desk (post, import, correct, hold, kill, ls,
tail).

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
from ticker.console import err, load_settings, out

if TYPE_CHECKING:
    from ticker.client import Client

# Every `ticker` run pays this module's imports, so the heavy ones (httpx, redis, the
# settings' pydantic models, uvicorn) happen inside the commands that need them.

app = typer.Typer(
    help="A breaking-news ticker: Redis Streams in, server-sent events out.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(token_app, name="token")

T = TypeVar("T")

Channel = Annotated[str, typer.Option("--channel", "-c", help="Channel (edition).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the item as JSON.")]
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
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        for detail in exc.body.get("details", []):
            err.print(escape(f"  {detail.get('field')}: {detail.get('message')}"))
        raise typer.Exit(1) from None


def _show(item: dict[str, Any], action: str, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(item))
        return
    out.print(
        f"[green]{action}[/green] {item['uri']} (v{item['version']}) on "
        f"[bold]{item['channel']}[/bold], status {item['status']}, "
        f"expires {item['expires_at']}"
    )


def _line(item: dict[str, Any]) -> str:
    source = f"{item['source']}: " if item.get("source") else ""
    return f"{source}{item['headline']}"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int | None, typer.Option(help="uvicorn worker processes.")] = None,
    demo: Annotated[bool, typer.Option(help="Post sample headlines every few seconds.")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning.")] = "info",
) -> None:
    """Run the service (with an embedded Redis when TICKER_REDIS_URL is not set)."""
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


@app.command()
def post(
    headline: Annotated[str, typer.Argument(help="One line, at most 280 characters.")],
    channel: Channel = "en",
    urgency: Annotated[int, typer.Option("--urgency", "-u", help="1 (flash) to 9.")] = 5,
    source: Annotated[str | None, typer.Option("--source", "-s")] = None,
    region: Annotated[list[str] | None, typer.Option("--region", "-r")] = None,
    category: Annotated[list[str] | None, typer.Option("--category")] = None,
    link: Annotated[str | None, typer.Option("--link", "-l")] = None,
    ttl: Annotated[str | None, typer.Option(help="How long it stays, e.g. 30m, 6h.")] = None,
    expires_at: Annotated[str | None, typer.Option(help="RFC 3339 time.")] = None,
    embargo: Annotated[str | None, typer.Option(help="Release at (RFC 3339).")] = None,
    hold: Annotated[bool, typer.Option(help="Post it withheld (not shown).")] = False,
    as_json: AsJson = False,
) -> None:
    """Publish a new item."""
    body: dict[str, Any] = {"headline": headline, "urgency": urgency}
    for key, value in (
        ("source", source),
        ("link", link),
        ("ttl", ttl),
        ("expires_at", expires_at),
        ("embargoed_until", embargo),
    ):
        if value is not None:
            body[key] = value
    if region:
        body["regions"] = region
    if category:
        body["categories"] = category
    if hold:
        body["status"] = "withheld"
    item = _call(lambda c: c.request("POST", f"/channels/{channel}/items", json=body))
    _show(item, "posted", as_json)


@app.command("import")
def import_items(
    file: Annotated[str, typer.Argument(help="JSON Lines: a POST body per line; - is stdin.")],
    channel: Annotated[
        str, typer.Option("--channel", "-c", help='For lines without a "channel" field.')
    ] = "en",
    concurrency: Annotated[
        int, typer.Option(min=1, max=16, help="Requests in flight; above 1, order is lost.")
    ] = 1,
    stop_on_error: Annotated[
        bool, typer.Option("--stop-on-error", help="Stop at the first failed line.")
    ] = False,
) -> None:
    """Post items from a JSON Lines file, in file order; a re-run posts nothing twice."""
    from ticker.bulk import command
    from ticker.client import resolve

    code = command(
        file,
        channel=channel,
        concurrency=concurrency,
        stop_on_error=stop_on_error,
        server=resolve(load_settings()),
        out=out,
        err=err,
    )
    if code:
        raise typer.Exit(code)


@app.command()
def correct(
    uri: str,
    headline: Annotated[str | None, typer.Argument(help="The corrected headline.")] = None,
    channel: Channel = "en",
    urgency: Annotated[int | None, typer.Option("--urgency", "-u")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s")] = None,
    region: Annotated[list[str] | None, typer.Option("--region", "-r")] = None,
    category: Annotated[list[str] | None, typer.Option("--category")] = None,
    link: Annotated[str | None, typer.Option("--link", "-l")] = None,
    ttl: Annotated[str | None, typer.Option(help="New time on the ticker from now.")] = None,
    expires_at: Annotated[str | None, typer.Option()] = None,
    as_json: AsJson = False,
) -> None:
    """Correct an item: a new version replaces it everywhere."""
    body: dict[str, Any] = {}
    for key, value in (
        ("headline", headline),
        ("urgency", urgency),
        ("source", source),
        ("link", link),
        ("ttl", ttl),
        ("expires_at", expires_at),
        ("regions", region),
        ("categories", category),
    ):
        if value is not None:
            body[key] = value
    item = _call(lambda c: c.request("PATCH", f"/channels/{channel}/items/{uri}", json=body))
    _show(item, "corrected", as_json)


@app.command()
def hold(uri: str, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Withhold an item: it leaves every ticker until released."""
    item = _call(
        lambda c: c.request(
            "PATCH", f"/channels/{channel}/items/{uri}", json={"status": "withheld"}
        )
    )
    _show(item, "held", as_json)


@app.command()
def release(uri: str, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Release a withheld item."""
    item = _call(
        lambda c: c.request("PATCH", f"/channels/{channel}/items/{uri}", json={"status": "usable"})
    )
    _show(item, "released", as_json)


@app.command()
def kill(uri: str, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Kill an item: it is removed everywhere and never shows again."""
    item = _call(lambda c: c.request("DELETE", f"/channels/{channel}/items/{uri}"))
    _show(item, "killed", as_json)


@app.command()
def purge(
    uri: str,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit record; ≤ 500 chars).")],
    channel: Channel = "en",
    as_json: AsJson = False,
) -> None:
    """Purge an item (a legal takedown; needs a chief token): every text of it leaves Redis."""
    body = _call(
        lambda c: c.request(
            "POST", f"/channels/{channel}/items/{uri}/purge", json={"reason": reason}
        )
    )
    if as_json:
        out.print_json(json.dumps(body))
        return
    out.print(f"[green]purged[/green] {body['uri']} on [bold]{channel}[/bold]")


@app.command("ls")
def list_items(channel: Channel = "en", as_json: AsJson = False) -> None:
    """The items on the ticker now, newest first."""
    body = _call(lambda c: c.request("GET", f"/channels/{channel}/items"))
    if as_json:
        out.print_json(json.dumps(body))
        return
    table = Table(title=f"{channel}: {len(body['items'])} on the ticker")
    for column in ("uri", "u", "headline", "regions", "expires"):
        table.add_column(column)
    for item in body["items"]:
        table.add_row(
            item["uri"],
            str(item["urgency"]),
            Text(_line(item)),
            Text(",".join(item["regions"])),
            item["expires_at"][11:19],
        )
    out.print(table)


@app.command()
def history(
    channel: Channel = "en",
    limit: Annotated[int, typer.Option(help="Entries per page (1-500).")] = 50,
    before: Annotated[str | None, typer.Option(help="Page before this event id.")] = None,
    as_json: AsJson = False,
) -> None:
    """The recent-history buffer, newest first: corrections, holds, kills, expiries
    (with a token, the desk's view: every version and author)."""
    params: dict[str, Any] = {"history": "true", "limit": limit}
    if before:
        params["before"] = before
    body = _call(lambda c: c.request("GET", f"/channels/{channel}/items", params=params))
    if as_json:
        out.print_json(json.dumps(body))
        return
    table = Table(title=f"{channel}: history")
    for column in ("id", "event", "uri", "v", "status", "author", "headline"):
        table.add_column(column)
    for entry in body["items"]:
        event = entry["event"] + (f" ({entry['reason']})" if entry.get("reason") else "")
        table.add_row(
            entry["id"],
            event,
            entry["uri"],
            str(entry.get("version", "")),
            entry.get("status", ""),
            Text(entry.get("author", "")),
            Text(_line(entry)),
        )
    out.print(table)
    if body.get("next_before"):
        err.print(f"more: ticker history --channel {channel} --before {body['next_before']}")


@app.command()
def stats(as_json: AsJson = False) -> None:
    """Per channel: readers (every process), items live, history, last publish; then each
    process of the fleet: id, host, pid, readers, uptime."""
    body = _call(lambda c: c.request("GET", "/stats"))
    if as_json:
        out.print_json(json.dumps(body))
        return
    fleet = body.pop("_fleet", None)
    table = Table(title="ticker stats")
    for column in ("channel", "readers", "live", "history", "oldest", "last publish"):
        table.add_column(column)
    for name, info in body.items():
        table.add_row(
            name,
            str(info["readers"]),
            str(info["live"]),
            str(info["history"]),
            _when(info["oldest_id"]),
            _when(info["last_id"]),
        )
    out.print(table)
    if fleet is None:
        return
    processes = Table(title=f"{len(fleet['processes'])} processes, {fleet['readers']} readers")
    for column in ("process", "host", "pid", "readers", "uptime"):
        processes.add_column(column)
    for proc in fleet["processes"]:
        processes.add_row(
            proc["id"],
            Text(proc["host"]),
            str(proc["pid"]),
            str(proc["readers"]),
            _uptime(proc["uptime_s"]),
        )
    out.print(processes)


def _uptime(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _when(entry_id: str | None) -> str:
    """A stream ID's time, readable (IDs are milliseconds since the epoch)."""
    if not entry_id:
        return "-"
    moment = datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@app.command()
def tail(
    channel: Channel = "en",
    region: Annotated[list[str] | None, typer.Option("--region", "-r")] = None,
    category: Annotated[list[str] | None, typer.Option("--category")] = None,
    max_urgency: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Follow the live stream (reconnects and resumes by itself; Ctrl-C to stop)."""
    params: dict[str, Any] = {}
    if region:
        params["region"] = region
    if category:
        params["category"] = category
    if max_urgency:
        params["max_urgency"] = max_urgency
    from ticker.client import ClientError

    last_id: str | None = None
    with _client() as client:
        while True:
            try:
                for event in client.events(channel, params=params, last_event_id=last_id):
                    last_id = event.id or None
                    _print_event(event.event, json.loads(event.data))
                err.print("[dim]stream ended; reconnecting[/dim]")
            except ClientError as exc:
                err.print(f"[red]error:[/red] {escape(str(exc))}")
                if exc.status:
                    raise typer.Exit(1) from None
            except KeyboardInterrupt:
                raise typer.Exit(0) from None
            except Exception as exc:  # network drop mid-stream: resume from last_id
                err.print(f"[dim]connection lost ({exc.__class__.__name__}); reconnecting[/dim]")
            time.sleep(1)


def _print_event(kind: str, data: dict[str, Any]) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    if kind == "item":
        style = URGENCY_STYLE.get(data["urgency"], "")
        text = f"[{style}]{escape(_line(data))}[/{style}]" if style else escape(_line(data))
        out.print(
            f"{stamp} [bold]ITEM[/bold] u{data['urgency']} {text} "
            f"[dim]{data['uri']} v{data['version']}[/dim]"
        )
    elif kind == "remove":
        out.print(
            f"{stamp} [bold magenta]REMOVE[/bold magenta] {escape(data['uri'])} "
            f"({escape(data['reason'])})"
        )
    elif kind == "reset":
        out.print(f"{stamp} [bold cyan]RESET[/bold cyan] current items follow")


def main() -> None:
    app(prog_name="ticker")


if __name__ == "__main__":  # pragma: no cover
    main()
