"""Who is at the other end of a request: the peer, or, behind a proxy ticker trusts
(``TICKER_FORWARDED_ALLOW_IPS``), the client that proxy names in ``X-Forwarded-For``.

One pure function, ``client_address``, that every door calls: the front protocol
(``front.py``) and uvicorn's protocol (``protocol.py``) for a stream they serve
themselves, and the app (``app.Streams``) for everything else, which puts the answer in
the scope's ``client`` for the routes and the access line. The per-address reader cap
(``TICKER_MAX_READERS_PER_IP``) and the logs see only what it returns.

The rule is uvicorn's (``--forwarded-allow-ips``, its ``ProxyHeadersMiddleware``):

1. A peer that is not trusted is the client, whatever headers it sends.
2. From a trusted peer, every ``X-Forwarded-For`` header is read, in order, as one list.
   Each proxy appends the address it had the request from, so the list is walked from
   the right: a trusted address is a proxy of ours, and the first one that is not is
   the client. When all are trusted, the leftmost is.
3. ``*`` trusts every peer and every address, so the leftmost entry wins: anyone can
   claim any address. Only for a listener that nothing but the proxy can reach.

Deliberate choices (read before "fixing"):
- The default trusts nobody (uvicorn's trusts 127.0.0.1): anything on the host could
  claim any address, and ticker trusted no header before this setting existed.
- An entry that is not an IP address (garbage, ``unknown``, a host name, an IPv6 zone)
  ends the walk: the client is the last address we could vouch for, the hop that wrote
  it. uvicorn takes the garbage itself as the address; a per-address cap keyed by a
  string the client chooses would be no cap.
- At most ``MAX_HOPS`` entries are read, from the right (a denial-of-service guard: a
  16 KiB header holds a thousand). Past them, the client is the last trusted hop read.
- Addresses are written one way (``2001:DB8::1`` is ``2001:db8::1``, the IPv4-mapped
  ``::ffff:192.0.2.1`` is ``192.0.2.1``), so nobody gets a second slot by spelling. A
  forwarded client's port is 0 (few proxies send one, and nothing here reads it).
- ``X-Forwarded-Proto`` is not read: ticker builds no absolute URL (its redirects and
  ``Location`` headers are relative), so the scheme changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from ticker.domain.proxies import Proxies

Client = tuple[str, int]

# The X-Forwarded-For entries read, from the right: more hops than any real chain of
# proxies, few enough that a padded header costs next to nothing.
MAX_HOPS = 16
_HEADER = b"x-forwarded-for"


def client_address(
    peer: Client | None, headers: Iterable[tuple[bytes, bytes]], proxies: Proxies
) -> Client | None:
    """The client of a request from ``peer`` with these ``headers`` (names in lower
    case): see the module docstring. The peer itself unless it is trusted."""
    if not proxies:
        return peer
    values = [value for name, value in headers if name == _HEADER]
    if not values:
        return peer
    if not proxies.everyone:
        known = proxies.judge(peer[0].encode("latin-1")) if peer is not None else None
        if known is None or not known[1]:
            return peer
    # Several headers are one list (RFC 9110, 5.3); only the last hops are read.
    entries = b",".join(values).rsplit(b",", MAX_HOPS)[-MAX_HOPS:]
    client = peer
    for raw in reversed(entries):
        known = proxies.judge(raw)
        if known is None:
            return client  # the hop that wrote it is the last we can vouch for
        client = (known[0], 0)
        if not known[1]:
            return client
    return client


def forward(scope: MutableMapping[str, Any], proxies: Proxies) -> None:
    """Put the request's client in an ASGI ``scope`` (``client_address``), in place, so
    everything that reads the scope later sees it: routes, and the access line."""
    if not proxies:
        return
    peer = scope.get("client")
    given = (str(peer[0]), int(peer[1])) if peer else None
    client = client_address(given, scope["headers"], proxies)
    if client != given:
        scope["client"] = client
