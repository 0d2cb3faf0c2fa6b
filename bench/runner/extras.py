"""The ticker extras: the publish API (POST) with and without readers, S1 published
through POST, and py-spy during a load."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

from bench.runner.constants import HARNESS, PY, find_pyspy
from bench.runner.context import Bench
from bench.runner.cpu import cpu_split
from bench.runner.loadrun import JSON, Load, run_load
from bench.runner.log import log
from bench.runner.procs import Arg, last_json_line, quote
from bench.runner.ticker_peer import Ticker


def post_tests(b: Bench, peer: Ticker) -> None:
    """--post-count POSTs over --post-conns connections, with no readers and with
    --post-readers readers attached."""
    o = b.options
    for readers in (0, o.post_readers):
        if b.over_budget():
            b.skipped.append(f"{peer.name} POST-{readers}: time budget")
            continue
        log(f"{peer.name} POST with {readers} readers")
        if readers == 0:
            _post_without_readers(b, peer)
        else:
            load = Load(
                f"{peer.name}-POST-{readers}",
                clients=readers,
                count=o.post_count,
                rate=0,
                hold=0,
                publisher="post_load",
                publisher_args=peer.post_load(o.post_conns),
                track_every=o.post_track_every,
                scenario=f"POST-{readers}",
            )
            run_load(b, peer, load)
        peer.settle()


def _post_without_readers(b: Bench, peer: Ticker) -> None:
    """POST-0: no load generator, the server's CPU around the POSTs."""
    o = b.options
    pcmd: list[Arg] = [PY, HARNESS / "post_load.py", "--count", o.post_count]
    pcmd += ["--run", "nr" + uuid.uuid4().hex[:8], "--max-time", o.post_max_time]
    pcmd += peer.post_load(o.post_conns)
    split0 = cpu_split(peer.server_pids())
    t = subprocess.run([str(c) for c in pcmd], capture_output=True, text=True, timeout=180)
    split1 = cpu_split(peer.server_pids())
    pres = last_json_line(t.stdout)
    if pres is None:
        pres = {"error": t.stdout[-500:] + t.stderr[-500:]}
    res: JSON = {
        "scenario": "POST-0",
        "label": peer.name,
        "peer": peer.name,
        "params": {"clients": 0, "count": o.post_count, "conns": o.post_conns},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "subscribers": {},
        "publisher": pres,
        "commands": [peer.hide_token(quote(pcmd))],
        "server_cpu_split": {k: round(split1[k] - split0[k], 3) for k in split0},
    }
    b.save(f"{peer.name}-POST-0", res)
    send_ms = pres.get("send_ms", {})
    log(
        f"  POST-0: {pres.get('rate_achieved')}/s p50 {send_ms.get('p50')}"
        f" p99 {send_ms.get('p99')} statuses {pres.get('statuses')}"
    )


def post_s1(b: Bench, peer: Ticker) -> None:
    """S1 (400 items at 20/s) published through POST, to min(1000, --post-readers)."""
    if b.over_budget():
        b.skipped.append("ticker S1-1000 via POST: time budget")
        return
    n = min(1000, b.options.post_readers)
    log(f"ticker S1-{n} published through POST")
    load = Load(
        f"ticker-S1-{n}-post",
        clients=n,
        count=400,
        rate=20.0,
        hold=0,
        publisher_args=peer.post_publisher(),
        scenario=f"S1-{n} (POST)",
    )
    run_load(b, peer, load)
    peer.settle()


def profile(b: Bench, peer: Ticker, label: str, load: Load) -> None:
    """py-spy on the server's (first) worker while `load` publishes; the raw profile is
    profile-<label>.txt, the run <peer>-profile-<label>.json."""
    o = b.options
    spy = find_pyspy()
    if spy is None:
        b.skipped.append(f"profile {label}: py-spy not found (pip install py-spy; or PYSPY=path)")
        return
    if b.over_budget():
        b.skipped.append(f"profile {label}: time budget")
        return
    raw = b.out / f"profile-{label}.txt"
    duration = int(load.count / load.rate) if load.rate else 15
    recorded: list[str] = []

    @contextlib.contextmanager
    def pyspy() -> Iterator[None]:
        cmd: list[Arg] = [spy, "record", "--pid", peer.worker_pids()[0]]
        cmd += ["--rate", o.profile_rate, "--duration", duration, "--format", "raw", "-o", raw]
        # --native needs the target paused per sample; otherwise sample without pausing.
        cmd.append("--native" if o.profile_native else "--nonblocking")
        recorded.append(quote(cmd))
        p = b.procs.spawn("py-spy", cmd, logfile=b.out / "py-spy.log")
        yield
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=duration + 30)
        b.procs.stop(p, sig=signal.SIGINT, grace=10)

    log(f"profile {label}: py-spy {duration}s during {load.clients} readers, {load.count} items")
    res = run_load(b, peer, load, during_publish=pyspy)
    res["profile_cmd"] = recorded[0] if recorded else None
    b.save(load.label, res)
    peer.settle()
