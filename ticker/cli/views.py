"""``ticker ls``, ``queue``, ``history`` and ``audit``: listings of a channel, each printed
by ``listing.show`` (JSON, piped rows or a table)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Column, Table
from rich.text import Text

from ticker.cli.api import call
from ticker.cli.console import err
from ticker.cli.listing import Header, line, show, widest
from ticker.cli.options import AsJson, Channel
from ticker.cli.times import relative, utc

# Piped output's columns, in order (README, "Piped output"). `ls` has one more than its
# table: "pinned" is its own column, where the table marks the uri "(pinned)".
LS_COLUMNS = ("uri", "urgency", "headline", "regions", "expires_at", "pinned", "reach")
QUEUE_COLUMNS = ("uri", "status", "embargoed_until", "author", "updated_at", "headline", "note")
# What the queue calls an item that waits for sign-off, or was refused it.
QUEUE_WORDS = {"pending": "needs sign-off", "rejected": "rejected"}
HISTORY_COLUMNS = ("id", "event", "uri", "version", "status", "author", "reach", "headline")
AUDIT_COLUMNS = ("id", "action", "uri", "by", "at", "reason")


def list_items(channel: Channel = "en", as_json: AsJson = False, header: Header = False) -> None:
    """The items on the ticker now, newest first."""
    body = call(lambda c: c.request("GET", f"/channels/{channel}/items"))

    def rows() -> list[list[str]]:
        return [
            [
                i["uri"],
                str(i["urgency"]),
                line(i),
                ",".join(i["regions"]),
                utc(i["expires_at"]),
                "pinned" if i.get("pinned") else "-",
                str(i.get("reach", "-")),
            ]
            for i in body["items"]
        ]

    def tables() -> list[Table]:
        items = body["items"]
        pins = " (pinned)" if any(i.get("pinned") for i in items) else ""
        table = Table(
            Column("uri", no_wrap=True, min_width=widest(items, "uri") + len(pins)),
            "u",
            Column("headline", ratio=1),
            "regions",
            Column("expires", no_wrap=True),
            Column("reach", justify="right"),
            title=f"{channel}: {len(items)} on the ticker",
        )
        for item in items:
            table.add_row(
                item["uri"] + (" (pinned)" if item.get("pinned") else ""),
                str(item["urgency"]),
                Text(line(item)),
                Text(",".join(item["regions"])),
                relative(item["expires_at"]),
                str(item.get("reach", "-")),
            )
        return [table]

    show(body, as_json=as_json, header=header, columns=LS_COLUMNS, rows=rows, tables=tables)


def queue(channel: Channel = "en", as_json: AsJson = False, header: Header = False) -> None:
    """What waits: items that need sign-off, rejected ones (with the note), held and
    embargoed items, newest first.

    The desk's view: needs a token (any role).
    """
    body = call(lambda c: c.request("GET", f"/channels/{channel}/queue"))

    def rows() -> list[list[str]]:
        return [
            [
                i["uri"],
                i.get("queue_status") or i["status"],
                utc(i.get("embargoed_until")),
                i["author"],
                utc(i["updated_at"]),
                line(i),
                _rejection(i) or "-",
            ]
            for i in body["items"]
        ]

    def tables() -> list[Table]:
        items = body["items"]
        table = Table(
            Column("uri", no_wrap=True, min_width=widest(items, "uri")),
            *(
                Column(name, no_wrap=True)
                for name in ("status", "embargoed until", "author", "last change")
            ),
            Column("headline", ratio=1),
            title=f"{channel}: {len(items)} waiting",
        )
        for item in items:
            until = item.get("embargoed_until")
            why = _rejection(item)
            status = item.get("queue_status") or item["status"]
            table.add_row(
                item["uri"],
                QUEUE_WORDS.get(status, status),
                relative(until) if until else "-",
                Text(item["author"]),
                relative(item["updated_at"]),
                Text(line(item) + (f"\n{why}" if why else "")),
            )
        return [table]

    show(body, as_json=as_json, header=header, columns=QUEUE_COLUMNS, rows=rows, tables=tables)


def _rejection(item: dict[str, Any]) -> str:
    """A rejected item's note, with who wrote it; "" for others."""
    if item.get("status") != "rejected":
        return ""
    return f"rejected by {item.get('rejected_by')}: {item.get('rejection_note')}"


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
    body = call(lambda c: c.request("GET", f"/channels/{channel}/items", params=params))

    def rows() -> list[list[str]]:
        return [
            [
                entry["id"],
                entry["event"] + (f" ({entry['reason']})" if entry.get("reason") else ""),
                entry["uri"],
                str(entry.get("version", "")),
                entry.get("status", ""),
                entry.get("author", ""),
                str(entry.get("reach", "")),
                line(entry) if entry.get("headline") else "",
            ]
            for entry in body["items"]
        ]

    def tables() -> list[Table]:
        entries = body["items"]
        table = Table(
            Column("id", no_wrap=True, min_width=widest(entries, "id")),
            "event",
            Column("uri", no_wrap=True, min_width=widest(entries, "uri")),
            "v",
            "status",
            "author",
            Column("reach", justify="right"),
            Column("headline", ratio=1),
            title=f"{channel}: history",
        )
        for row in rows():
            table.add_row(*row[:5], Text(row[5]), row[6], Text(row[7]))
        return [table]

    show(body, as_json=as_json, header=header, columns=HISTORY_COLUMNS, rows=rows, tables=tables)
    if not as_json and body.get("next_before"):
        err.print(f"more: ticker history --channel {channel} --before {body['next_before']}")


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
    body = call(lambda c: c.request("GET", f"/channels/{channel}/audit", params=params))

    def rows() -> list[list[str]]:
        return [
            [r["id"], r["action"], r["uri"], r["by"], utc(r["at"]), r.get("reason") or "-"]
            for r in body["records"]
        ]

    def tables() -> list[Table]:
        records = body["records"]
        table = Table(
            Column("when", no_wrap=True),
            "action",
            Column("uri", no_wrap=True, min_width=widest(records, "uri")),
            "by",
            Column("reason", ratio=1),
            title=f"{channel}: {len(records)} kills, purges and sign-offs",
        )
        for row in rows():
            table.add_row(relative(row[4]), row[1], row[2], Text(row[3]), Text(row[5]))
        return [table]

    show(body, as_json=as_json, header=header, columns=AUDIT_COLUMNS, rows=rows, tables=tables)
    if not as_json and body.get("next_before"):
        err.print(f"more: ticker audit {channel} --before {body['next_before']}")
