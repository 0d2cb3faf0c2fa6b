"""SSE frames: how an event becomes bytes on the wire, written by ticker itself.

Deliberate choices:
- ``id:`` and ``event:`` are checked, not sanitised (``streamid.valid_entry_id``; an event
  name is one of ours): sse-starlette, for one, strips CR/LF from IDs and lets NUL
  through, and a silently rewritten resume position would be a silent gap.
- ``data:`` is our own compact JSON, which escapes CR, LF and every other C0 control, so
  one event is always one ``data:`` line whatever another service wrote into the stream.
  (U+0085 and U+2028 stay literal: SSE lines end only at CR and LF.)
"""

from __future__ import annotations

import json
import random
from typing import Any

from ticker.domain.streamid import valid_entry_id

EVENT_NAMES = frozenset({"item", "remove", "reset"})
REMOVE_REASONS = frozenset({"kill", "withhold", "expire"})
# "filter" is only ever sent, never stored: a correction moved the item out of a
# reader's filter, so that reader drops the version it holds.
HEARTBEAT = b":\n\n"  # a comment, so proxies keep an idle stream open


def frame(event: str, entry_id: str, data: Any) -> bytes:
    """One SSE event. Refuses anything that could break the framing."""
    if event not in EVENT_NAMES:
        raise ValueError(f"unknown event name {event!r}")
    if entry_id and not valid_entry_id(entry_id):
        raise ValueError(f"invalid event id {entry_id!r}")
    text = (
        data
        if isinstance(data, str)
        else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    )
    if "\r" in text or "\n" in text:  # pragma: no cover - JSON never contains raw CR/LF
        raise ValueError("data must be one line")
    return f"event: {event}\nid: {entry_id}\ndata: {text}\n\n".encode("utf-8", "surrogatepass")


def retry_frame(ms: int) -> bytes:
    return f"retry: {int(ms)}\n\n".encode()


def last_retry_frame(ms: int, jitter_ms: int) -> bytes:
    """The ``retry:`` that ends a stream: ``ms`` plus up to ``jitter_ms`` at random, so
    the readers of a server that stops do not all come back at once."""
    return retry_frame(ms + random.randint(0, jitter_ms))


def reset_frame() -> bytes:
    # An empty id clears the browser's Last-Event-ID: a reader cut off in the middle of the
    # current items comes back without one and gets them all again, never a partial set.
    return frame("reset", "", "{}")
