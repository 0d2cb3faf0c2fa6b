"""The proxies ticker trusts to name the client (``TICKER_FORWARDED_ALLOW_IPS``): the
setting's parse, and what one ``X-Forwarded-For`` entry or peer address says. Pure (the
standard library only), so settings.py checks the setting with it at start-up; the rule
that walks the header is http/forwarded.py's."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Longer than any address with a port (``[v6]:65535``): not parsed at all.
_ENTRY_MAX = 60
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
