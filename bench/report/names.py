"""Peers and scenarios as the page names and orders them."""

from __future__ import annotations

from collections.abc import Iterable

# Table order: ticker first, then the peers it is compared with.
PEER_ORDER = [
    "ticker",
    "ticker-asgi",
    "nchan",
    "nchan2",
    "fanout",
    "naive",
    "ticker-w2",
]
PEER_NAMES = {
    "ticker": "ticker (1 worker)",
    "ticker-asgi": "ticker, TICKER_DIRECT_WRITES=false (ASGI sends only)",
    "ticker-w2": "ticker --workers 2",
    "nchan": "nginx + nchan (1 worker)",
    "nchan2": "nginx + nchan (2 workers)",
    "fanout": "fanout peer (shared XREAD + queues, sse-starlette)",
    "naive": "naive peer (XREAD per reader, sse-starlette)",
}
# Scenario kinds in table order (S3 runs first on a fresh server).
KIND_ORDER = {"S3": 0, "S1": 1, "S2": 2, "B": 3, "C": 4}


def peer_name(peer: str) -> str:
    """The long name a table shows for a peer."""
    return PEER_NAMES.get(peer, peer)


def peer_rank(peer: str | None) -> int:
    """A peer's place in the tables; peers the page does not know go last."""
    return PEER_ORDER.index(peer) if peer in PEER_ORDER else 99


def order_peers(peers: Iterable[str]) -> list[str]:
    return sorted(peers, key=peer_rank)


def scen_sort(s: str) -> tuple[int, int, str]:
    """Sort key: by kind (KIND_ORDER), then by N, then by name."""
    kind, _, n = s.partition("-")
    return (
        KIND_ORDER.get(kind, 5),
        int(n.split()[0]) if n[:1].isdigit() else 0,
        s,
    )


def size(s: str) -> int | None:
    """The N of a scenario name such as `C-2000` or `S1-5000 (tag)`; None without one."""
    n = s.partition("-")[2].split()[0] if "-" in s else ""
    return int(n) if n.isdigit() else None


def of_kind(scenarios: Iterable[str], *prefixes: str) -> list[str]:
    """The scenarios whose names start with one of `prefixes`, in table order:
    fan-out is ("S1", "S2"), idle readers "S3", the storm "C-", the burst "B-"."""
    return sorted([s for s in scenarios if s.startswith(prefixes)], key=scen_sort)
