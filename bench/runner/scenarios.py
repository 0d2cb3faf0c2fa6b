"""Scenario names (S3[-N], S1-N, S2[-N], C-N, B-N) and what each runs. To change what a
scenario does, change `parse_scenario` (its load) or matrix.py (how its kind runs)."""

from __future__ import annotations

from typing import NamedTuple

from bench.runner.constants import BURST_GAP_S, BURST_ITEMS, STORM_ITEMS, STORM_RATE

# The order a peer's scenarios run in: S3 first on a fresh server (Python never gives
# memory back), then by kind and size.
KIND_ORDER = {"S3": 0, "S1": 1, "S2": 2, "B": 3, "C": 4}


class Scenario(NamedTuple):
    kind: str  # S3, S1, S2, C or B
    clients: int  # readers; for C-N the storm's size (the residents: --storm-residents)
    items: int  # published
    rate: float  # items/s; 0 = as fast as the publisher goes
    hold: float  # s the readers stay with nothing published


def parse_scenario(s: str) -> Scenario:
    """S3, S3-N, S1-N, S2, S2-N, C-N, B-N -> what it runs; exits on a bad name."""
    kind, _, n = s.partition("-")
    if n and not n.isdigit():
        raise SystemExit(f"bad scenario {s!r}: N must be a number")
    if kind == "S3":
        return Scenario("S3", int(n or 10000), 0, 0.0, 10.0)
    if kind == "S1":
        return Scenario("S1", int(n or 1000), 400, 20.0, 0.0)
    if kind == "S2":
        return Scenario("S2", int(n or 1000), 2000, 0.0, 0.0)
    if kind in ("C", "B") and n and int(n) < 1:
        raise SystemExit(f"bad scenario {s!r}: N must be at least 1")
    if kind == "C":
        return Scenario("C", int(n or 2000), STORM_ITEMS, STORM_RATE, 0.0)
    if kind == "B":
        return Scenario("B", int(n or 10000), BURST_ITEMS, 1.0 / BURST_GAP_S, 0.0)
    raise SystemExit(f"unknown scenario {s!r} (S3[-N], S1-N, S2[-N], C-N, B-N)")


def run_order(s: str) -> tuple[int, int]:
    """Sort key: the order a peer's scenarios run in."""
    sc = parse_scenario(s)
    return KIND_ORDER[sc.kind], sc.clients
