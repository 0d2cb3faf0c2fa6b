"""``ticker hold``, ``release``, ``pin``, ``unpin``, ``kill``, ``approve``, ``reject`` and
``purge``: an item's state changed, its text left as it is."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from ticker.cli.api import call
from ticker.cli.console import err, exit_code, out
from ticker.cli.items import show_item
from ticker.cli.listing import print_json
from ticker.cli.options import AsJson, Channel, Uri
from ticker.cli.times import relative


def hold(uri: Uri, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Withhold an item: it leaves every ticker until released."""
    _patch(channel, uri, {"status": "withheld"}, "held", as_json)


def release(uri: Uri, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Put an item on air now: lift its hold and its embargo."""
    _patch(channel, uri, {"status": "usable", "embargoed_until": None}, "released", as_json)


def pin(uri: Uri, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Pin an item: it stays on the bar, first, until unpinned, killed or expired.

    Needs a chief token; at most 3 pins per channel.
    """
    _patch(channel, uri, {"pinned": True}, "pinned", as_json)


def unpin(uri: Uri, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Unpin an item: it takes its turn on the bar again. Needs a chief token."""
    _patch(channel, uri, {"pinned": False}, "unpinned", as_json)


def _patch(channel: str, uri: str, change: dict[str, Any], action: str, as_json: bool) -> None:
    """One change to an item's state, and what it made of the item."""
    path = f"/channels/{channel}/items/{uri}"
    show_item(call(lambda c: c.request("PATCH", path, json=change)), action, as_json)


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
        show_item(call(lambda c: c.request("DELETE", path, json=note)), "killed", as_json)
        return
    params = {"all_editions": "true"}
    body = call(lambda c: c.request("DELETE", path, json=note, params=params))
    if as_json:
        print_json(body)
    else:
        for item in body["killed"]:
            show_item(item, "killed", False)
    for miss in body["refused"]:
        err.print(
            f"[red]error:[/red] not killed: {miss['uri']} on {escape(miss['channel'])} "
            f"({miss['status']} {escape(miss['error'])})"
        )
    if body["refused"]:
        raise typer.Exit(exit_code(int(body["refused"][0]["status"])))


def approve(uri: Uri, channel: Channel = "en", as_json: AsJson = False) -> None:
    """Sign off an item that waits: on air now, or at its embargo. Needs an editor token."""
    path = f"/channels/{channel}/items/{uri}/approve"
    show_item(call(lambda c: c.request("POST", path)), "approved", as_json)


def reject(
    uri: Uri,
    note: Annotated[str, typer.Option(help="Why, for its author (one line, ≤ 500 chars).")],
    channel: Channel = "en",
    as_json: AsJson = False,
) -> None:
    """Reject an item that waits: it never goes on air; its author reads the note in the
    queue. Needs an editor token."""
    path = f"/channels/{channel}/items/{uri}/reject"
    show_item(call(lambda c: c.request("POST", path, json={"note": note})), "rejected", as_json)


def purge(
    uri: Uri,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit record; ≤ 500 chars).")],
    channel: Channel = "en",
    as_json: AsJson = False,
) -> None:
    """Purge an item: a legal takedown, every text of it leaves Redis.

    Needs a chief token.
    """
    body = call(
        lambda c: c.request(
            "POST", f"/channels/{channel}/items/{uri}/purge", json={"reason": reason}
        )
    )
    if as_json:
        print_json(body)
        return
    out.print(f"[green]purged[/green] {body['uri']} on [bold]{channel}[/bold]")
    disk = body.get("disk") or {}
    if disk.get("rewrite_due_at"):
        due = disk["rewrite_due_at"]
        out.print(f"its text leaves Redis's append-only file: rewrite due {relative(due)}")
    elif disk.get("aof") == "off":
        out.print("Redis keeps no append-only file: nothing on disk to rewrite")
