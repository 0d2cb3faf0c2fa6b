"""C-N, the connection storm: N readers connecting at once onto resident readers, in two
runs on fresh servers (bench/README.md, "Connection storm").

1. The residents connect; --storm-preload items are published (`preload`); N readers
   connect at once onto them with nothing more published (`idle_storm`: the connect
   CPU), stay 1 s and leave; then the items at 20/s: the residents' latency without a
   storm (the baseline).
2. The residents get the same items; STORM_AT_S into publishing N readers connect at
   once (`LiveStorm`), stay STORM_HOLD_S after the last of them connected, and leave
   (RST) while publishing goes on: the residents' latency with the storm, and the
   server's CPU in the storm's connect window minus the residents' rate before.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from bench.runner.constants import (
    HARNESS,
    PY,
    SRC_IPS,
    STORM_AT_S,
    STORM_HOLD_S,
    STORM_IDLE_HOLD_S,
)
from bench.runner.context import Bench
from bench.runner.cpu import CpuSampler
from bench.runner.loadrun import JSON, Load, new_run_id, run_load
from bench.runner.log import log
from bench.runner.net import counters_delta, listen_counters
from bench.runner.peers import Peer
from bench.runner.procs import Arg, Popen, last_json_line, quote

CONNECTED_PLUS_S = 0.5  # the connect window ends this long after the last reader's headers


def storm_cmd(b: Bench, peer: Peer, n: int, *, hold: float, run: str) -> list[Arg]:
    """A second load generator: n readers whose connects are all in flight at once."""
    o = b.options
    cmd: list[Arg] = [PY, HARNESS / "sse_load.py", "--url", peer.sub_url, "--clients", n]
    cmd += ["--procs", o.procs, "--src-ips", SRC_IPS, "--connect-concurrency", -(-n // o.procs)]
    cmd += ["--connect-timeout", o.connect_timeout, "--expect", 0, "--run", run]
    cmd += ["--hold", hold, "--max-time", hold + 30, "--text-markers"]
    return cmd + ["--server-pid", peer.pid, "--server-pid-tree"]


def preload(b: Bench, peer: Peer, out: JSON) -> None:
    """Items on the ticker before the idle storm, as in a storm while publishing: a
    new ticker reader gets the current items (nchan sends new readers new messages
    only). Another run id: the residents count them as foreign, not as deliveries."""
    n = b.options.storm_preload
    if n <= 0:
        return
    cmd: list[Arg] = [PY, HARNESS / "publish.py", "--count", n, "--rate", 0]
    cmd += ["--run", "pre" + uuid.uuid4().hex[:7], "--max-time", 30, *peer.publisher()]
    out["preload_command"] = quote(cmd)
    t = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60)
    res = last_json_line(t.stdout)
    out["preload"] = res if res is not None else {"error": (t.stdout + t.stderr)[-500:]}
    time.sleep(1.0)


def idle_storm(b: Bench, peer: Peer, n: int, out: JSON) -> None:
    """N readers connect at once onto the idle residents (nothing is published): the
    connect CPU with nothing else going on. Window: from just before the storm's load
    generator starts to 0.5 s after its last reader had its headers (work a server does
    after the headers counts too); minus the idle rate of the second before."""
    hold = STORM_IDLE_HOLD_S
    cmd = storm_cmd(b, peer, n, hold=hold, run=new_run_id())
    sampler = CpuSampler(peer.server_pids()).start()
    try:
        time.sleep(1.0)
        listen0 = listen_counters()
        t0 = time.time()
        p = b.procs.spawn(
            "sse_load storm", cmd, stdout=subprocess.PIPE, logfile=b.out / "sse_load.log"
        )
        sres = b.procs.result(p, b.options.connect_timeout + hold + 90)
        listen1 = listen_counters()
    finally:
        sampler.stop()
    conn = (sres.get("server") or {}).get("connected") or {}
    res: JSON = {
        "command": quote(cmd),
        "hold_s": hold,
        "cpu_source": sampler.source,
        "subscribers": sres,
        "listen": counters_delta(listen0, listen1),
        "cpu_samples": sampler.dump(t0),
    }
    if conn.get("t"):
        t1 = conn["t"] + CONNECTED_PLUS_S
        idle = sampler.rate(t0 - 1.0, t0) or 0.0
        cpu = sampler.cpu(t0, t1)
        if cpu is not None:
            connect_cpu = cpu - idle * (t1 - t0)
            res.update(
                window_s=round(t1 - t0, 3),
                cpu_window_s=round(cpu, 4),
                idle_rate=round(idle, 4),
                connect_cpu_s=round(connect_cpu, 4),
                connect_us_per_reader=round(connect_cpu / n * 1e6, 1),
            )
    # The storm's sockets closed (RST): the items start once the server is idle again.
    t = time.monotonic()
    deadline = t + 20.0
    while time.monotonic() < deadline:
        c0 = sampler.cpu_now()
        time.sleep(0.5)
        if sampler.cpu_now() - c0 < 0.025:  # under 5% of a core
            break
    res["settle_s"] = round(time.monotonic() - t, 2)
    out.update(res)


class LiveStorm:
    """Run 2's storm: launched STORM_AT_S into publishing, collected when it ends."""

    def __init__(self, b: Bench, peer: Peer, cmd: list[Arg]) -> None:
        self.b, self.cmd = b, cmd
        self.sampler = CpuSampler(peer.server_pids())
        self.timer: threading.Timer | None = None
        self.proc: Popen | None = None
        self.t_pub: float | None = None
        self.t_launch: float | None = None
        self.listen0: dict[str, int] = {}
        self.listen1: dict[str, int] = {}
        self.result: JSON | None = None

    def _launch(self) -> None:
        self.listen0 = listen_counters()
        self.t_launch = time.time()
        self.proc = self.b.procs.spawn(
            "sse_load storm", self.cmd, stdout=subprocess.PIPE, logfile=self.b.out / "sse_load.log"
        )

    @contextmanager
    def during_publish(self) -> Iterator[None]:
        self.sampler.start()
        self.t_pub = time.time()
        self.timer = threading.Timer(STORM_AT_S, self._launch)
        self.timer.start()
        yield
        self.timer.join(STORM_AT_S + 5)  # a publisher that failed early: wait for it
        if self.proc is not None:
            self.result = self.b.procs.result(
                self.proc, self.b.options.connect_timeout + STORM_HOLD_S + 90
            )
            self.listen1 = listen_counters()

    def end(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer.join(5)
        self.sampler.stop()

    def to_json(self, t_pub0: float | None, n: int) -> JSON:
        """The storm's result: its readers, the listen counters, and the CPU per
        connecting reader (its connect window minus the residents' rate before it)."""
        sres = self.result or {"error": "the storm did not start"}
        srv = sres.get("server") or {}
        before, conn = srv.get("before") or {}, srv.get("connected") or {}
        live: JSON = {
            "at_s": STORM_AT_S,
            "hold_s": STORM_HOLD_S,
            "command": quote(self.cmd),
            "cpu_source": self.sampler.source,
            "subscribers": sres,
            "cpu_samples": self.sampler.dump(t_pub0),
            "listen": counters_delta(self.listen0, self.listen1),
        }
        if t_pub0 and self.t_launch:
            live["launched_at_s"] = round(self.t_launch - t_pub0, 2)
        if t_pub0 and before.get("t") and conn.get("t"):
            w = conn["t"] - before["t"]
            cpu = self.sampler.cpu(before["t"], conn["t"])
            r0 = self.sampler.rate(t_pub0 + 1.0, before["t"])
            live.update(window_s=round(w, 3), rate_before=r0)
            if cpu is not None and r0 is not None:
                live.update(
                    cpu_window_s=round(cpu, 4),
                    rate_before=round(r0, 4),
                    us_per_reader=round((cpu - r0 * w) / n * 1e6, 1),
                )
        return live


def storm(b: Bench, peer: Peer, label: str, name: str, *, n: int, count: int, rate: float) -> JSON:
    """C-N: both runs, saved as <label>.json (run 2's readers, with run 1's as `baseline`
    and both storms under `storm`)."""
    o = b.options
    residents = o.storm_residents
    idle: JSON = {}

    def before_items() -> None:
        preload(b, peer, idle)
        idle_storm(b, peer, n, idle)

    log(f"  {name}: {residents} residents, {n} connect at once, then items (baseline)")
    load = Load(
        label,
        clients=residents,
        count=count,
        rate=rate,
        hold=0,
        publisher_args=peer.publisher(),
        scenario=name,
        save=False,
    )
    # The idle storm runs between "all connected" and the items: the readers wait for it.
    base = run_load(
        b,
        peer,
        replace(load, label=f"{label}-baseline", extra_time=o.connect_timeout + 15),
        before_publish=before_items,
    )
    peer.settle()
    if o.fresh:
        peer.stop()
        peer.start()
    run = new_run_id()
    live = LiveStorm(b, peer, storm_cmd(b, peer, n, hold=STORM_HOLD_S, run=run))
    log(f"  {name}: {residents} residents, {n} connect at once {STORM_AT_S:g} s in")
    try:
        res = run_load(
            b,
            peer,
            replace(load, publisher_args=peer.publisher(), run=run),
            during_publish=live.during_publish,
        )
    finally:
        live.end()
    t_pub0 = (res.get("publisher") or {}).get("t_start") or live.t_pub
    live_res = live.to_json(t_pub0, n)
    res["params"].update(
        residents=residents, storm=n, storm_at_s=STORM_AT_S, pub_time_s=count / rate
    )
    res["baseline"] = {k: base.get(k) for k in ("run", "subscribers", "publisher", "commands")}
    res["storm"] = {"clients": n, "idle": idle, "live": live_res}
    res["commands"] = res["commands"][:1] + [quote(live.cmd)] + res["commands"][1:]
    b.save(label, res)
    _log_storm(name, n, base, res, idle, live_res)
    return res


def _log_storm(name: str, n: int, base: JSON, res: JSON, idle: JSON, live: JSON) -> None:
    for what, x in (("onto idle residents", idle), ("while publishing", live)):
        ss = x.get("subscribers") or {}
        log(
            f"  {name} storm {what}: connected {ss.get('clients_connected')}/{n} in "
            f"{ss.get('connect_time_s')} s, errors {ss.get('connect_errors')} "
            f"{ss.get('bad_status')}, cut-offs {ss.get('disconnects')}, listen "
            f"{x.get('listen')}, CPU {x.get('cpu_window_s')} s in {x.get('window_s')} s: "
            f"{x.get('connect_us_per_reader', x.get('us_per_reader'))} us/reader"
        )
    bl = (base.get("subscribers") or {}).get("latency_ms") or {}
    wl = (res.get("subscribers") or {}).get("latency_ms") or {}
    log(
        f"  {name} residents p50/p99/max: {bl.get('p50')}/{bl.get('p99')}/{bl.get('max')}"
        f" -> {wl.get('p50')}/{wl.get('p99')}/{wl.get('max')} ms with the storm"
    )
