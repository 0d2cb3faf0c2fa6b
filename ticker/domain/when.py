"""When an embargo ends, as an editor types it: a duration from now (``30m``, ``1h30m``,
seconds, ISO 8601), a clock time in the channel's time zone (``18:30``, ``18:30:00``: the
next one, today or tomorrow), or a date and time (RFC 3339; without an offset, in the
channel's time zone).

One rule, one place: the API parses the ``embargo`` field with ``parse_when`` and the desk
resolves it against the channel (``When.resolve``); the CLI and the web desk send what the
editor typed. Channel time zones are looked up here too (``time_zone``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import PlainSerializer, PlainValidator

from ticker.domain.duration import looks_like_duration, parse_duration

FORMS = "a duration (30m, 2h), a clock time (18:30) or an RFC 3339 time (2026-12-01T18:30:00Z)"
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
# A date and a time: "2026-12-01T18:30", with seconds, fractions and an offset or "Z".
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}.*")


@dataclass(frozen=True, slots=True)
class When:
    """One of the three forms, parsed; ``text`` is what the editor typed."""

    text: str
    after: timedelta | None = None
    clock: time | None = None
    at: datetime | None = None  # naive: in the channel's time zone

    def resolve(self, now: datetime, zone: tzinfo) -> datetime:
        """The moment meant, in UTC, for a channel in ``zone`` at ``now``."""
        try:
            if self.after is not None:
                return now + self.after
            if self.at is not None:
                at = self.at if self.at.tzinfo is not None else self.at.replace(tzinfo=zone)
                return at.astimezone(UTC)
            assert self.clock is not None
            local = now.astimezone(zone)
            # The next one: today, or tomorrow once today's has passed. In a daylight-saving
            # gap or overlap, zoneinfo's first reading (fold=0).
            moment = datetime.combine(local.date(), self.clock, tzinfo=zone)
            if moment <= local:
                moment = datetime.combine(local.date() + timedelta(days=1), self.clock, zone)
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{self.text[:40]!r} is out of range; use {FORMS}") from None


def parse_when(value: Any) -> When:
    """Parse what an editor typed; a ``ValueError`` that names every accepted form."""
    if isinstance(value, When):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return When(str(value), after=parse_duration(value))
    if not isinstance(value, str):
        raise ValueError(f"must be {FORMS}, as a string")
    text = value.strip()
    clock = _CLOCK.fullmatch(text)
    if clock:
        hour, minute, second = (int(part or 0) for part in clock.groups())
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"{text!r} is not a clock time (00:00 to 23:59:59); use {FORMS}")
        return When(text, clock=time(hour, minute, second))
    if _DATE_TIME.fullmatch(text):
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not an RFC 3339 time; use {FORMS}") from None
        return When(text, at=at)
    if looks_like_duration(text):
        try:
            return When(text, after=parse_duration(text))
        except ValueError as exc:
            said = str(exc) if repr(text[:40]) in str(exc) else f"{text[:40]!r}: {exc}"
            raise ValueError(f"{said}; use {FORMS}") from None
    raise ValueError(f"{text[:40]!r} is not {FORMS}")


def time_zone(name: str) -> tzinfo:
    """An IANA time zone by name (``UTC`` needs no time zone database)."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name[:64]!r} is not an IANA time zone name (e.g. UTC, Europe/Amsterdam,"
            " America/New_York)"
        ) from None


WhenField = Annotated[
    When,
    PlainValidator(parse_when),
    PlainSerializer(lambda when: when.text, return_type=str),
]
