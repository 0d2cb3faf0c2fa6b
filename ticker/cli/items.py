"""``ticker post`` and ``ticker correct``: an item's text in, and what became of it out.

Both talk to the HTTP API (TICKER_URL, TICKER_TOKEN), so validation and auth are the
same for every client.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from ticker.cli.api import call
from ticker.cli.console import err, exit_code, out
from ticker.cli.listing import line, print_json
from ticker.cli.options import (
    AsJson,
    Categories,
    Channel,
    Embargo,
    ExpiresAt,
    Link,
    Regions,
    Source,
    Ttl,
    Urgency,
    Uri,
)
from ticker.cli.times import relative

if TYPE_CHECKING:
    from ticker.cli.client import Client


def show_item(item: dict[str, Any], action: str, as_json: bool) -> None:
    """What a write made of an item, in one line (or the API's JSON reply)."""
    if as_json:
        print_json(item)
        return
    if item.get("changed") is False:
        action = "unchanged"  # it already was so: nothing written, nothing sent
    release = item.get("embargoed_until")
    held_back = f", embargoed until {release} ({relative(release)})" if release else ""
    # A killed item never shows again: its expiry means nothing to the editor.
    ends = "" if item["status"] == "canceled" else f", expires {relative(item['expires_at'])}"
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
    from ticker.cli.client import ClientError

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

    show_item(call(send), "posted", as_json)


def _duplicate(other: dict[str, Any]) -> None:
    """The item a post would duplicate, and how to post it all the same."""
    when = relative(str(other.get("created_at")))
    err.print(
        f"[red]error:[/red] not posted: {escape(str(other.get('author')))} posted the same "
        f"headline {'just now' if when == 'now' else when} as {escape(str(other.get('uri')))}"
        f" on {escape(str(other.get('channel')))}, status {other.get('status')}"
    )
    if other.get("headline"):
        err.print(f"  {escape(line(other))}", soft_wrap=True)
    err.print("  nothing was written; to post it anyway, run the same command with --force")


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
    from ticker.cli.client import ClientError

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

    show_item(call(send), "corrected", as_json)


def _stale(client: Client, path: str, base: int, seen: dict[str, Any], now: dict[str, Any]) -> None:
    """What changed since the version a correction was made from."""
    if not seen:  # --base-version: that version's text is in the item's history
        versions = client.request("GET", path).get("versions", [])
        seen.update(next((v for v in versions if v.get("version") == base), {}))
    err.print(
        f"[red]error:[/red] not corrected: {escape(now.get('uri', ''))} changed since v{base}; "
        f"it is now v{now.get('version')} by {escape(str(now.get('author')))} "
        f"({relative(str(now.get('updated_at')))}), status {now.get('status')}"
    )
    if seen.get("headline"):
        err.print(f"  v{base} (yours):   {escape(line(seen))}", soft_wrap=True)
    if now.get("headline"):
        err.print(f"  v{now.get('version')} (now):     {escape(line(now))}", soft_wrap=True)
    err.print("  nothing was written; correct the new version if you still want to")
