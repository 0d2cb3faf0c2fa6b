"""Human durations as editors type them: ``90s``, ``30m``, ``6h``, ``1h30m``, ``2d``.

Also accepted: a whole number of seconds, or ISO 8601 (``PT30M``). Always positive.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, TypeAdapter

# ASCII digits, a bounded number of them: "\d" and str.isdigit also take "٣" and "²".
_PART = re.compile(r"([0-9]{1,12})(d|h|m|s)")
_WHOLE = re.compile(r"(?:[0-9]{1,12}[dhms])+")
_SECONDS = re.compile(r"[0-9]{1,12}")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_ISO = TypeAdapter(timedelta)


def parse_duration(value: Any) -> timedelta:
    """Parse a duration; raise ``ValueError`` with a message an editor can act on."""
    try:
        return _parse(value)
    except OverflowError:
        raise ValueError(f"{str(value)[:40]!r} is far too long a duration") from None


def _parse(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValueError("must be a duration such as '90s', '30m', '6h' or '2d'")
    elif isinstance(value, int | float):
        result = timedelta(seconds=value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if _WHOLE.fullmatch(text):
            result = timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in _PART.findall(text)))
        elif _SECONDS.fullmatch(text):
            result = timedelta(seconds=int(text))
        elif text.startswith(("p", "-p")):
            try:
                result = _ISO.validate_python(value.strip().upper())
            except ValueError:
                raise ValueError(f"{value!r} is not a valid ISO 8601 duration") from None
        else:
            raise ValueError(
                f"{value!r} is not a duration; use e.g. '90s', '30m', '6h', '1h30m' or '2d'"
            )
    else:
        raise ValueError("must be a duration such as '90s', '30m', '6h' or '2d'")
    if result <= timedelta(0):
        raise ValueError("must be greater than zero")
    return result


def looks_like_duration(text: str) -> bool:
    """Spelled as a duration (``30m``, ``90``, ``PT1H``), whether or not its value is valid."""
    text = text.strip().lower()
    return bool(_WHOLE.fullmatch(text) or _SECONDS.fullmatch(text)) or text.startswith("p")


def format_duration(value: timedelta) -> str:
    """The shortest editor-style spelling: ``timedelta(hours=6)`` -> ``6h``."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
