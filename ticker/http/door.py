"""What the app hands to the protocols that take its connections (``front.py``,
``protocol.py``), through the lifespan state, and the names of the two scope extensions
they hand back to the app."""

from __future__ import annotations

from dataclasses import dataclass

from ticker.http.deadline import HeadDeadlines
from ticker.http.rules import Rules
from ticker.http.streams import NativeStreams

# The lifespan state key under which the app leaves its ``Door`` for the protocols.
DOOR = "ticker.door"
# Scope extensions: the connection under a streaming response (``fanout.socket.Socket``),
# and the verdict of the protocol that parsed the request (``rules.judge``), so the app
# does not judge it again.
SOCKET = "ticker.socket"
VERDICT = "ticker.verdict"


@dataclass(frozen=True, slots=True)
class Door:
    rules: Rules
    deadlines: HeadDeadlines
    # Streams served by the protocol itself; None with TICKER_DIRECT_WRITES=false.
    streams: NativeStreams | None
