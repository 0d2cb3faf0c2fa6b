"""The item: what an editor sends (``ItemIn``, ``ItemPatch``) and what everyone reads (``Item``).

Field names are the public contract (README, docs/streams.md): add, never rename.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ticker.domain.duration import Duration
from ticker.domain.text import FORBIDDEN_CATEGORIES, one_line
from ticker.domain.when import WhenField

HEADLINE_MAX = 280
SOURCE_MAX = 80
REASON_MAX = 500
# A kill's public note is shown in place of the headline it replaces: the same bound.
NOTICE_MAX = HEADLINE_MAX
# Fields only the desk (a token for the channel) sees; anonymous readers never do. A
# kill's ``notice`` reaches readers only in the ``remove`` event, where the channel shows it.
# (An anonymous reader only ever sees headlines, so ``kind`` would tell it nothing, and
# leaving it out keeps every public reply and frame as it was, to the byte.)
DESK_ONLY = frozenset(
    {"author", "story", "kind", "notice", "approved_by", "rejected_by", "rejection_note"}
)
URGENCY_MOST, URGENCY_MAX = 1, 9  # 1 is a flash (IPTC ninjs)
SLUG_MAX = 32
# Pins per channel: a pinned item stays on the bar through live_max_items push-out.
PIN_MAX = 3
# Always used with fullmatch: "$" would also take a final "\n" ("europe\n").
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
URI = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class Status(StrEnum):
    USABLE = "usable"
    WITHHELD = "withheld"
    CANCELED = "canceled"
    # Sign-off (signoff.py): a post waiting for an editor's approval, and one refused.
    PENDING = "pending"
    REJECTED = "rejected"


class Kind(StrEnum):
    """What an item is for: a headline for the bar, or an advisory, a note for the desk
    and partners ("PM statement expected 18:30") that is never on air. Fixed at the post."""

    HEADLINE = "headline"
    ADVISORY = "advisory"


def _kind_fixed(value: object) -> object:
    raise ValueError(
        "an item's kind is fixed when it is posted: post a new item (and kill this one) instead"
    )


def _headline(value: str) -> str:
    return one_line(value, limit=HEADLINE_MAX)


def _source(value: str) -> str:
    return one_line(value, limit=SOURCE_MAX)


def _reason(value: str) -> str:
    return one_line(value, limit=REASON_MAX)


def _notice(value: str) -> str:
    return one_line(value, limit=NOTICE_MAX)


def _link(value: str) -> str:
    if len(value) > 2048:
        raise ValueError("must be at most 2048 characters")
    if any(ch.isspace() or unicodedata.category(ch) in FORBIDDEN_CATEGORIES for ch in value):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


def _slugs(values: list[str]) -> list[str]:
    if len(values) > 10:
        raise ValueError("at most 10 entries")
    seen: list[str] = []
    for v in values:
        if len(v) > SLUG_MAX or not SLUG.fullmatch(v):
            raise ValueError(
                f"{v!r} is not a slug (lowercase letters, digits, '-', at most {SLUG_MAX})"
            )
        if v not in seen:
            seen.append(v)
    return seen


def _story(value: str) -> str:
    if len(value) > SLUG_MAX or not SLUG.fullmatch(value):
        raise ValueError(
            f"{value[:40]!r} is not a slug (lowercase letters, digits, '-', at most {SLUG_MAX})"
        )
    return value


def _urgency(value: int) -> int:
    # Our words rather than pydantic's "greater than or equal to 1".
    if not URGENCY_MOST <= value <= URGENCY_MAX:
        raise ValueError(f"must be {URGENCY_MOST} (most urgent) to {URGENCY_MAX}")
    return value


def _language(value: str) -> str:
    if len(value) > 35 or not LANGUAGE.fullmatch(value):
        raise ValueError("must be a BCP 47 language tag such as 'en' or 'es-419'")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a time zone (RFC 3339, e.g. 2026-11-26T18:00:00Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("is out of range: in UTC it must fall in the years 1 to 9999") from None


Headline = Annotated[str, AfterValidator(_headline)]
Source = Annotated[str, AfterValidator(_source)]
Link = Annotated[str, AfterValidator(_link)]
Reason = Annotated[str, AfterValidator(_reason)]
Notice = Annotated[str, AfterValidator(_notice)]
Slugs = Annotated[list[str], AfterValidator(_slugs)]
Story = Annotated[str, AfterValidator(_story)]
Language = Annotated[str, AfterValidator(_language)]
Urgency = Annotated[int, Field(strict=True), AfterValidator(_urgency)]
Instant = Annotated[datetime, AfterValidator(_aware)]


class ItemIn(BaseModel):
    """The body of ``POST /channels/{channel}/items``."""

    model_config = ConfigDict(extra="forbid")

    headline: Headline
    source: Source | None = None
    urgency: Urgency = 5
    language: Language | None = None
    regions: Slugs = []
    categories: Slugs = []
    link: Link | None = None
    status: Literal["usable", "withheld"] = "usable"
    expires_at: Instant | None = None
    ttl: Duration | None = None
    embargoed_until: Instant | None = None
    # The same as ``embargoed_until`` as an editor types it (when.py): "30m" from now, a
    # clock time "18:30" in the channel's time zone, or a date and time (either, not both).
    embargo: WhenField | None = None
    pinned: Annotated[bool, Field(strict=True)] = False
    # Links this item to its editions on other channels (the same slug there).
    story: Story | None = None
    # Post it even if an item with the same headline was just posted (dupes.py). Not
    # stored on the item, and not part of an Idempotency-Key's request.
    force: Annotated[bool, Field(strict=True)] = False
    # An advisory is never on air (``Item.visible_at``); it cannot be pinned (newsroom/commit.py).
    kind: Kind = Kind.HEADLINE


class ItemPatch(BaseModel):
    """The body of ``PATCH /channels/{channel}/items/{uri}``: only the fields that change."""

    model_config = ConfigDict(extra="forbid")

    headline: Headline | None = None
    source: Source | None = None
    urgency: Urgency | None = None
    regions: Slugs | None = None
    categories: Slugs | None = None
    link: Link | None = None
    status: Literal["usable", "withheld"] | None = None
    expires_at: Instant | None = None
    ttl: Duration | None = None
    pinned: Annotated[bool, Field(strict=True)] | None = None
    # Set or move the embargo of an item that still waits for it; ``embargoed_until: null``
    # lifts it (the item goes on air now, unless held).
    embargoed_until: Instant | None = None
    embargo: WhenField | None = None
    # The version this change was made from (as ``If-Match: "v3"``): a newer one is 409.
    base_version: Annotated[int, Field(strict=True, ge=1)] | None = None
    # "corrected": a correction readers are told of (``corrected_at``, the widget's mark).
    notice: Literal["corrected"] | None = None

    # Never changes: any value is a 422 naming ``kind`` (rather than "unknown field").
    kind: Annotated[
        object,
        BeforeValidator(_kind_fixed),
        Field(description="Refused (422): an item's kind is fixed when it is posted."),
    ] = None


class KillIn(BaseModel):
    """The body of ``DELETE /channels/{channel}/items/{uri}`` (optional): a public note."""

    model_config = ConfigDict(extra="forbid")

    notice: Notice | None = None


class PurgeIn(BaseModel):
    """The body of ``POST /channels/{channel}/items/{uri}/purge``."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ApproveIn(BaseModel):
    """The body of ``POST /channels/{channel}/items/{uri}/approve`` (it may be empty)."""

    model_config = ConfigDict(extra="forbid")

    # The version approved (as ``If-Match: "v3"``): a newer one is 409 ``stale``.
    base_version: Annotated[int, Field(strict=True, ge=1)] | None = None


class RejectIn(ApproveIn):
    """The body of ``POST /channels/{channel}/items/{uri}/reject``: why, for the author."""

    note: Reason


class Item(BaseModel):
    """One version of an item, as stored, streamed and returned by the API."""

    model_config = ConfigDict(extra="ignore")

    id: str = ""
    uri: str
    channel: str
    version: int = Field(ge=1)
    headline: str
    source: str | None = None
    urgency: int = 5
    language: str
    regions: list[str] = []
    categories: list[str] = []
    link: str | None = None
    status: Status = Status.USABLE
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    embargoed_until: datetime | None = None
    pinned: bool = False
    story: str | None = None
    author: str
    # The time of the last correction marked as one (``notice: "corrected"``).
    corrected_at: datetime | None = None
    # A kill's note ("Withdrawn: ..."), on the killed version; the desk's record.
    notice: str | None = None
    # Sign-off (the desk's; absent in entries written before it: ``None``). Kept on the
    # versions after it, so an item says who signed it off.
    approved_by: str | None = None
    rejected_by: str | None = None
    rejection_note: str | None = None
    # Absent in entries written before advisories: a headline.
    kind: Kind = Kind.HEADLINE

    def visible_at(self, now: datetime) -> bool:
        """On the ticker: a headline, usable, released from embargo, not yet expired."""
        if self.status is not Status.USABLE or self.expires_at <= now or self.advisory:
            return False
        return self.embargoed_until is None or self.embargoed_until <= now

    def waiting_for(
        self, now: datetime
    ) -> Literal["pending", "rejected", "withheld", "embargoed"] | None:
        """Why an item is in the desk's queue: a sign-off to come (``pending``) or refused
        (``rejected``: listed, with its note, until it expires or is withdrawn), a hold (an
        editor must release it, whatever its embargo), or an embargo still to come;
        ``None``: it is not waiting. An advisory waits for no air (the desk lists it with
        the advisories), but a contributor's still waits for sign-off: partners read it."""
        if self.expires_at <= now or self.status is Status.CANCELED:
            return None
        if self.status is Status.PENDING:
            return "pending"
        if self.status is Status.REJECTED:
            return "rejected"
        if self.advisory:
            return None
        if self.status is Status.WITHHELD:
            return "withheld"
        if self.embargoed_until is not None and self.embargoed_until > now:
            return "embargoed"
        return None

    def public_at(self, now: datetime) -> bool:
        """What anonymous readers may read: on the ticker now, or it was and its time
        ran out. Never while held, embargoed or after a kill, and never an advisory."""
        if self.status is not Status.USABLE or self.advisory:
            return False
        return self.embargoed_until is None or self.embargoed_until <= now

    @property
    def advisory(self) -> bool:
        return self.kind is Kind.ADVISORY

    def public(self) -> dict[str, Any]:
        """The JSON-ready item for anonymous readers."""
        return self.model_dump(mode="json", exclude=set(DESK_ONLY))

    def public_json(self) -> str:
        return self.model_dump_json(exclude=set(DESK_ONLY))


def utcnow() -> datetime:
    return datetime.now(UTC)
