"""One load run: readers connect (bench/harness/sse_load.py), items are published
(publish.py at a rate, or post_load.py through the publish API), the readers drain; the
result JSON has the same shape as the shared harness's run_scenario.py (plus `commands`).

Hooks let a scenario do more around it: `before_publish` runs once the readers are
connected (instead of the idle wait), `during_publish` is a context around the publisher
(the storm starts its second load generator in it, the profile py-spy).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from bench.runner.constants import HARNESS, PY, SRC_IPS
from bench.runner.context import Bench
from bench.runner.cpu import SplitSampler, cpu_split
from bench.runner.log import log
from bench.runner.peers import Peer
from bench.runner.procs import Arg, last_json_line, quote

JSON = dict[str, Any]


def new_run_id() -> str:
    """The id in every item of one run: readers count only their own run's items."""
    return uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class Load:
    """What one run does. `label` names the result file; `scenario` the table cell
    (default: the label after its last `:`)."""

    label: str
    clients: int
    count: int  # items published
    rate: float  # items/s; 0 = as fast as the publisher goes
    hold: float  # s the readers stay connected with nothing published (S3)
    publisher_args: list[Arg]  # the peer's part of the publisher's command line
    publisher: str = "publish"  # or "post_load": concurrent POSTs
    track_every: int | None = None  # default: --track-every
    drain_max: float | None = None  # default: --drain-max
    scenario: str | None = None
    idle_before: float = 1.0  # s between "all connected" and the first item
    save: bool = True  # else the caller saves the result, with more in it
    run: str | None = None  # the run id (default: a new one)
    extra_time: float = 0.0  # more time for the readers (a long before_publish)


def _readers_cmd(
    b: Bench, peer: Peer, load: Load, *, run: str, ready: str, max_time: float, track_every: int
) -> list[Arg]:
    o = b.options
    cmd: list[Arg] = [PY, HARNESS / "sse_load.py", "--url", peer.sub_url]
    cmd += ["--clients", load.clients, "--procs", o.procs, "--src-ips", SRC_IPS]
    cmd += ["--connect-timeout", o.connect_timeout, "--expect", load.count, "--run", run]
    cmd += ["--idle-timeout", 10, "--max-time", max_time, "--hold", load.hold]
    cmd += ["--ready-file", ready, "--track-every", track_every, "--text-markers"]
    cmd += ["--server-pid", peer.pid, "--server-pid-tree"]
    for x in peer.aux_pids:
        cmd += ["--aux-pid", x]
    return cmd


def _publisher_cmd(b: Bench, load: Load, *, run: str, pub_time: float) -> list[Arg]:
    if load.publisher == "publish":
        cmd: list[Arg] = [PY, HARNESS / "publish.py", "--count", load.count, "--rate", load.rate]
        return cmd + ["--run", run, "--max-time", pub_time + 60, *load.publisher_args]
    # post_load: concurrent POSTs, bounded by their own --max-time
    cmd = [PY, HARNESS / "post_load.py", "--count", load.count, "--run", run]
    return cmd + ["--max-time", b.options.post_max_time, *load.publisher_args]


def _publish(b: Bench, cmd: list[Arg], timeout: float) -> JSON:
    """Run the publisher to its end; its JSON result, or the error."""
    p = b.procs.spawn("publisher", cmd, stdout=subprocess.PIPE, logfile=b.out / "publish.log")
    out = b.procs.output(p, timeout)
    res = last_json_line(out.decode())
    return res if res is not None else {"error": out.decode()[-500:], "rc": p.returncode}


def run_load(
    b: Bench,
    peer: Peer,
    load: Load,
    *,
    before_publish: Callable[[], None] | None = None,
    during_publish: Callable[[], AbstractContextManager[None]] | None = None,
) -> JSON:
    """One run on a started peer; its result (saved as <label>.json unless load.save is
    False)."""
    o = b.options
    track_every = load.track_every or o.track_every
    drain_max = o.drain_max if load.drain_max is None else load.drain_max
    run = load.run or new_run_id()
    # publish.py at a rate takes count/rate; post_load is bounded by its own --max-time;
    # as fast as possible (S2) a few seconds.
    if load.rate:
        pub_time = load.count / load.rate
    else:
        pub_time = o.post_max_time if load.publisher == "post_load" else 10.0
    max_time = pub_time + drain_max + 10 + load.extra_time
    pcmd: list[Arg] | None = None
    pub_res: JSON | None = None
    split0: dict[str, float] | None = None
    splits: SplitSampler | None = None
    with tempfile.TemporaryDirectory() as td:
        ready = os.path.join(td, "ready")
        sub_cmd = _readers_cmd(
            b, peer, load, run=run, ready=ready, max_time=max_time, track_every=track_every
        )
        sub = b.procs.spawn(
            "sse_load", sub_cmd, stdout=subprocess.PIPE, logfile=b.out / "sse_load.log"
        )
        t_end = time.monotonic() + o.connect_timeout + 40
        while not os.path.exists(ready) and sub.poll() is None and time.monotonic() < t_end:
            time.sleep(0.1)
        if load.count > 0 and sub.poll() is None and os.path.exists(ready):
            if before_publish:
                before_publish()
            else:
                time.sleep(load.idle_before)
            split0 = cpu_split(peer.server_pids())
            pcmd = _publisher_cmd(b, load, run=run, pub_time=pub_time)
            with during_publish() if during_publish else contextlib.nullcontext():
                pub_res = _publish(b, pcmd, pub_time + 150)
            # The user/sys split, to cut at the moment sse_load took its last server sample
            # (before it closes its sockets).
            splits = SplitSampler(peer.server_pids()).start()
        sub_res = b.procs.result(sub, max_time + 150)
        if splits:
            splits.stop(join=2)
    cmds = [peer.hide_token(quote(c)) for c in ([sub_cmd, pcmd] if pcmd else [sub_cmd])]
    res: JSON = {
        "scenario": load.scenario or load.label.split(":", 1)[-1],
        "label": peer.name,
        "run": run,
        "peer": peer.name,
        "params": {
            "clients": load.clients,
            "count": load.count,
            "rate": load.rate,
            "hold": load.hold,
            "procs": o.procs,
            "src_ips": SRC_IPS,
            "track_every": track_every,
            "drain_max": drain_max,
            "idle_before": load.idle_before,
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "subscribers": sub_res,
        "publisher": pub_res,
        "commands": cmds,
    }
    t_last = ((sub_res.get("server") or {}).get("end") or {}).get("t")
    split1 = splits.last_before(t_last) if splits and t_last else None
    if split0 and split1:
        res["server_cpu_split"] = {k: round(split1[k] - split0[k], 3) for k in split0}
    if load.save:
        b.save(load.label, res)
    _log_result(load, res)
    return res


def _log_result(load: Load, res: JSON) -> None:
    s = res["subscribers"]
    srv = s.get("server", {})
    lat = s.get("latency_ms", {})
    log(
        f"  {load.label}: connected {s.get('clients_connected')}/{load.clients} deliveries "
        f"{s.get('deliveries')} lost {s.get('lost')} dup {s.get('duplicates')} "
        f"ooo {s.get('out_of_order')} cutoffs {s.get('disconnects')} p50 {lat.get('p50')} "
        f"p99 {lat.get('p99')} srv_cpu_run {srv.get('cpu_s_run')} rss/conn "
        f"{srv.get('rss_per_conn_kb')} cli_cpu {s.get('client_cpu_s')} "
        f"pub {(res['publisher'] or {}).get('rate_achieved')}/s"
    )
