"""Redis stream entry IDs: the SSE ``id:`` of every event and every resume position.

An ID is ``<milliseconds>-<sequence>``, each part an unsigned 64-bit number. Anything from
outside (``Last-Event-ID``, ``?before=``) is checked here before it becomes a command:
Redis refuses a part above 2**64 - 1 with an error, not with "unknown".
"""

from __future__ import annotations

import re

_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
ENTRY_ID_PART_MAX = 2**64 - 1


def valid_entry_id(value: str) -> bool:
    """A stream ID Redis accepts: ASCII digits, dash, ASCII digits, each part < 2**64."""
    if _ENTRY_ID.fullmatch(value) is None:
        return False
    ms, _, seq = value.partition("-")
    return int(ms) <= ENTRY_ID_PART_MAX and int(seq) <= ENTRY_ID_PART_MAX


def entry_key(entry_id: str) -> tuple[int, int]:
    """Stream IDs compare as (milliseconds, sequence)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def ms_id(ms: int) -> str:
    """The first possible ID of a millisecond."""
    return f"{ms}-0"
