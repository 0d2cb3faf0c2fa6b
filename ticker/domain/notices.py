"""Visible corrections and kill notices: what readers are told when an item changes or goes.

A correction marked as one (``notice: "corrected"``) sets the item's ``corrected_at``; the
widget shows "Updated" on it for the channel's ``correction_mark_s``. A kill may carry a
note ("Withdrawn: ..."): stored on the killed version for the desk, and sent to readers in
the ``remove`` event (the stream entry's ``notice`` field) where the channel says so.

Deliberate choices:
- Whether a kill's note is public is decided once, when the kill is written
  (``public_notice``), and kept in the entry: a replay, the public history and other
  services read the same answer, and turning ``kill_notices`` on later publishes no note
  that was written as the desk's alone.
- A note goes to readers only for an item on the air at the kill: one that was held,
  embargoed or expired was not on their screens, so there is nothing to replace.
- A note read back from a stream entry is input (``entry_notice``): one that is not one
  line of visible text within ``NOTICE_MAX`` is dropped, and the removal still goes out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import TypeAdapter, ValidationError

from ticker.domain.errors import Killed
from ticker.domain.models import Item, Notice, Status

_NOTICE = TypeAdapter(Notice)


class Edition(Protocol):
    """What a kill's note needs of its channel (``settings.Channel``)."""

    @property
    def kill_notices(self) -> bool: ...


def marked(item: Item, notice: str | None, now: datetime) -> Item:
    """The version a correction makes, marked as a correction when the editor said so
    (``corrected_at`` is its time); unmarked, it keeps the last mark."""
    if notice != "corrected":
        return item
    return item.model_copy(update={"corrected_at": now})


def public_notice(ch: Edition, current: Item, notice: str | None, now: datetime) -> str | None:
    """The note readers get with this kill, or ``None`` (it stays the desk's record)."""
    if notice is None or not ch.kill_notices or not current.visible_at(now):
        return None
    return notice


def check_rekill(current: Item, notice: str | None) -> None:
    """A kill of a killed item changes nothing; one that brings another note is refused
    (the note goes with the kill, and the kill is done)."""
    if current.status is Status.CANCELED and notice is not None and notice != current.notice:
        said = f"with the notice {current.notice!r}" if current.notice else "without a notice"
        raise Killed(
            f"item {current.uri!r} was already killed {said}; a notice can no longer be added"
            " or changed"
        )


def entry_notice(fields: dict[str, str]) -> str | None:
    """A ``remove`` entry's public note, checked like any input; ``None`` when it has none
    or it is not one line of visible text within the bound."""
    raw = fields.get("notice")
    if raw is None:
        return None
    try:
        return _NOTICE.validate_python(raw)
    except ValidationError:
        return None
