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

import ipaddress
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Client = tuple[str, int]

# The X-Forwarded-For entries read, from the right: more hops than any real chain of
# proxies, few enough that a padded header costs next to nothing.
MAX_HOPS = 16
# Longer than any address with a port (``[v6]:65535``): not parsed at all.
_ENTRY_MAX = 60
_HEADER = b"x-forwarded-for"
SEEN_MAX = 4096  # entries whose verdict is kept (``Proxies.judge``)


@dataclass(frozen=True, slots=True)
class Proxies:
    """The peers ticker trusts to name the client (``TICKER_FORWARDED_ALLOW_IPS``)."""

    everyone: bool = False
    addresses: frozenset[IP] = field(default_factory=frozenset)
    networks: tuple[Network, ...] = ()
    # What each entry seen said: (the address written one way, trusted), or None. A
    # proxy sends the same few again and again; parsing one costs microseconds.
    _seen: dict[bytes, tuple[str, bool] | None] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def __bool__(self) -> bool:
        return self.everyone or bool(self.addresses) or bool(self.networks)

    def trusts(self, ip: IP) -> bool:
        return self.everyone or ip in self.addresses or any(ip in n for n in self.networks)

    def judge(self, entry: bytes) -> tuple[str, bool] | None:
        """An X-Forwarded-For entry (or a peer's address, as bytes): the address written
        one way and whether it is trusted; None when it is no address."""
        seen = self._seen
        if entry in seen:
            return seen[entry]
        ip = _entry(entry)
        verdict = None if ip is None else (str(ip), self.trusts(ip))
        if len(seen) >= SEEN_MAX:
            seen.clear()  # entries are the clients' to choose: keep the memory bounded
        seen[entry] = verdict
        return verdict

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Proxies:
        """From the setting's entries (``*``, IP addresses, networks in CIDR form); a
        ``ValueError`` naming the first entry that is none of these."""
        wanted = [e.strip() for e in entries if e.strip()]
        if "*" in wanted:
            if len(wanted) > 1:
                raise ValueError("'*' trusts every address: give it alone")
            return cls(everyone=True)
        addresses: set[IP] = set()
        networks: list[Network] = []
        for entry in wanted:
            if "/" in entry:
                networks.append(_network(entry))
            else:
                addresses.add(_address(entry))
        return cls(addresses=frozenset(addresses), networks=tuple(networks))


NOBODY = Proxies()

_EXAMPLES = "e.g. 10.0.0.5, 10.0.0.0/8, fd00::/8 or *"


def _address(entry: str) -> IP:
    ip = _ip(entry) if "%" not in entry else None
    if ip is None:
        raise ValueError(f"{entry[:80]!r} is not an IP address or network ({_EXAMPLES})")
    return ip


def _network(entry: str) -> Network:
    try:
        return ipaddress.ip_network(entry)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(f"{entry[:80]!r} is not an IP address or network ({_EXAMPLES})") from None
    raise ValueError(f"{entry!r} has bits set past its prefix: did you mean {loose}?")


def _ip(text: str) -> IP | None:
    """An address written one way (IPv4-mapped IPv6 as IPv4), or None."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _entry(raw: bytes) -> IP | None:
    """One X-Forwarded-For entry: an address, bare or with a port (``192.0.2.1:443``,
    ``[2001:db8::1]:443``); None for anything else, an IPv6 zone included."""
    text = raw.strip().decode("latin-1")
    if not text or len(text) > _ENTRY_MAX or "%" in text:
        return None
    if text[0] == "[":
        host, close, port = text[1:].partition("]")
        if not close or (port and not (port[0] == ":" and port[1:].isdigit())):
            return None
        return _ip(host) if ":" in host else None  # brackets hold IPv6 only
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return _ip(host) if port.isdigit() else None
    return _ip(text)


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
