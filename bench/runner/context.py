"""What every step of a run is handed: the options, the results folder, the processes
it started, and the time budget."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.runner.procs import Procs


@dataclass(frozen=True)
class Options:
    """The run's settings, from the command line (bench/runner/cli.py says what each is)."""

    quick: bool
    procs: int
    track_every: int
    connect_timeout: float
    drain_max: float
    storm_residents: int
    storm_preload: int
    post_count: int
    post_max_time: float
    post_conns: int
    post_readers: int
    workers_scenario: str
    post_track_every: int
    profile_rate: int
    profile_native: bool
    profile_clients: int
    budget_min: float
    redis_port: int
    fresh: bool
    tag: str

    # The settings meta.json records (the page quotes them).
    RECORDED = (
        "procs",
        "track_every",
        "connect_timeout",
        "drain_max",
        "storm_residents",
        "storm_preload",
        "post_count",
        "post_conns",
        "post_track_every",
        "profile_rate",
        "budget_min",
    )

    def recorded(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.RECORDED}


@dataclass
class Bench:
    options: Options
    out: Path  # the results folder
    procs: Procs
    t0: float = field(default_factory=time.monotonic)
    skipped: list[str] = field(default_factory=list)  # steps not run, and why

    def over_budget(self) -> bool:
        return time.monotonic() - self.t0 > self.options.budget_min * 60

    def save(self, name: str, res: dict[str, Any]) -> None:
        """A result as `<name>.json` in the results folder."""
        (self.out / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
