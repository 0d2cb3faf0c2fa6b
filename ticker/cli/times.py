"""Times as the ``ticker`` command prints them: for a script (``utc``, the one piped
format) and for the eye (``relative``: "in 5h 59m", "3m ago")."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(value: str | int | None) -> str:
    """The one time format of piped output: RFC 3339 in UTC with ``Z``, whole seconds
    (``-`` for none). ``value``: an RFC 3339 time in any zone and precision, or
    milliseconds since the epoch (token times, stream ids)."""
    if value is None or value in ("", "-"):
        return "-"
    if isinstance(value, int):
        moment = datetime.fromtimestamp(value / 1000, UTC)
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def id_utc(entry_id: str | None) -> str:
    """A stream ID's time (milliseconds since the epoch) in UTC."""
    return utc(int(entry_id.split("-")[0])) if entry_id else "-"


def id_relative(entry_id: str | None) -> str:
    """A stream ID's time, relative to now (IDs are milliseconds since the epoch)."""
    if not entry_id:
        return "-"
    moment = datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, tz=UTC)
    return relative(moment.isoformat())


def relative(timestamp: str) -> str:
    """An RFC 3339 time as "in 5h 59m" or "3m ago"; one reading, whatever the zone."""
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    seconds = round((moment - datetime.now(UTC)).total_seconds())
    span = _span(abs(seconds))
    if span == "0s":
        return "now"
    return f"in {span}" if seconds > 0 else f"{span} ago"


def _span(seconds: int) -> str:
    """4d 2h, 5h 59m, 12m, 40s: the two largest units."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if not parts:
        return f"{secs}s"
    return " ".join(parts[:2])


def uptime(seconds: float) -> str:
    """A process's uptime for the eye: 2h05m, 4m09s."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def minute(stamp: str) -> str:
    """A piped time (``utc``) cut to the minute for a table: 2026-01-05 14:03 UTC."""
    return stamp if stamp == "-" else stamp[:16].replace("T", " ") + " UTC"
