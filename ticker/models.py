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

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ticker.duration import Duration

HEADLINE_MAX = 280
SOURCE_MAX = 80
REASON_MAX = 500
URGENCY_MOST, URGENCY_LEAST = 1, 9
# Fields only the desk (a token for the channel) sees; anonymous readers never do.
DESK_ONLY = frozenset({"author"})
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
URI = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Categories a one-line text must not contain: controls (CR, LF, NUL, C1 such as NEL),
# lone surrogates (not encodable), and the Unicode line and paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
# A headline of only these (spaces, direction marks, joiners) shows as nothing.
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Cf", "Mn", "Me"})


class Status(StrEnum):
    USABLE = "usable"
    WITHHELD = "withheld"
    CANCELED = "canceled"


def _one_line(value: str, *, limit: int) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty or only whitespace")
    if len(value) > limit:
        raise ValueError(f"must be at most {limit} characters (got {len(value)})")
    if all(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in value):
        raise ValueError("must contain visible text, not only spaces or format marks")
    for ch in value:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise ValueError(
                f"must be one line of text: control or line-break character U+{ord(ch):04X}"
                " is not allowed"
            )
    return value


def _headline(value: str) -> str:
    return _one_line(value, limit=HEADLINE_MAX)


def _source(value: str) -> str:
    return _one_line(value, limit=SOURCE_MAX)


def _reason(value: str) -> str:
    return _one_line(value, limit=REASON_MAX)


def _link(value: str) -> str:
    if len(value) > 2048:
        raise ValueError("must be at most 2048 characters")
    if any(ch.isspace() or unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in value):
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
        if len(v) > 32 or not SLUG.match(v):
            raise ValueError(f"{v!r} is not a slug (lowercase letters, digits, '-', at most 32)")
        if v not in seen:
            seen.append(v)
    return seen


def _urgency(value: int) -> int:
    # Our words rather than pydantic's "greater than or equal to 1".
    if not URGENCY_MOST <= value <= URGENCY_LEAST:
        raise ValueError(f"must be {URGENCY_MOST} (most urgent) to {URGENCY_LEAST}")
    return value


def _language(value: str) -> str:
    if len(value) > 35 or not LANGUAGE.match(value):
        raise ValueError("must be a BCP 47 language tag such as 'en' or 'es-419'")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a time zone (RFC 3339, e.g. 2026-11-26T18:00:00Z)")
    return value.astimezone(UTC)


Headline = Annotated[str, AfterValidator(_headline)]
Source = Annotated[str, AfterValidator(_source)]
Link = Annotated[str, AfterValidator(_link)]
Reason = Annotated[str, AfterValidator(_reason)]
Slugs = Annotated[list[str], AfterValidator(_slugs)]
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


class PurgeIn(BaseModel):
    """The body of ``POST /channels/{channel}/items/{uri}/purge``."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


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
    author: str

    def visible_at(self, now: datetime) -> bool:
        """On the ticker: usable, released from embargo, not yet expired."""
        if self.status is not Status.USABLE or self.expires_at <= now:
            return False
        return self.embargoed_until is None or self.embargoed_until <= now

    def public_at(self, now: datetime) -> bool:
        """What anonymous readers may read: on the ticker now, or it was and its time
        ran out. Never while held, embargoed or after a kill."""
        if self.status is not Status.USABLE:
            return False
        return self.embargoed_until is None or self.embargoed_until <= now

    def public(self) -> dict[str, Any]:
        """The JSON-ready item for anonymous readers."""
        return self.model_dump(mode="json", exclude=set(DESK_ONLY))

    def public_json(self) -> str:
        return self.model_dump_json(exclude=set(DESK_ONLY))


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
