"""The record, read: what is on the ticker, one item and its versions, the history, and
a returning reader's replay. Two audiences read it (README, "Two audiences"): the desk
(a token for the channel) sees everything; anonymous readers only what is or was on air.

``Desk`` (newsroom/) writes the record; this module only reads it, through ``Store``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ticker.domain.errors import NotFound
from ticker.domain.events import (
    BadEntry,
    Event,
    decode,
    desk_decode,
    entry_item,
    remove_data,
    skipped,
)
from ticker.domain.models import Item, Kind, Status, utcnow
from ticker.domain.streamid import entry_key, valid_entry_id
from ticker.settings import Channel, Settings
from ticker.store import Entry, Store


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Archive:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    def channel(self, name: str) -> Channel:
        return self._settings.known_channel(name)

    async def history(
        self, channel: str, *, before: str | None, limit: int, desk_view: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The replay buffer, newest first, and the cursor for the next page.

        The desk's view (``desk_view``) is every version and removal, with authors and
        reasons. Anonymous readers get only what readers received live: an ``item`` entry
        that was on the ticker when it was written, and never the text of an item that is
        now held, killed or purged; removals as ``{uri, reason}``; no authors.
        Entries older than ``history_max_age`` are never handed out, even where trimming
        has not caught up yet. The cursor is the last entry read, so a page that skipped
        entries still pages on; it is ``None`` only where the history ends.
        """
        ch = self.channel(channel)
        oldest = entry_key(f"{_ms(utcnow() - ch.history_max_age)}-0")
        page: list[dict[str, Any]] = []
        # One entry more than the page: whether anything older is left, in one round trip.
        entries = await self._store.stream.history(channel, before=before, count=limit + 1)
        current: dict[str, Item | None] = {}
        if not desk_view:
            uris = sorted({e.fields.get("uri", "") for e in entries[:limit]} - {""})
            for uri, raw in (await self._store.items.many(channel, uris)).items():
                current[uri] = _parse(raw)
        now = utcnow()
        for entry in entries[:limit]:
            if entry_key(entry.id) < oldest:
                return page, None
            row = _history_row(entry.id, entry.fields, channel)
            if row is None:
                continue  # another writer's mistake: not part of the record
            if not desk_view:
                row = _public_row(row, entry, current.get(row["uri"]), now)
                if row is None:
                    continue
            page.append(row)
        if desk_view and page:
            reach = await self.reach(channel, [row["uri"] for row in page])
            for row in page:
                row["reach"] = reach.get(row["uri"], 0)
        # The cursor is the position reached, not the page's size: a skipped entry must
        # not end the paging early.
        more = len(entries) > limit and entry_key(entries[limit].id) >= oldest
        return page, entries[limit - 1].id if more else None

    async def audit(
        self, channel: str, *, before: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Kills, purges, approvals and rejections, newest first: who, when, which uri, and
        a purge's reason or a rejection's note; never the item's text. The cursor for the
        next page, or ``None`` where the list ends."""
        self.channel(channel)
        entries = await self._store.items.audit(channel, before=before, count=limit + 1)
        rows = [
            {
                "id": e.id,
                "action": e.fields.get("action", ""),
                "uri": e.fields.get("uri", ""),
                "by": e.fields.get("by", ""),
                "at": e.fields.get("at", ""),
                "reason": e.fields.get("reason"),
            }
            for e in entries[:limit]
        ]
        return rows, entries[limit - 1].id if len(entries) > limit else None

    async def resumable(self, channel: str, last_event_id: str) -> bool:
        """Can a reader be sent exactly the events after this ID? (Else: ``reset``.)"""
        ch = self.channel(channel)
        if not valid_entry_id(last_event_id):
            return False
        if entry_key(last_event_id)[0] < _ms(utcnow() - ch.history_max_age):
            return False  # older than the history rule, even if trimming left it in Redis
        return await self._store.stream.knows(channel, last_event_id)

    async def after(
        self, channel: str, after: str, count: int, *, desk_view: bool = False
    ) -> tuple[list[Event], str, bool]:
        """The events after ``after`` as readers get them (at most ``count`` entries
        read), the last entry ID read, and whether there may be more. An ``item`` event
        whose item is now held, killed or purged is left out: a returning reader never
        gets that text, only the removal that followed it. The desk's view
        (``desk_view``): every entry, as a token's stream has it."""
        page = await self._store.stream.range_after(channel, after, count)
        if not page:
            return [], after, False
        if desk_view:
            decoded = (desk_decode(e.id, e.fields, channel) for e in page)
            return [ev for ev in decoded if ev is not None], page[-1].id, len(page) == count
        uris = sorted({e.fields.get("uri", "") for e in page if e.fields.get("type") == "item"})
        records = await self._store.items.many(channel, [u for u in uris if u])
        now = utcnow()
        events = []
        for entry in page:
            # (No record: an entry another service wrote; a purged item has no entries.)
            record = (
                records.get(entry.fields.get("uri", ""))
                if entry.fields.get("type") == "item"
                else None
            )
            current = _parse(record) if record is not None else None
            if record is not None and (current is None or not current.public_at(now)):
                continue
            event = decode(entry.id, entry.fields, channel, now)
            if event is not None:
                events.append(event)
        return events, page[-1].id, len(page) == count

    async def versions(self, channel: str, uri: str) -> list[Item]:
        """Every version of an item, oldest first: who changed what, and when."""
        await self.get(channel, uri)
        return [Item.model_validate_json(v) for v in await self._store.items.versions(channel, uri)]

    async def get(self, channel: str, uri: str) -> Item:
        self.channel(channel)
        raw = await self._store.items.get(channel, uri)
        if raw is None:
            raise NotFound(f"no item {uri!r} in channel {channel!r}")
        return Item.model_validate_json(raw)

    async def reach(self, channel: str, uris: list[str]) -> dict[str, int]:
        """Readers each item was delivered to, over every process (the desk's view)."""
        return await self._store.items.reach(channel, sorted(set(uris)))

    async def editions(self, story: str, channels: list[str]) -> list[Item]:
        """Every edition of a story on these channels (the desk's view), newest first."""
        found = []
        for channel in channels:
            found += [i for i in map(_parse, await self._store.items.story(channel, story)) if i]
        found.sort(key=lambda i: i.created_at, reverse=True)
        return found

    async def queue(self, channel: str) -> list[Item]:
        """What waits for the desk, newest first: held items and embargoed items (the
        desk's view only)."""
        self.channel(channel)
        now = utcnow()
        items = [i for i in map(_parse, await self._store.items.queue(channel)) if i is not None]
        waiting = [i for i in items if i.waiting_for(now) is not None]
        waiting.sort(key=lambda i: i.created_at, reverse=True)
        return waiting

    async def alive(self, channel: str) -> tuple[str, list[Item]]:
        """The desk's current items (its view only), read atomically with the stream
        position they stand at: every item not killed and not expired, whatever else
        (on air, held, embargoed, an advisory), oldest change first. Not the items that
        ``live_max_items`` pushed off the ticker: they are gone from it, as expired."""
        self.channel(channel)
        position, raw = await self._store.stream.alive(channel)
        now = utcnow()
        items = [i for i in map(_parse, raw) if i is not None]
        alive = [i for i in items if i.status is not Status.CANCELED and i.expires_at > now]
        alive.sort(key=lambda i: entry_key(i.id))
        return position, alive

    async def advisories(self, channel: str) -> list[Item]:
        """The channel's advisories now (the desk's view only), newest first."""
        _, items = await self.alive(channel)
        found = [i for i in items if i.advisory]
        found.sort(key=lambda i: i.created_at, reverse=True)
        return found

    async def current(self, channel: str) -> tuple[str, list[Item]]:
        """The stream position and the items on the ticker now: pinned ones first, then
        oldest change first."""
        self.channel(channel)
        position, raw = await self._store.stream.snapshot(channel)
        now = utcnow()
        items = []
        for text in raw:
            try:
                items.append(Item.model_validate_json(text))
            except ValueError as exc:  # only ticker writes the hash; if not, skip, go on
                skipped("items", {"item": text}, channel, exc)
        visible = [i for i in items if i.visible_at(now)]
        # Pinned items first (they lead the bar), then oldest change first.
        visible.sort(key=lambda i: (not i.pinned, entry_key(i.id)))
        return position, visible


def _parse(raw: str) -> Item | None:
    try:
        return Item.model_validate_json(raw)
    except ValueError:
        return None


def _history_row(entry_id: str, fields: dict[str, str], channel: str) -> dict[str, Any] | None:
    try:
        row = entry_item(entry_id, fields, channel).model_dump(mode="json")
    except BadEntry as exc:
        skipped(entry_id, fields, channel, exc)
        return None
    row["channel"] = channel  # whatever another writer claimed
    row["event"] = fields.get("type", "")
    row["reason"] = fields.get("reason") or None
    return row


def _public_row(
    row: dict[str, Any], entry: Entry, current: Item | None, now: datetime
) -> dict[str, Any] | None:
    """A history row as anonymous readers may see it, or ``None``."""
    if row["event"] == "remove":
        if row.get("kind") == Kind.ADVISORY:
            return None  # never on air: no live reader got its removal either
        # What a live reader got: which item left, and why (a kill's note with it, where
        # readers got one); never the text.
        return {
            "id": entry.id,
            "uri": row["uri"],
            "channel": row["channel"],
            "event": "remove",
            **remove_data(row["uri"], row["reason"], entry.fields),
        }
    if row["event"] != "item" or current is None or not current.public_at(now):
        return None  # purged, or now held or killed: its text is the desk's alone
    written = datetime.fromtimestamp(entry_key(entry.id)[0] / 1000, UTC)
    item = Item.model_validate(row)
    if not item.visible_at(written):
        return None  # held, embargoed or already expired when written: nobody saw it
    return {**item.public(), "event": "item", "reason": None}
