"""What a write says: ``Change`` (one atomic commit) and its parts. Each field is named as
commit.lua's ARGV is, so the script's arguments are read off the change by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SCHEMA_VERSION = "1"
# A stream entry's ``type`` and its ``reason`` (docs/streams.md): a removal's, or
# ``release`` on the ``item`` entry of an embargo release (the same version, told apart).
EventType = Literal["item", "remove"]
Reason = Literal["kill", "withhold", "expire", "release"]
# The changes the channel's audit list records besides purges.
Audited = Literal["", "kill", "approve", "reject"]
# The two schedules a sweeper claims from.
Schedule = Literal["expiry", "embargo"]
# The audit list keeps this many records per channel (kills, purges and sign-offs: years).
AUDIT_MAX_ITEMS = 100_000


@dataclass(frozen=True, slots=True)
class HeadlineNote:
    """A post's part in the duplicate rule (dupes.py): ``digest`` (of its normal headline)
    is noted as posted at ``at_ms``; with ``check``, the post is refused instead when an
    item was noted under the same digest within ``window_ms`` (``ignore``: that one's uri
    does not count)."""

    digest: str
    at_ms: int
    window_ms: int
    check: bool = True
    ignore: str = ""


# A change without a headline note: no digest, nothing checked or noted.
NO_NOTE = HeadlineNote(digest="", at_ms=0, window_ms=0, check=False)


@dataclass(frozen=True, slots=True)
class Change:
    """One atomic write: the event to append and what it does to the item's state."""

    uri: str
    expected_version: int
    event_type: EventType
    body: str  # the item's JSON without ``id``
    history_max_items: int
    live_max_items: int
    versions_ttl_ms: int
    reason: Reason | Literal[""] = ""
    live_score: int | None = None  # on the ticker (created ms), or off it
    expires_ms: int | None = None  # in the expiry schedule, or not
    embargo_ms: int | None = None  # waiting for release, or not
    held_ms: int | None = None  # withheld (in the queue), or not
    pin: bool = False  # holds one of the channel's pins, or not
    pin_max: int = 3
    idempotency: tuple[str, str] | None = None  # (key, request fingerprint)
    idempotency_ttl_s: int = 86400
    claim: Schedule | Literal[""] = ""  # only commit if this process wins the claim
    keep_state: bool = False  # an event about the item that makes no new version
    audited: Audited = ""  # recorded in the channel's audit list
    headline: HeadlineNote | None = None  # a post's duplicate check and note (dupes.py)
    notice: str | None = None  # a kill's note for readers: the entry's ``notice`` field
