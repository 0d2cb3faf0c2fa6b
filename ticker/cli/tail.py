"""``ticker tail``: the live stream, as lines for the eye or JSON Lines, resumed after
every drop."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from ticker.cli.api import client as open_client
from ticker.cli.console import err, exit_code, out, piped
from ticker.cli.listing import line
from ticker.cli.options import Categories, Channel, Regions
from ticker.cli.times import utc

URGENCY_STYLE = {1: "bold white on red", 2: "bold red", 3: "yellow", 4: "yellow"}


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

    from ticker.cli.client import ClientError, unreachable

    last_id: str | None = None
    delay = TAIL_RETRY_S[0]
    told = False  # "no service answers" is said once; then retries are quiet
    with open_client() as client:
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
        text = f"[{style}]{escape(line(data))}[/{style}]" if style else escape(line(data))
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
