"""The row types of the page's tables (bench/report/tables.py declares the columns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from bench.report.figures import Figures, StormFigures, figures, storm_figures
from bench.report.names import order_peers
from bench.report.results import JSON, Results


@dataclass(frozen=True)
class PeerRow:
    """One peer's run of one scenario."""

    scenario: str
    peer: str
    run: JSON

    @cached_property
    def x(self) -> Figures:
        return figures(self.run)

    @cached_property
    def storm(self) -> StormFigures:
        return storm_figures(self.run)


def peer_rows(res: Results, scenarios: Sequence[str]) -> list[PeerRow]:
    """A row per scenario (in the order given) per peer (in table order)."""
    return [PeerRow(s, p, res.scen[s][p][1]) for s in scenarios for p in order_peers(res.scen[s])]


@dataclass(frozen=True)
class PostRow:
    """A publish-API run; `x` counts readers against the POSTs that succeeded."""

    run: JSON
    x: Figures
    sent: int | None
    ok: int | None
    srv_cpu: float | None

    @property
    def pub(self) -> JSON:
        return self.run.get("publisher") or {}

    def readers(self, v: str) -> str:
        """A readers' figure, `–` with no readers attached."""
        return v if self.run["params"]["clients"] else "–"


class Compared(NamedTuple):
    """One figure of one load, with 1 worker and with 2."""

    load: str
    metric: str
    one: Any
    two: Any
    ratio: float | None


class Floor(NamedTuple):
    test: str
    write_us: str
    read_us: str
    per_core: str


# py-spy: (name, samples, share %) from bench/profile_summary.py.
Share = tuple[str, int, float]


class GoalRow(NamedTuple):
    goal: str
    target: str
    ticker: str
    nchan: str
    ratio: str
    met: str
    asgi: str


class TargetRow(NamedTuple):
    target: str
    ticker: str
    reference: str | None  # None: blank
    met: str
