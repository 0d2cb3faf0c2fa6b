"""The run's phases: the matrix (every peer, every scenario, each on a freshly started
server), then the ticker extras (publish API, --workers 2, profile), each on a server of
its own. A step that fails is recorded as skipped and the run goes on."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

from bench.runner.constants import BURST_IDLE_S, GOAL_PEERS
from bench.runner.context import Bench
from bench.runner.extras import post_s1, post_tests, profile
from bench.runner.floors import floors
from bench.runner.loadrun import Load, run_load
from bench.runner.log import log
from bench.runner.peers import Nchan, Peer, PyPeer
from bench.runner.scenarios import parse_scenario
from bench.runner.storm import storm
from bench.runner.ticker_peer import Ticker

P = TypeVar("P", bound=Peer)
Meta = dict[str, Any]


def make_peer(b: Bench, name: str) -> Peer:
    """A peer by its name in --peers, with its own folder in the results."""
    rundir, port = b.out / f"run-{name}", b.options.redis_port
    if name == "ticker":
        return Ticker(rundir, procs=b.procs, redis_port=port)
    if name == "ticker-asgi":
        return Ticker(rundir, procs=b.procs, redis_port=port, direct_writes=False)
    if name in ("nchan", "nchan2"):
        return Nchan(rundir, procs=b.procs, redis_port=port, workers=2 if name == "nchan2" else 1)
    return PyPeer(rundir, procs=b.procs, redis_port=port, kind=name)


def run_scenarios(b: Bench, peer: Peer, scenarios: list[str]) -> None:
    """Each scenario on a freshly started server (and redis): a server still busy with
    the last run's backlog (the fanout peer after S1-10000 took minutes) must not
    decide the next cell, and S3's memory needs a fresh process anyway."""
    o = b.options
    for i, s in enumerate(scenarios):
        if b.over_budget():
            b.skipped.append(f"{peer.name} {s}: time budget")
            continue
        if i > 0 and o.fresh:
            peer.stop()
            peer.start()
        sc = parse_scenario(s)
        log(f"{peer.name} {s}")
        label = f"{peer.name}-{s}" + (f"-{o.tag}" if o.tag else "")
        name = f"{s} ({o.tag})" if o.tag else s
        if sc.kind == "C":
            storm(b, peer, label, name, n=sc.clients, count=sc.items, rate=sc.rate)
        else:
            load = Load(
                label,
                clients=sc.clients,
                count=sc.items,
                rate=sc.rate,
                hold=sc.hold,
                publisher_args=peer.publisher(),
                scenario=name,
                # B-N: the readers sit idle before the first urgent item.
                idle_before=BURST_IDLE_S if sc.kind == "B" else 1.0,
            )
            run_load(b, peer, load)
        peer.settle()


def with_peer(b: Bench, label: str, peer: P, body: Callable[[P], None]) -> None:
    """Start a peer, run body(peer), stop it; a failure skips to the next step."""
    if b.over_budget():
        b.skipped.append(f"{label}: time budget")
        return
    log(f"start {label}")
    try:
        peer.start()
        body(peer)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        log(f"{label} failed: {e}")
        b.skipped.append(f"{label}: failed: {e}")
    finally:
        peer.stop()


def run_matrix(b: Bench, meta: Meta, peers: list[str], scenarios: list[str]) -> None:
    """Phase 1: the matrix, one fresh server per peer (S3 first on it)."""
    t_matrix = time.monotonic()
    for name in peers if scenarios else []:
        mine = scenarios
        if meta["mode"] == "full" and name not in GOAL_PEERS:
            # The storm and burst scenarios are issue #18's comparison with nchan.
            mine = [s for s in scenarios if parse_scenario(s).kind not in ("C", "B")]
            meta.setdefault("not_played", {})[name] = [s for s in scenarios if s not in mine]

        def matrix(p: Peer, name: str = name, mine: list[str] = mine) -> None:
            if isinstance(p, Ticker) and name == "ticker":
                meta["ticker_serve_cmd"] = p.serve_cmd
            run_scenarios(b, p, mine)

        with_peer(b, name, make_peer(b, name), matrix)
    if scenarios:
        meta["matrix_min"] = round((time.monotonic() - t_matrix) / 60, 2)
        log(f"matrix done in {meta['matrix_min']} min")


def run_post_extra(b: Bench, meta: Meta) -> None:
    """The publish API, with and without readers, on a fresh server."""

    def post(p: Ticker) -> None:
        if "ticker_serve_cmd" not in meta:
            meta["ticker_serve_cmd"] = p.serve_cmd
        post_tests(b, p)
        post_s1(b, p)

    peer = Ticker(b.out / "run-ticker-post", procs=b.procs, redis_port=b.options.redis_port)
    with_peer(b, "ticker (publish API)", peer, post)


def run_workers_extra(b: Bench) -> None:
    """`--workers 2` on the fan-out load and the publish API."""

    def workers(p: Ticker) -> None:
        run_scenarios(b, p, [b.options.workers_scenario])
        post_tests(b, p)

    o = b.options
    peer = Ticker(b.out / "run-ticker-w2", procs=b.procs, redis_port=o.redis_port, workers=2)
    with_peer(b, "ticker --workers 2", peer, workers)


def run_profile_extra(b: Bench) -> None:
    """py-spy on a fan-out load (and, in a full run, on the publish API)."""
    o = b.options

    def prof(p: Ticker) -> None:
        fanout = Load(
            f"{p.name}-profile-fanout",
            clients=o.profile_clients,
            count=400,
            rate=20.0,
            hold=0,
            publisher_args=p.publisher(),
            scenario="profile fanout",
            save=False,
        )
        profile(b, p, "fanout", fanout)
        if not o.quick:
            post = Load(
                f"{p.name}-profile-post",
                clients=0,
                count=3000,
                rate=0,
                hold=0,
                publisher="post_load",
                publisher_args=p.post_load(o.post_conns),
                scenario="profile post",
                save=False,
            )
            profile(b, p, "post", post)

    peer = Ticker(b.out / "run-ticker-profile", procs=b.procs, redis_port=o.redis_port)
    with_peer(b, "ticker (profile)", peer, prof)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_all(b: Bench, meta: Meta, peers: list[str], scenarios: list[str], extras: list[str]) -> int:
    """Every phase in order; an interrupt (Ctrl-C, SIGTERM) still records what ran.
    The exit code: 0, or 130 when interrupted."""
    signal.signal(signal.SIGTERM, _interrupt)
    rc = 0
    try:
        if "floors" in extras:
            floors(b.out)
        run_matrix(b, meta, peers, scenarios)
        # Phase 2: ticker extras, each on a fresh server.
        if "ticker" in peers and "post" in extras:
            run_post_extra(b, meta)
        if "ticker" in peers and "workers" in extras:
            run_workers_extra(b)
        if "ticker" in peers and "profile" in extras:
            run_profile_extra(b)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaning up")
        rc = 130
    finally:
        b.procs.stop_all()
        meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        meta["elapsed_min"] = round((time.monotonic() - b.t0) / 60, 2)
        meta["skipped"] = b.skipped
        b.save("meta", meta)
    return rc
