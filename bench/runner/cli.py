"""ticker's benchmark runner (called by bench/run, which raises the fd limit first).

Starts each peer on loopback, runs the scenarios with one harness (bench/harness/),
stops everything it started (by PID), writes raw JSON to bench/results/<date>_<time>-<mode>/
and regenerates docs/performance.md (full or --quick runs; subsets only with --doc).

Peers: ticker (this repo, `python -m ticker serve`), ticker-asgi (the same with
TICKER_DIRECT_WRITES=false: every event through ASGI sends, so the direct path's gain stays
measured), nchan (nginx + nchan, 1 worker), fanout and naive (Starlette + sse-starlette
peers, bench/peers/). Scenarios:
  S3[-N]  N idle readers (default 10000), held 10 s: RSS per reader
  S1-N    N readers, 20 items/s for 20 s (400 items)
  S2[-N]  N readers (default 1000), 2000 items as fast as the publisher goes
  C-N     connection storm, two runs on fresh servers, 1000 resident readers in each
          (--storm-residents), N storm readers from a second load generator with every
          connect in flight at once. Run 1: the residents connect, 20 items are
          published, the N connect onto them with nothing more published (server CPU per
          connecting reader), stay 1 s and leave; then 300 items at 20/s (the S1
          publisher): the residents' latency without a storm. Run 2: the same items;
          4 s into publishing the N connect, stay 3 s and leave: the residents' latency
          with the storm, refused connects
  B-N     burst: N idle readers (held 5 s), then 4 single items, 3 s apart: the time
          until the last reader has an item (the worst of the 4) and the percentiles
Full runs play C-N and B-N for ticker, ticker-asgi and nchan only (the goal peers of
issue #18); name another peer in --peers to run them there.
Extras (ticker only): post (publish API throughput with 0 and 1000 readers, S1-1000
through POST), workers (`--workers 2` vs 1 on S1-5000 and the POST test), profile
(py-spy on the server during S1 fan-out and during the POST test).

Every phase has a time bound; the whole run has --budget-min (steps that would start
after it are skipped and recorded as skipped).

docs/performance.md opens with "Goals (issue #18)", one row per goal figure. Columns:
target; ticker's figure; nchan's; ticker / nchan; met? (ticker's); and, where it ran,
ticker-asgi's figure (its ratio to nchan's): met?. The figures:
  connect CPU    C-N run 1: the server's CPU (schedstat, every thread, sampled every
                 20 ms) from just before the storm to 0.5 s after its last reader had
                 the headers, minus the idle rate before, / N: us per connecting reader
  refused        a storm's failed connects + answers that were not a 200 event stream +
                 streams the server ended (both storms of the C-N)
  storm delay    the residents' p99 in run 2 (with the storm) - in run 1 (without)
  CPU/delivery   S1: the server's CPU from "all connected" to the end / deliveries
  p99, lost      S1: receive time - the publish stamp in the item; items never received
  RSS/reader     S3: (RSS after the 10 s hold - RSS before connecting) / readers
  burst          B-N: the largest latency over every reader and every item
  lost/dup/order every S1, S2, C-N (both runs) and B-N run of the peer
The storm, burst, fan-out and idle sections below it give every figure's parts.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from bench.runner.constants import (
    ALL_EXTRAS,
    ALL_PEERS,
    ALL_SCENARIOS,
    OTHER_PEERS,
    QUICK_PEERS,
    QUICK_SCENARIOS,
    REPO,
    RESULTS,
    STORM_PRELOAD,
    STORM_RESIDENTS,
)
from bench.runner.context import Bench, Options
from bench.runner.log import log
from bench.runner.machine import start_meta
from bench.runner.matrix import run_all
from bench.runner.procs import Procs, alive
from bench.runner.scenarios import run_order


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="S3-2000 + S1-1000 for ticker and nchan, plus a short profile (~3 min)",
    )
    p.add_argument("--peers", help=f"comma list from {','.join(ALL_PEERS)} (also nchan2)")
    p.add_argument("--scenarios", help="comma list: S3, S3-N, S1-N, S2, S2-N, C-N, B-N (see above)")
    p.add_argument(
        "--extras",
        help=f"comma list from {','.join(ALL_EXTRAS)}, or 'none' "
        "(default: all for a full run, profile for --quick, none for a subset)",
    )
    p.add_argument("--out", help="results folder (default bench/results/<date>_<time>-<mode>)")
    p.add_argument(
        "--doc", action="store_true", help="regenerate docs/performance.md for a subset too"
    )
    p.add_argument("--no-doc", action="store_true")
    p.add_argument("--report", metavar="DIR", help="only regenerate docs/performance.md from DIR")
    p.add_argument("--procs", type=int, default=2, help="load-generator processes")
    p.add_argument(
        "--track-every",
        type=int,
        default=1,
        help="fully parse every K-th reader (1 = all; see harness/sse_load.py)",
    )
    p.add_argument("--connect-timeout", type=float, default=60)
    p.add_argument(
        "--drain-max",
        type=float,
        default=20,
        help="how long readers may keep receiving after publishing ends (s)",
    )
    p.add_argument(
        "--storm-residents",
        type=int,
        default=STORM_RESIDENTS,
        help="C-N: readers connected before the storm, receiving 20 items/s",
    )
    p.add_argument(
        "--storm-preload",
        type=int,
        default=STORM_PRELOAD,
        help="C-N run 1: items published before the storm onto the idle residents "
        "(a new ticker reader is sent the current items; 0: an empty ticker)",
    )
    p.add_argument("--post-count", type=int, default=3000)
    p.add_argument("--post-max-time", type=float, default=60.0, help="bound of one POST run (s)")
    p.add_argument("--post-conns", type=int, default=16)
    p.add_argument(
        "--post-readers",
        type=int,
        default=1000,
        help="readers attached during the publish-API test",
    )
    p.add_argument(
        "--workers-scenario", default="S1-5000", help="the fan-out load for --workers 2 vs 1"
    )
    p.add_argument("--post-track-every", type=int, default=10)
    p.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s")
    p.add_argument(
        "--profile-native",
        action="store_true",
        help="py-spy --native: also C frames (uvloop, libc), more overhead",
    )
    p.add_argument(
        "--profile-clients",
        type=int,
        default=None,
        help="readers during the fan-out profile (default 1000: one event per wake-up, "
        "the regime where per-delivery overhead shows)",
    )
    p.add_argument(
        "--budget-min",
        type=float,
        default=None,
        help="no new step starts after this many minutes (default 45, quick 5)",
    )
    p.add_argument("--redis-port", type=int, default=6390)
    p.add_argument(
        "--no-fresh",
        dest="fresh",
        action="store_false",
        help="run a peer's scenarios on one server instead of restarting it for each",
    )
    p.add_argument(
        "--merge",
        metavar="DIR",
        action="append",
        default=[],
        help="with --report: results from DIR replace/add to the report's cells",
    )
    p.add_argument("--tag", default="", help="suffix for result names, e.g. a commit: S2 (TAG)")
    p.add_argument("--dry-run", action="store_true")
    return p


@dataclass(frozen=True)
class Plan:
    """What to run, checked: the mode (full, quick or subset) and its lists."""

    mode: str
    peers: list[str]
    scenarios: list[str]
    extras: list[str]


def plan(a: argparse.Namespace) -> Plan:
    """What to run, with the per-mode defaults; exits on an unknown name."""
    full = not (a.quick or a.peers or a.scenarios)
    mode = "quick" if a.quick else ("full" if full else "subset")
    peers = a.peers.split(",") if a.peers else (QUICK_PEERS if a.quick else ALL_PEERS)
    scenarios = (
        a.scenarios.split(",") if a.scenarios else (QUICK_SCENARIOS if a.quick else ALL_SCENARIOS)
    )
    if scenarios == ["none"]:
        scenarios = []  # extras only
    scenarios = sorted(scenarios, key=run_order)  # checks every name too
    if a.extras:
        extras = [] if a.extras == "none" else a.extras.split(",")
    else:
        extras = ALL_EXTRAS if full else (["floors", "profile"] if a.quick else [])
    for x in peers:
        if x not in ALL_PEERS + OTHER_PEERS:
            raise SystemExit(f"unknown peer {x}")
    for x in extras:
        if x not in ALL_EXTRAS:
            raise SystemExit(f"unknown extra {x}")
    return Plan(mode, peers, scenarios, extras)


def options(a: argparse.Namespace) -> Options:
    """The run's settings from the command line, with the per-mode defaults."""
    given = {f.name: getattr(a, f.name) for f in fields(Options)}
    if given["profile_clients"] is None:
        given["profile_clients"] = 1000
    if given["budget_min"] is None:
        given["budget_min"] = 5 if a.quick else 45
    return Options(**given)


def write_report(folder: Path, merge: Sequence[str] = ()) -> None:
    """docs/performance.md from a results folder (and follow-up folders)."""
    from bench.report import write  # only here: a run does not need the report's modules

    write(folder, REPO / "docs" / "performance.md", merge=[Path(m) for m in merge])


def main(argv: Sequence[str] | None = None) -> int:
    a = parser().parse_args(argv)
    if a.report:
        write_report(Path(a.report), a.merge)
        return 0
    pl = plan(a)
    o = options(a)
    stamp = time.strftime("%Y-%m-%d_%H%M%S")
    out = Path(a.out).resolve() if a.out else RESULTS / f"{stamp}-{pl.mode}"
    log(
        f"mode {pl.mode}: peers {pl.peers}, scenarios {pl.scenarios}, extras {pl.extras}, out {out}"
    )
    if a.dry_run:
        return 0
    out.mkdir(parents=True, exist_ok=True)
    meta = start_meta(o, pl.mode, pl.peers, pl.scenarios, pl.extras)
    b = Bench(o, out, Procs())
    b.save("meta", meta)
    rc = run_all(b, meta, pl.peers, pl.scenarios, pl.extras)
    leftovers = [pid for pid in b.procs.live if alive(pid)]
    if leftovers:
        log(f"WARNING: still alive: {leftovers}")
    log(f"done in {meta['elapsed_min']} min; skipped: {b.skipped or 'nothing'}; results in {out}")
    if rc == 0 and not a.no_doc and (pl.mode in ("full", "quick") or a.doc):
        write_report(out)
        log("wrote docs/performance.md")
    return rc
