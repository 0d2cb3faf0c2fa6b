#!/usr/bin/env python3
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
import contextlib
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
HARNESS = BENCH / "harness"
PY = sys.executable

ALL_PEERS = ["nchan", "ticker", "ticker-asgi", "fanout", "naive"]
ALL_SCENARIOS = [
    "S3",
    "S1-1000",
    "S1-2000",
    "S1-5000",
    "S1-10000",
    "S2",
    "C-2000",
    "C-10000",
    "B-10000",
]
ALL_EXTRAS = ["floors", "post", "workers", "profile"]
QUICK_PEERS = ["ticker", "nchan"]
QUICK_SCENARIOS = ["S3-2000", "S1-1000"]
# The peers issue #18's goals compare; a full run plays the storm and burst scenarios
# (C-N, B-N) for these only.
GOAL_PEERS = ["ticker", "ticker-asgi", "nchan", "nchan2"]

# C-N: residents, their items, and when the storm starts (s after publishing starts).
STORM_RESIDENTS = 1000
STORM_ITEMS = 300
STORM_RATE = 20.0
STORM_AT_S = 4.0
STORM_HOLD_S = 3.0  # after the last storm reader connected
STORM_PRELOAD = 20  # items published before the storm onto idle residents (ticker keeps 20)
# B-N: idle time before the first item, items, seconds between them.
BURST_IDLE_S = 5.0
BURST_ITEMS = 4
BURST_GAP_S = 3.0

HEADLINE = "Load seq={seq} ts={ts} run={run}"
PYSPY_CANDIDATES = [
    os.environ.get("PYSPY", ""),
    str(Path(PY).parent / "py-spy"),
    shutil.which("py-spy") or "",
    "/tmp/pyspy-venv/bin/py-spy",
]


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes
def _ppid_map():
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            s = Path(f"/proc/{d}/stat").read_bytes()
            ppid = int(s[s.rindex(b")") + 2 :].split()[1])
            kids.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return kids


def descendants(pid: int) -> list[int]:
    kids = _ppid_map()
    out, todo = [], list(kids.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def alive(pid: int) -> bool:
    try:
        s = Path(f"/proc/{pid}/stat").read_bytes()
        return s[s.rindex(b")") + 2 : s.rindex(b")") + 3] != b"Z"
    except OSError:
        return False


class Procs:
    """Every process this run starts; stopped by PID (and its recorded descendants)."""

    def __init__(self):
        self.live: dict[int, tuple[str, subprocess.Popen]] = {}

    def spawn(self, name, cmd, *, env=None, cwd=None, logfile=None, stdout=None):
        err = open(logfile, "ab") if logfile else subprocess.DEVNULL  # noqa: SIM115
        try:
            p = subprocess.Popen(
                [str(c) for c in cmd],
                env=env,
                cwd=cwd,
                stdout=stdout if stdout is not None else err,
                stderr=err,
                start_new_session=True,
            )
        finally:
            if logfile:
                err.close()  # the child has its own copy
        self.live[p.pid] = (name, p)
        return p

    def stop(self, p, sig=signal.SIGTERM, grace=10.0):
        if p is None or p.pid not in self.live:
            return
        name = self.live[p.pid][0]
        t0 = time.monotonic()
        tree = descendants(p.pid)
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (p.poll() is None or any(alive(x) for x in tree)):
            time.sleep(0.1)
        for x in [p.pid] + tree:
            if alive(x):
                log(f"{name}: pid {x} still alive after {grace:.0f}s, SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(x, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)
        self.live.pop(p.pid, None)
        if time.monotonic() - t0 > 3:
            log(f"{name}: stopping took {time.monotonic() - t0:.1f}s")

    def stop_all(self):
        for _pid, (_name, p) in reversed(list(self.live.items())):
            self.stop(p, grace=5.0)


PROCS = Procs()


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_port(preferred):
    for p in range(preferred, preferred + 50):
        if port_free(p):
            return p
    raise SystemExit(f"no free port near {preferred}")


def wait_http(url, timeout=30.0, ok=(200,)):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status in ok:
                    return True
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return True
        except Exception:
            pass
        time.sleep(0.2)
    return False


def redis_ping(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def conns_on_port(port):
    """Server-side TCP connections on `port` (any state but LISTEN and TIME_WAIT)."""
    n = 0
    hexport = f":{port:04X}"
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(hexport) and parts[3] not in ("0A", "06"):
                        n += 1
        except OSError:
            pass
    return n


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_split(pids):
    """User and system CPU seconds and context switches summed over `pids`."""
    u = st = vol = invol = 0.0
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_bytes()
            fields = raw[raw.rindex(b")") + 2 :].split()
            u += int(fields[11]) / CLK_TCK
            st += int(fields[12]) / CLK_TCK
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    invol += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return {"user_s": u, "sys_s": st, "vol_cs": vol, "invol_cs": invol}


def cpu_run_s(pids):
    """CPU seconds summed over every thread of `pids`, from /proc/PID/task/TID/schedstat
    (nanoseconds; /proc/PID/stat counts in 10 ms ticks). None if the kernel has no
    schedstat."""
    tot, seen = 0, False
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                tot += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_bytes().split()[0])
                seen = True
            except (OSError, ValueError, IndexError):
                pass
    return tot / 1e9 if seen else None


class CpuSampler:
    """The server's CPU seconds every `every` s in a thread, as (time, cpu) pairs; the
    CPU at any time in between is interpolated linearly."""

    def __init__(self, pids, every=0.02):
        self.pids, self.every = list(pids), every
        self.samples: list[tuple[float, float]] = []
        self.source = "schedstat" if cpu_run_s(self.pids) is not None else "stat"
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._loop, daemon=True)

    def read(self):
        if self.source == "schedstat":
            return cpu_run_s(self.pids) or 0.0
        c = cpu_split(self.pids)
        return c["user_s"] + c["sys_s"]

    def _loop(self):
        while not self._stop.is_set():
            self.samples.append((time.time(), self.read()))
            self._stop.wait(self.every)

    def start(self):
        self._th.start()
        return self

    def stop(self):
        self._stop.set()
        if self._th.is_alive():
            self._th.join(5)
        self.samples.append((time.time(), self.read()))

    def at(self, t):
        sm = self.samples
        if not sm or t < sm[0][0] - 0.05 or t > sm[-1][0] + 0.05:
            return None
        for (t0, c0), (t1, c1) in zip(sm, sm[1:], strict=False):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1
        return sm[0][1] if t < sm[0][0] else sm[-1][1]

    def cpu(self, t0, t1):
        """CPU seconds in [t0, t1]; None outside the sampled time."""
        a, b = self.at(t0), self.at(t1)
        return None if a is None or b is None else b - a

    def rate(self, t0, t1, min_s=0.5):
        """CPU seconds per second over [t0, t1]; None for a window under min_s."""
        if t0 is None or t1 is None or t1 - t0 < min_s:
            return None
        c = self.cpu(t0, t1)
        return None if c is None else c / (t1 - t0)

    def dump(self, t0=None):
        t0 = self.samples[0][0] if t0 is None and self.samples else t0
        return [[round(t - t0, 3), round(c, 4)] for t, c in self.samples]


def fd_count(pids):
    n = 0
    for p in pids:
        with contextlib.suppress(OSError):
            n += len(os.listdir(f"/proc/{p}/fd"))
    return n


def item_template(headline=HEADLINE):
    """The same item JSON ticker streams, as the peers' payload (same bytes per event)."""
    sys.path.insert(0, str(HARNESS))
    from publish import item_json

    return item_json(headline, "bench-peer-item")


# ------------------------------------------------------------------ peers
class Peer:
    name = "?"
    uses_redis = False

    def __init__(self, rundir: Path, *, redis_port: int):
        self.rundir = rundir
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.redis_port = redis_port
        self.redis = None
        self.proc = None
        self.port = 0

    @property
    def pid(self):
        return self.proc.pid

    @property
    def aux_pids(self):
        return [self.redis.pid] if self.redis else []

    def start_redis(self):
        port = pick_port(self.redis_port)
        d = self.rundir / "redis"
        d.mkdir(exist_ok=True)
        self.redis = PROCS.spawn(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                port,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                d,
                "--daemonize",
                "no",
                "--maxclients",
                "15000",
                "--protected-mode",
                "yes",
                "--loglevel",
                "warning",
            ],
            logfile=d / "redis.log",
        )
        if not redis_ping(port):
            raise RuntimeError("redis did not start")
        self.redis_port = port
        self.redis_url = f"redis://127.0.0.1:{port}/0"

    def stop(self):
        # ticker ends its streams on SIGTERM and exits within a second or two; the
        # sse-starlette peers with a backlog never exit on their own (SIGKILL after 5 s).
        PROCS.stop(self.proc, grace=15.0 if isinstance(self, Ticker) else 5.0)
        if self.redis:
            PROCS.stop(self.redis, grace=5.0)
        self.proc = self.redis = None

    def server_pids(self):
        return [self.pid] + descendants(self.pid)

    def publisher(self):
        raise NotImplementedError


class Nchan(Peer):
    name = "nchan"

    def __init__(self, rundir, *, redis_port, workers=1):
        super().__init__(rundir, redis_port=redis_port)
        self.workers = workers

    def start(self):
        self.port = pick_port(8081)
        module = os.environ.get("NCHAN_MODULE", "/usr/lib/nginx/modules/ngx_nchan_module.so")
        if not shutil.which("nginx") or not os.path.exists(module):
            raise RuntimeError(
                "nginx/nchan missing: apt-get install -y nginx-light libnginx-mod-nchan"
            )
        (self.rundir / "tmp").mkdir(exist_ok=True)
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        conf = (BENCH / "peers/nchan/nginx.conf.in").read_text()
        for k, v in {
            "@WORKERS@": self.workers,
            "@PORT@": self.port,
            "@MODULE@": module,
            "@NOFILE@": nofile,
        }.items():
            conf = conf.replace(k, str(v))
        (self.rundir / "nginx.conf").write_text(conf)
        prefix = str(self.rundir) + "/"
        t = subprocess.run(
            ["nginx", "-t", "-p", prefix, "-c", self.rundir / "nginx.conf"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if t.returncode:
            raise RuntimeError("nginx -t failed: " + t.stderr[-500:])
        self.proc = PROCS.spawn(
            "nginx",
            ["nginx", "-p", prefix, "-c", self.rundir / "nginx.conf"],
            logfile=self.rundir / "stdout.log",
        )
        if not wait_http(f"http://127.0.0.1:{self.port}/nchan_status"):
            raise RuntimeError("nginx did not answer")
        self.sub_url = f"http://127.0.0.1:{self.port}/sub"

    def stop(self):
        # nginx: SIGQUIT is the graceful stop; the workers are in the recorded tree.
        PROCS.stop(self.proc, sig=signal.SIGQUIT, grace=10.0)
        self.proc = None

    def publisher(self):
        return [
            "--target",
            "http",
            "--url",
            f"http://127.0.0.1:{self.port}/pub",
            "--template",
            item_template(),
        ]


class PyPeer(Peer):
    """naive or fanout: Starlette + sse-starlette + its own redis."""

    uses_redis = True

    def __init__(self, rundir, *, redis_port, kind):
        super().__init__(rundir, redis_port=redis_port)
        self.name = self.kind = kind

    def start(self):
        self.start_redis()
        self.port = pick_port(8090 if self.kind == "naive" else 8091)
        env = dict(
            os.environ,
            REDIS_URL=self.redis_url,
            REDIS_MAX_CONNECTIONS=os.environ.get("REDIS_MAX_CONNECTIONS", "15000"),
        )
        app_dir = BENCH / "peers" / f"{self.kind}_sse"
        self.proc = PROCS.spawn(
            self.kind,
            [
                PY,
                "-m",
                "uvicorn",
                "app:app",
                "--app-dir",
                app_dir,
                "--host",
                "127.0.0.1",
                "--port",
                self.port,
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
                "--backlog",
                "4096",
                "--timeout-graceful-shutdown",
                "2",
            ],
            env=env,
            cwd=self.rundir,
            logfile=self.rundir / "uvicorn.log",
        )
        if not wait_http(
            f"http://127.0.0.1:{self.port}/stats"
            if self.kind == "fanout"
            else f"http://127.0.0.1:{self.port}/nope",
            ok=(200, 404),
        ):
            raise RuntimeError(f"{self.kind} did not answer")
        self.sub_url = f"http://127.0.0.1:{self.port}/events"

    def publisher(self):
        return [
            "--target",
            "redis",
            "--redis-url",
            self.redis_url,
            "--stream",
            "ticker",
            "--template",
            item_template(),
        ]


class Ticker(Peer):
    name = "ticker"
    uses_redis = True

    def __init__(self, rundir, *, redis_port, workers=1, direct_writes=True):
        super().__init__(rundir, redis_port=redis_port)
        self.workers = workers
        self.direct_writes = direct_writes
        if workers > 1:
            self.name = f"ticker-w{workers}"
        if not direct_writes:
            self.name = "ticker-asgi"

    def env(self):
        return dict(
            os.environ,
            PYTHONPATH=str(REPO),
            TICKER_REDIS_URL=self.redis_url,
            TICKER_KEY_PREFIX="bench",
            TICKER_STATE_DIR=str(self.rundir / "state"),
            # The default write limit (300/min per token, burst 60) would answer 429 in the
            # publish-API test; the limiter still runs (one Lua call per POST).
            TICKER_WRITE_RATE_PER_MINUTE="60000000",
            TICKER_WRITE_BURST="1000000",
            TICKER_DIRECT_WRITES="true" if self.direct_writes else "false",
        )

    def start(self):
        self.start_redis()
        self.port = pick_port(8000)
        env = self.env()
        # cwd = the run folder, so a developer's .env in the repo is not read.
        t = subprocess.run(
            [PY, "-m", "ticker", "token", "create", "bench", "--channel", "*"],
            env=env,
            cwd=self.rundir,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if t.returncode:
            raise RuntimeError("token create failed: " + t.stderr[-500:])
        self.token = t.stdout.strip().splitlines()[-1]
        cmd = [PY, "-m", "ticker", "serve", "--port", self.port, "--log-level", "warning"]
        if self.workers > 1:
            cmd += ["--workers", self.workers]
        self.proc = PROCS.spawn(
            self.name, cmd, env=env, cwd=self.rundir, logfile=self.rundir / "server.log"
        )
        if not wait_http(f"http://127.0.0.1:{self.port}/readyz", timeout=40):
            raise RuntimeError(
                "ticker did not become ready; see " + str(self.rundir / "server.log")
            )
        self.sub_url = f"http://127.0.0.1:{self.port}/channels/en/events"
        self.post_url = f"http://127.0.0.1:{self.port}/channels/en/items"
        self.serve_cmd = " ".join(shlex.quote(str(c)) for c in cmd)

    def worker_pids(self):
        """The process(es) doing the work: the server itself, or uvicorn's workers."""
        if self.workers == 1:
            return [self.pid]
        out = []
        for p in descendants(self.pid):
            try:
                if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes():
                    out.append(p)
            except OSError:
                pass
        return out

    def publisher(self):
        return [
            "--target",
            "ticker",
            "--redis-url",
            self.redis_url,
            "--stream",
            "bench:{en}:events",
            "--maxlen",
            "1000",
            "--template",
            HEADLINE,
        ]

    def post_publisher(self):
        return [
            "--target",
            "http",
            "--url",
            self.post_url,
            "--header",
            f"Authorization: Bearer {self.token}",
            "--template",
            '{"headline":"' + HEADLINE + '"}',
        ]


# ------------------------------------------------------------------ scenarios
def parse_scenario(s):
    """S3, S3-N, S1-N, S2, S2-N, C-N, B-N -> (kind, clients, count, rate, hold).
    For C-N, clients is the storm's size (the residents: --storm-residents)."""
    kind, _, n = s.partition("-")
    if n and not n.isdigit():
        raise SystemExit(f"bad scenario {s!r}: N must be a number")
    if kind == "S3":
        return "S3", int(n or 10000), 0, 0.0, 10.0
    if kind == "S1":
        return "S1", int(n or 1000), 400, 20.0, 0.0
    if kind == "S2":
        return "S2", int(n or 1000), 2000, 0.0, 0.0
    if kind in ("C", "B") and n and int(n) < 1:
        raise SystemExit(f"bad scenario {s!r}: N must be at least 1")
    if kind == "C":
        return "C", int(n or 2000), STORM_ITEMS, STORM_RATE, 0.0
    if kind == "B":
        return "B", int(n or 10000), BURST_ITEMS, 1.0 / BURST_GAP_S, 0.0
    raise SystemExit(f"unknown scenario {s!r} (S3[-N], S1-N, S2[-N], C-N, B-N)")


def listen_counters():
    """The kernel's TcpExt ListenOverflows / ListenDrops / SyncookiesSent (machine-wide):
    a full accept queue drops SYNs, and the client retries a second later."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            kv = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return {
                k: int(kv[k])
                for k in ("ListenOverflows", "ListenDrops", "SyncookiesSent")
                if k in kv
            }
    return {}


def quote(cmd):
    return " ".join(shlex.quote(str(c)) for c in cmd)


class Runner:
    def __init__(self, a, out: Path):
        self.a = a
        self.out = out
        self.t0 = time.monotonic()
        self.skipped: list[str] = []
        self.commands: list[str] = []

    def over_budget(self):
        return time.monotonic() - self.t0 > self.a.budget_min * 60

    def settle(self, peer, _base=None, limit=20.0):
        """Let the server close the last run's sockets before the next run."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            n = conns_on_port(peer.port)
            if n <= 10:
                break
            time.sleep(0.5)
        else:
            log(f"  settle: {n} connections still open on port {peer.port} after {limit:.0f}s")
        time.sleep(2.0)

    def scenario(
        self,
        peer,
        label,
        *,
        clients,
        count,
        rate,
        hold,
        publisher_cmd=None,
        publisher="publish",
        track_every=None,
        on_publish=None,
        drain_max=None,
        scenario_name=None,
        idle_before=1.0,
        save=True,
        run=None,
        before_publish=None,
        extra_time=0.0,
    ):
        """One run: readers connect, then publish, then drain. Same JSON shape as the
        shared harness's run_scenario.py (plus `commands`). `idle_before`: seconds between
        "all connected" and the first item, or `before_publish()` runs then instead (the
        readers' time bound gets `extra_time` more); `save`: write <label>.json (else the
        caller does, with more in it); `run`: the run id (default: a new one)."""
        a = self.a
        track_every = track_every or a.track_every
        drain_max = a.drain_max if drain_max is None else drain_max
        run = run or uuid.uuid4().hex[:10]
        # post_load is bounded by its own --max-time (a.post_max_time); publish.py at a rate
        # takes count/rate; as fast as possible (S2) a few seconds.
        pub_time = (
            (count / rate) if rate else (self.a.post_max_time if publisher == "post_load" else 10.0)
        )
        max_time = pub_time + drain_max + 10 + extra_time
        with tempfile.TemporaryDirectory() as td:
            ready = os.path.join(td, "ready")
            sub_cmd = [
                PY,
                HARNESS / "sse_load.py",
                "--url",
                peer.sub_url,
                "--clients",
                clients,
                "--procs",
                a.procs,
                "--src-ips",
                4,
                "--connect-timeout",
                a.connect_timeout,
                "--expect",
                count,
                "--run",
                run,
                "--idle-timeout",
                10,
                "--max-time",
                max_time,
                "--hold",
                hold,
                "--ready-file",
                ready,
                "--track-every",
                track_every,
                "--text-markers",
                "--server-pid",
                peer.pid,
                "--server-pid-tree",
            ]
            for x in peer.aux_pids:
                sub_cmd += ["--aux-pid", x]
            sub = PROCS.spawn(
                "sse_load", sub_cmd, stdout=subprocess.PIPE, logfile=self.out / "sse_load.log"
            )
            t_end = time.monotonic() + a.connect_timeout + 40
            while not os.path.exists(ready) and sub.poll() is None and time.monotonic() < t_end:
                time.sleep(0.1)
            pub_res, pcmd = None, None
            split0 = None
            if count > 0 and sub.poll() is None and os.path.exists(ready):
                if before_publish:
                    before_publish()
                else:
                    time.sleep(idle_before)
                split0 = cpu_split(peer.server_pids())
                if publisher == "publish":
                    pcmd = [
                        PY,
                        HARNESS / "publish.py",
                        "--count",
                        count,
                        "--rate",
                        rate,
                        "--run",
                        run,
                        "--max-time",
                        pub_time + 60,
                    ] + publisher_cmd
                else:  # post_load: concurrent POSTs
                    pcmd = [
                        PY,
                        HARNESS / "post_load.py",
                        "--count",
                        count,
                        "--run",
                        run,
                        "--max-time",
                        self.a.post_max_time,
                    ] + publisher_cmd
                ctx = on_publish() if on_publish else None
                pp = PROCS.spawn(
                    "publisher", pcmd, stdout=subprocess.PIPE, logfile=self.out / "publish.log"
                )
                try:
                    pout, _ = pp.communicate(timeout=pub_time + 150)
                except subprocess.TimeoutExpired:
                    PROCS.stop(pp, sig=signal.SIGKILL, grace=2)
                    pout = b""
                PROCS.live.pop(pp.pid, None)
                try:
                    pub_res = json.loads(pout.decode().strip().splitlines()[-1])
                except (ValueError, IndexError):
                    pub_res = {"error": pout.decode()[-500:], "rc": pp.returncode}
                if ctx:
                    ctx()
            samples = []
            if split0:
                # Sample the server's user/sys split in the background, to cut it at the
                # moment sse_load took its last server sample (before it closes sockets).
                stop_ev = threading.Event()
                pids = peer.server_pids()

                def sampler():
                    while not stop_ev.is_set():
                        samples.append((time.time(), cpu_split(pids)))
                        stop_ev.wait(0.25)

                th = threading.Thread(target=sampler, daemon=True)
                th.start()
            try:
                out, _ = sub.communicate(timeout=max_time + 150)
            except subprocess.TimeoutExpired:
                PROCS.stop(sub, sig=signal.SIGKILL, grace=2)
                out = b""
            if split0:
                stop_ev.set()
                th.join(2)
            PROCS.live.pop(sub.pid, None)
            try:
                sub_res = json.loads(out)
            except ValueError:
                sub_res = {"error": out.decode()[-2000:], "rc": sub.returncode}
        hide = getattr(peer, "token", None)
        cmds = [quote(sub_cmd)] + ([quote(pcmd)] if pcmd else [])
        if hide:
            cmds = [c.replace(hide, "$TOKEN") for c in cmds]
        res = {
            "scenario": scenario_name or label.split(":", 1)[-1],
            "label": peer.name,
            "run": run,
            "peer": peer.name,
            "params": {
                "clients": clients,
                "count": count,
                "rate": rate,
                "hold": hold,
                "procs": a.procs,
                "src_ips": 4,
                "track_every": track_every,
                "drain_max": drain_max,
                "idle_before": idle_before,
            },
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "subscribers": sub_res,
            "publisher": pub_res,
            "commands": cmds,
        }
        t_end = ((sub_res.get("server") or {}).get("end") or {}).get("t")
        if split0 and samples and t_end:
            before = [x for t, x in samples if t <= t_end] or [samples[0][1]]
            split1 = before[-1]
            res["server_cpu_split"] = {k: round(split1[k] - split0[k], 3) for k in split0}
        if save:
            (self.out / f"{label}.json").write_text(json.dumps(res, indent=1) + "\n")
        s = sub_res
        srv = s.get("server", {})
        lat = s.get("latency_ms", {})
        log(
            f"  {label}: connected {s.get('clients_connected')}/{clients} deliveries "
            f"{s.get('deliveries')} lost {s.get('lost')} dup {s.get('duplicates')} "
            f"ooo {s.get('out_of_order')} cutoffs {s.get('disconnects')} p50 {lat.get('p50')} "
            f"p99 {lat.get('p99')} srv_cpu_run {srv.get('cpu_s_run')} rss/conn "
            f"{srv.get('rss_per_conn_kb')} cli_cpu {s.get('client_cpu_s')} "
            f"pub {(pub_res or {}).get('rate_achieved')}/s"
        )
        return res

    def run_peer_scenarios(self, peer, scenarios):
        """Each scenario on a freshly started server (and redis): a server still busy with
        the last run's backlog (the fanout peer after S1-10000 took minutes) must not
        decide the next cell, and S3's memory needs a fresh process anyway."""
        for i, s in enumerate(scenarios):
            if self.over_budget():
                self.skipped.append(f"{peer.name} {s}: time budget")
                continue
            if i > 0 and self.a.fresh:
                peer.stop()
                peer.start()
            kind, clients, count, rate, hold = parse_scenario(s)
            log(f"{peer.name} {s}")
            tag = self.a.tag
            label = f"{peer.name}-{s}" + (f"-{tag}" if tag else "")
            name = f"{s} ({tag})" if tag else s
            if kind == "C":
                self.storm(peer, label, name, storm=clients, count=count, rate=rate)
            else:
                self.scenario(
                    peer,
                    label,
                    clients=clients,
                    count=count,
                    rate=rate,
                    hold=hold,
                    publisher_cmd=peer.publisher(),
                    scenario_name=name,
                    # B-N: the readers sit idle before the first urgent item.
                    idle_before=BURST_IDLE_S if kind == "B" else 1.0,
                )
            self.settle(peer)

    def storm_cmd(self, peer, n, *, hold, run):
        """A second load generator: n readers whose connects are all in flight at once."""
        a = self.a
        return [
            PY,
            HARNESS / "sse_load.py",
            "--url",
            peer.sub_url,
            "--clients",
            n,
            "--procs",
            a.procs,
            "--src-ips",
            4,
            "--connect-concurrency",
            -(-n // a.procs),
            "--connect-timeout",
            a.connect_timeout,
            "--expect",
            0,
            "--run",
            run,
            "--hold",
            hold,
            "--max-time",
            hold + 30,
            "--text-markers",
            "--server-pid",
            peer.pid,
            "--server-pid-tree",
        ]

    def collect(self, p, timeout):
        """Wait for a storm's load generator; its JSON (or the error)."""
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            PROCS.stop(p, sig=signal.SIGKILL, grace=2)
            out = b""
        PROCS.live.pop(p.pid, None)
        try:
            return json.loads(out)
        except ValueError:
            return {"error": out.decode()[-2000:], "rc": p.returncode}

    def preload(self, peer, out):
        """Items on the ticker before the idle storm, as in a storm while publishing: a
        new ticker reader gets the current items (nchan sends new readers new messages
        only). Another run id: the residents count them as foreign, not as deliveries."""
        n = self.a.storm_preload
        if n <= 0:
            return
        cmd = [
            PY,
            HARNESS / "publish.py",
            "--count",
            n,
            "--rate",
            0,
            "--run",
            "pre" + uuid.uuid4().hex[:7],
            "--max-time",
            30,
        ] + peer.publisher()
        out["preload_command"] = quote(cmd)
        t = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60)
        try:
            out["preload"] = json.loads(t.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            out["preload"] = {"error": (t.stdout + t.stderr)[-500:]}
        time.sleep(1.0)

    def idle_storm(self, peer, n, out):
        """N readers connect at once onto the idle residents (nothing is published): the
        connect CPU with nothing else going on. Window: from just before the storm's load
        generator starts to 0.5 s after its last reader had its headers (work a server does
        after the headers counts too); minus the idle rate of the second before."""
        hold = 1.0
        cmd = self.storm_cmd(peer, n, hold=hold, run=uuid.uuid4().hex[:10])
        sampler = CpuSampler(peer.server_pids()).start()
        try:
            time.sleep(1.0)
            listen0 = listen_counters()
            t0 = time.time()
            p = PROCS.spawn(
                "sse_load storm", cmd, stdout=subprocess.PIPE, logfile=self.out / "sse_load.log"
            )
            sres = self.collect(p, self.a.connect_timeout + hold + 90)
            listen1 = listen_counters()
        finally:
            sampler.stop()
        conn = (sres.get("server") or {}).get("connected") or {}
        res = {
            "command": quote(cmd),
            "hold_s": hold,
            "cpu_source": sampler.source,
            "subscribers": sres,
            "listen": {k: listen1[k] - listen0[k] for k in listen0 if k in listen1},
            "cpu_samples": sampler.dump(t0),
        }
        if conn.get("t"):
            t1 = conn["t"] + 0.5
            idle = sampler.rate(t0 - 1.0, t0) or 0.0
            cpu = sampler.cpu(t0, t1)
            if cpu is not None:
                res.update(
                    window_s=round(t1 - t0, 3),
                    cpu_window_s=round(cpu, 4),
                    idle_rate=round(idle, 4),
                    connect_cpu_s=round(cpu - idle * (t1 - t0), 4),
                    connect_us_per_reader=round((cpu - idle * (t1 - t0)) / n * 1e6, 1),
                )
        # The storm's sockets closed (RST): the items start once the server is idle again.
        t = time.monotonic()
        deadline = t + 20.0
        while time.monotonic() < deadline:
            c0 = sampler.read()
            time.sleep(0.5)
            if sampler.read() - c0 < 0.025:  # under 5% of a core
                break
        res["settle_s"] = round(time.monotonic() - t, 2)
        out.update(res)

    def storm(self, peer, label, name, *, storm, count, rate):
        """C-N, two runs on fresh servers, --storm-residents readers in each.
        1. The residents connect; STORM_PRELOAD items are published (preload); N readers
           connect at once onto them with nothing more published (idle_storm: the
           connect CPU), stay 1 s and leave; then `count` items at `rate`/s: the
           residents' latency without a storm (the baseline).
        2. The residents get the same items; STORM_AT_S into publishing N readers connect
           at once, stay STORM_HOLD_S after the last of them connected, and leave (RST)
           while publishing goes on: the residents' latency with the storm, and the
           server's CPU in the storm's connect window minus the residents' rate before."""
        a = self.a
        residents = a.storm_residents
        pub_time = count / rate
        idle: dict = {}

        def before_items():
            self.preload(peer, idle)
            self.idle_storm(peer, storm, idle)

        log(f"  {name}: {residents} residents, {storm} connect at once, then items (baseline)")
        base = self.scenario(
            peer,
            f"{label}-baseline",
            clients=residents,
            count=count,
            rate=rate,
            hold=0,
            publisher_cmd=peer.publisher(),
            scenario_name=name,
            save=False,
            before_publish=before_items,
            extra_time=a.connect_timeout + 15,
        )
        self.settle(peer)
        if a.fresh:
            peer.stop()
            peer.start()
        run = uuid.uuid4().hex[:10]
        cmd = self.storm_cmd(peer, storm, hold=STORM_HOLD_S, run=run)
        sampler = CpuSampler(peer.server_pids())
        st: dict = {}
        timer = None

        def launch():
            st["listen0"] = listen_counters()
            st["t_launch"] = time.time()
            st["proc"] = PROCS.spawn(
                "sse_load storm", cmd, stdout=subprocess.PIPE, logfile=self.out / "sse_load.log"
            )

        def on_publish():
            nonlocal timer
            sampler.start()
            st["t_pub"] = time.time()
            timer = threading.Timer(STORM_AT_S, launch)
            timer.start()

            def done():
                timer.join(STORM_AT_S + 5)  # a publisher that failed early: wait for it
                p = st.get("proc")
                if p is not None:
                    st["sres"] = self.collect(p, a.connect_timeout + STORM_HOLD_S + 90)
                    st["listen1"] = listen_counters()

            return done

        log(f"  {name}: {residents} residents, {storm} connect at once {STORM_AT_S:g} s in")
        try:
            res = self.scenario(
                peer,
                label,
                clients=residents,
                count=count,
                rate=rate,
                hold=0,
                publisher_cmd=peer.publisher(),
                scenario_name=name,
                on_publish=on_publish,
                save=False,
                run=run,
            )
        finally:
            if timer is not None:
                timer.cancel()
                timer.join(5)
            sampler.stop()
        sres = st.get("sres") or {"error": "the storm did not start"}
        pub = res.get("publisher") or {}
        t_pub0 = pub.get("t_start") or st.get("t_pub")
        srv = sres.get("server") or {}
        b, c = srv.get("before") or {}, srv.get("connected") or {}
        live = {
            "at_s": STORM_AT_S,
            "hold_s": STORM_HOLD_S,
            "command": quote(cmd),
            "cpu_source": sampler.source,
            "subscribers": sres,
            "cpu_samples": sampler.dump(t_pub0),
        }
        l0, l1 = st.get("listen0") or {}, st.get("listen1") or {}
        live["listen"] = {k: l1[k] - l0[k] for k in l0 if k in l1}
        if t_pub0 and st.get("t_launch"):
            live["launched_at_s"] = round(st["t_launch"] - t_pub0, 2)
        if t_pub0 and b.get("t") and c.get("t"):
            w = c["t"] - b["t"]
            cpu = sampler.cpu(b["t"], c["t"])
            r0 = sampler.rate(t_pub0 + 1.0, b["t"])
            live.update(window_s=round(w, 3), rate_before=r0)
            if cpu is not None and r0 is not None:
                live.update(
                    cpu_window_s=round(cpu, 4),
                    rate_before=round(r0, 4),
                    us_per_reader=round((cpu - r0 * w) / storm * 1e6, 1),
                )
        res["params"].update(
            residents=residents, storm=storm, storm_at_s=STORM_AT_S, pub_time_s=pub_time
        )
        res["baseline"] = {k: base.get(k) for k in ("run", "subscribers", "publisher", "commands")}
        res["storm"] = {"clients": storm, "idle": idle, "live": live}
        res["commands"] = res["commands"][:1] + [quote(cmd)] + res["commands"][1:]
        (self.out / f"{label}.json").write_text(json.dumps(res, indent=1) + "\n")
        bl = (base.get("subscribers") or {}).get("latency_ms") or {}
        wl = (res.get("subscribers") or {}).get("latency_ms") or {}
        for what, x in (("onto idle residents", idle), ("while publishing", live)):
            ss = x.get("subscribers") or {}
            log(
                f"  {name} storm {what}: connected {ss.get('clients_connected')}/{storm} in "
                f"{ss.get('connect_time_s')} s, errors {ss.get('connect_errors')} "
                f"{ss.get('bad_status')}, cut-offs {ss.get('disconnects')}, listen "
                f"{x.get('listen')}, CPU {x.get('cpu_window_s')} s in {x.get('window_s')} s: "
                f"{x.get('connect_us_per_reader', x.get('us_per_reader'))} us/reader"
            )
        log(
            f"  {name} residents p50/p99/max: {bl.get('p50')}/{bl.get('p99')}/{bl.get('max')}"
            f" -> {wl.get('p50')}/{wl.get('p99')}/{wl.get('max')} ms with the storm"
        )
        return res

    # -- extras (ticker)
    def post_tests(self, peer, readers_list=None, tag=""):
        readers_list = readers_list or (0, self.a.post_readers)
        for readers in readers_list:
            if self.over_budget():
                self.skipped.append(f"{peer.name} POST-{readers}: time budget")
                continue
            base = fd_count(peer.server_pids())
            log(f"{peer.name} POST with {readers} readers")
            pub = [
                "--url",
                peer.post_url,
                "--conns",
                self.a.post_conns,
                "--header",
                f"Authorization: Bearer {peer.token}",
                "--template",
                '{"headline":"' + HEADLINE + '"}',
            ]
            if readers == 0:
                pcmd = [
                    PY,
                    HARNESS / "post_load.py",
                    "--count",
                    self.a.post_count,
                    "--run",
                    "nr" + uuid.uuid4().hex[:8],
                    "--max-time",
                    self.a.post_max_time,
                ] + pub
                split0 = cpu_split(peer.server_pids())
                t = subprocess.run(
                    [str(c) for c in pcmd], capture_output=True, text=True, timeout=180
                )
                split1 = cpu_split(peer.server_pids())
                try:
                    pres = json.loads(t.stdout.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    pres = {"error": t.stdout[-500:] + t.stderr[-500:]}
                res = {
                    "scenario": "POST-0",
                    "label": peer.name,
                    "peer": peer.name,
                    "params": {
                        "clients": 0,
                        "count": self.a.post_count,
                        "conns": self.a.post_conns,
                    },
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "subscribers": {},
                    "publisher": pres,
                    "commands": [quote(pcmd).replace(peer.token, "$TOKEN")],
                    "server_cpu_split": {k: round(split1[k] - split0[k], 3) for k in split0},
                }
                (self.out / f"{peer.name}-POST-0{tag}.json").write_text(json.dumps(res, indent=1))
                log(
                    f"  POST-0: {pres.get('rate_achieved')}/s "
                    f"p50 {pres.get('send_ms', {}).get('p50')}"
                    f" p99 {pres.get('send_ms', {}).get('p99')} statuses {pres.get('statuses')}"
                )
            else:
                self.scenario(
                    peer,
                    f"{peer.name}-POST-{readers}{tag}",
                    clients=readers,
                    count=self.a.post_count,
                    rate=0,
                    hold=0,
                    publisher="post_load",
                    publisher_cmd=pub,
                    track_every=self.a.post_track_every,
                    scenario_name=f"POST-{readers}",
                )
            self.settle(peer, base)

    def post_s1(self, peer):
        if self.over_budget():
            self.skipped.append("ticker S1-1000 via POST: time budget")
            return
        base = fd_count(peer.server_pids())
        n = min(1000, self.a.post_readers)
        log(f"ticker S1-{n} published through POST")
        self.scenario(
            peer,
            f"ticker-S1-{n}-post",
            clients=n,
            count=400,
            rate=20.0,
            hold=0,
            publisher_cmd=peer.post_publisher(),
            scenario_name=f"S1-{n} (POST)",
        )
        self.settle(peer, base)

    def profile(self, peer, label, *, clients, count, rate, publisher="publish", pub_cmd=None):
        spy = next((c for c in PYSPY_CANDIDATES if c and os.access(c, os.X_OK)), None)
        if spy is None:
            self.skipped.append(
                f"profile {label}: py-spy not found (pip install py-spy; or PYSPY=path)"
            )
            return
        if self.over_budget():
            self.skipped.append(f"profile {label}: time budget")
            return
        base = fd_count(peer.server_pids())
        raw = self.out / f"profile-{label}.txt"
        duration = int(count / rate) if rate else 15
        state = {}

        def start():
            cmd = [
                spy,
                "record",
                "--pid",
                peer.worker_pids()[0],
                "--rate",
                self.a.profile_rate,
                "--duration",
                duration,
                "--format",
                "raw",
                "-o",
                raw,
            ]
            # --native needs the target paused per sample; otherwise sample without pausing.
            cmd.append("--native" if self.a.profile_native else "--nonblocking")
            state["cmd"] = quote(cmd)
            state["p"] = PROCS.spawn("py-spy", cmd, logfile=self.out / "py-spy.log")

            def done():
                p = state["p"]
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=duration + 30)
                PROCS.stop(p, sig=signal.SIGINT, grace=10)

            return done

        log(f"profile {label}: py-spy {duration}s during {clients} readers, {count} items")
        res = self.scenario(
            peer,
            f"{peer.name}-profile-{label}",
            clients=clients,
            count=count,
            rate=rate,
            hold=0,
            publisher=publisher,
            publisher_cmd=pub_cmd or peer.publisher(),
            on_publish=start,
            scenario_name=f"profile {label}",
        )
        res["profile_cmd"] = state.get("cmd")
        (self.out / f"{peer.name}-profile-{label}.json").write_text(json.dumps(res, indent=1))
        self.settle(peer, base)


def floors(out: Path, frame_bytes=455):
    """The machine's per-delivery floor: one write()/read() per socket per round (C), and
    uvloop transport.write() of a pre-framed chunk (Python)."""
    res = {"frame_bytes": frame_bytes}
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc:
        exe = out / "write_cost"
        c = subprocess.run(
            [gcc, "-O2", "-o", exe, BENCH / "tools/write_cost.c"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if c.returncode == 0:
            for n in (1000, 5000):
                t = subprocess.run(
                    [exe, str(n), str(frame_bytes), "100"],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                try:
                    res[f"c_{n}"] = json.loads(t.stdout)
                except ValueError:
                    res[f"c_{n}"] = {"error": t.stderr[-300:]}
        exe.unlink(missing_ok=True)
    t = subprocess.run(
        [
            PY,
            BENCH / "tools/py_write_cost.py",
            "--conns",
            "1000",
            "--bytes",
            str(frame_bytes),
            "--rounds",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        res["uvloop_1000"] = json.loads(t.stdout)
    except ValueError:
        res["uvloop_1000"] = {"error": t.stderr[-300:]}
    t = subprocess.run(
        [PY, BENCH / "tools/asyncio_costs.py", "--n", "50000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        res["asyncio_costs"] = json.loads(t.stdout)
    except ValueError:
        res["asyncio_costs"] = {"error": t.stderr[-300:]}
    (out / "floors.json").write_text(json.dumps(res, indent=1))
    log(f"floors: {json.dumps(res)}")
    return res


# ------------------------------------------------------------------ metadata
def machine_info():
    def sh(cmd):
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True, timeout=10, shell=isinstance(cmd, str)
            ).stdout.strip()
        except Exception:
            return ""

    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    vers = {}
    import importlib.metadata as md

    for p in [
        "uvicorn",
        "starlette",
        "sse-starlette",
        "uvloop",
        "httptools",
        "redis",
        "pydantic",
        "anyio",
    ]:
        try:
            vers[p] = md.version(p)
        except md.PackageNotFoundError:
            vers[p] = None
    vers["python"] = platform.python_version()
    vers["redis-server"] = (
        sh("redis-server --version").split(" v=")[-1].split()[0]
        if shutil.which("redis-server")
        else None
    )
    vers["nginx"] = (sh("nginx -v 2>&1").split("/")[-1] or None) if shutil.which("nginx") else None
    vers["nchan"] = sh("dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null") or None
    spy = next((c for c in PYSPY_CANDIDATES if c and os.access(c, os.X_OK)), None)
    vers["py-spy"] = sh([spy, "--version"]).split()[-1] if spy else None
    git = {
        "commit": sh(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
        "dirty_files": sh(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "ticker"]
        ).splitlines(),
    }
    diff = subprocess.run(
        ["git", "-C", str(REPO), "diff", "HEAD", "--", "ticker"], capture_output=True, timeout=20
    ).stdout
    git["ticker_diff_sha256"] = hashlib.sha256(diff).hexdigest()[:16] if diff else None
    return {
        "nproc": os.cpu_count(),
        "model": model,
        "kernel": platform.release(),
        "mem_gb": round(mem_kb / 1048576, 1),
        "fd_soft": soft,
        "fd_hard": hard,
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "versions": vers,
        "git": git,
        "somaxconn": sh("cat /proc/sys/net/core/somaxconn"),
    }


# ------------------------------------------------------------------ main
def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
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
    return p.parse_args(argv)


def plan(a):
    """What to run: (mode, peers, scenarios, extras), checked; the per-mode defaults."""
    full = not (a.quick or a.peers or a.scenarios)
    mode = "quick" if a.quick else ("full" if full else "subset")
    peers = a.peers.split(",") if a.peers else (QUICK_PEERS if a.quick else ALL_PEERS)
    scenarios = (
        a.scenarios.split(",") if a.scenarios else (QUICK_SCENARIOS if a.quick else ALL_SCENARIOS)
    )
    if scenarios == ["none"]:
        scenarios = []  # extras only
    for s in scenarios:
        parse_scenario(s)
    # S3 first on a fresh server (Python never gives memory back), then by kind and size.
    order = {"S3": 0, "S1": 1, "S2": 2, "B": 3, "C": 4}
    scenarios.sort(key=lambda s: (order[parse_scenario(s)[0]], parse_scenario(s)[1]))
    if a.extras:
        extras = [] if a.extras == "none" else a.extras.split(",")
    else:
        extras = ALL_EXTRAS if full else (["floors", "profile"] if a.quick else [])
    for x in peers:
        if x not in ALL_PEERS + ["nchan2"]:
            raise SystemExit(f"unknown peer {x}")
    for x in extras:
        if x not in ALL_EXTRAS:
            raise SystemExit(f"unknown extra {x}")
    if a.profile_clients is None:
        a.profile_clients = 1000
    if a.budget_min is None:
        a.budget_min = 5 if a.quick else 45
    return mode, peers, scenarios, extras


def start_meta(a, mode, peers, scenarios, extras):
    """The run's meta.json as it starts: what was asked, the machine, the settings."""
    return {
        "mode": mode,
        "argv": ["bench/run"] + sys.argv[1:],
        "peers": peers,
        "scenarios": scenarios,
        "extras": extras,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "settings": {
            k: getattr(a, k)
            for k in (
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
        },
    }


def with_peer(r, label, peer, body):
    """Start a peer, run body(peer), stop it; a failure skips to the next step."""
    if r.over_budget():
        r.skipped.append(f"{label}: time budget")
        return
    log(f"start {label}")
    try:
        peer.start()
        body(peer)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        log(f"{label} failed: {e}")
        r.skipped.append(f"{label}: failed: {e}")
    finally:
        peer.stop()


def make_peer(name, rundir, redis_port):
    if name == "ticker":
        return Ticker(rundir, redis_port=redis_port)
    if name == "ticker-asgi":
        return Ticker(rundir, redis_port=redis_port, direct_writes=False)
    if name in ("nchan", "nchan2"):
        peer = Nchan(rundir, redis_port=redis_port, workers=2 if name == "nchan2" else 1)
        peer.name = name
        return peer
    return PyPeer(rundir, redis_port=redis_port, kind=name)


def run_matrix(r, a, meta, peers, scenarios):
    """Phase 1: the matrix, one fresh server per peer (S3 first on it)."""
    t_matrix = time.monotonic()
    for name in peers if scenarios else []:
        peer = make_peer(name, r.out / f"run-{name}", a.redis_port)
        mine = scenarios
        if meta["mode"] == "full" and name not in GOAL_PEERS:
            # The storm and burst scenarios are issue #18's comparison with nchan.
            mine = [s for s in scenarios if parse_scenario(s)[0] not in ("C", "B")]
            meta.setdefault("not_played", {})[name] = [s for s in scenarios if s not in mine]

        def matrix(p, name=name, mine=mine):
            if name == "ticker":
                meta["ticker_serve_cmd"] = p.serve_cmd
            r.run_peer_scenarios(p, mine)

        with_peer(r, name, peer, matrix)
    if scenarios:
        meta["matrix_min"] = round((time.monotonic() - t_matrix) / 60, 2)
        log(f"matrix done in {meta['matrix_min']} min")


def run_post_extra(r, a, meta):
    """The publish API, with and without readers, on a fresh server."""

    def post(p):
        if "ticker_serve_cmd" not in meta:
            meta["ticker_serve_cmd"] = p.serve_cmd
        r.post_tests(p)
        r.post_s1(p)

    with_peer(
        r,
        "ticker (publish API)",
        Ticker(r.out / "run-ticker-post", redis_port=a.redis_port),
        post,
    )


def run_workers_extra(r, a):
    """`--workers 2` on the fan-out load and the publish API."""

    def workers(p):
        r.run_peer_scenarios(p, [a.workers_scenario])
        r.post_tests(p)

    with_peer(
        r,
        "ticker --workers 2",
        Ticker(r.out / "run-ticker-w2", redis_port=a.redis_port, workers=2),
        workers,
    )


def run_profile_extra(r, a):
    """py-spy on a fan-out load (and, in a full run, on the publish API)."""

    def prof(p):
        r.profile(p, "fanout", clients=a.profile_clients, count=400, rate=20.0)
        if not a.quick:
            r.profile(
                p,
                "post",
                clients=0,
                count=3000,
                rate=0,
                publisher="post_load",
                pub_cmd=[
                    "--url",
                    p.post_url,
                    "--conns",
                    a.post_conns,
                    "--header",
                    f"Authorization: Bearer {p.token}",
                    "--template",
                    '{"headline":"' + HEADLINE + '"}',
                ],
            )

    with_peer(
        r,
        "ticker (profile)",
        Ticker(r.out / "run-ticker-profile", redis_port=a.redis_port),
        prof,
    )


def run_all(r, a, meta, peers, scenarios, extras):
    """Every phase in order; an interrupt (Ctrl-C, SIGTERM) still records what ran."""

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    try:
        if "floors" in extras:
            floors(r.out)
        run_matrix(r, a, meta, peers, scenarios)
        # Phase 2: ticker extras, each on a fresh server.
        if "ticker" in peers and "post" in extras:
            run_post_extra(r, a, meta)
        if "ticker" in peers and "workers" in extras:
            run_workers_extra(r, a)
        if "ticker" in peers and "profile" in extras:
            run_profile_extra(r, a)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaning up")
        rc = 130
    finally:
        PROCS.stop_all()
        meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        meta["elapsed_min"] = round((time.monotonic() - r.t0) / 60, 2)
        meta["skipped"] = r.skipped
        (r.out / "meta.json").write_text(json.dumps(meta, indent=1))
    return rc


def write_report(folder, merge=()):
    sys.path.insert(0, str(REPO))
    from bench.report import write

    write(folder, REPO / "docs" / "performance.md", merge=[Path(m) for m in merge])


def main():
    a = parse_args()
    if a.report:
        write_report(Path(a.report), a.merge)
        return 0
    mode, peers, scenarios, extras = plan(a)
    stamp = time.strftime("%Y-%m-%d_%H%M%S")
    out = Path(a.out).resolve() if a.out else BENCH / "results" / f"{stamp}-{mode}"
    log(f"mode {mode}: peers {peers}, scenarios {scenarios}, extras {extras}, out {out}")
    if a.dry_run:
        return 0
    out.mkdir(parents=True, exist_ok=True)
    meta = start_meta(a, mode, peers, scenarios, extras)
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    r = Runner(a, out)
    rc = run_all(r, a, meta, peers, scenarios, extras)
    leftovers = [pid for pid, _ in PROCS.live.items() if alive(pid)]
    if leftovers:
        log(f"WARNING: still alive: {leftovers}")
    log(f"done in {meta['elapsed_min']} min; skipped: {r.skipped or 'nothing'}; results in {out}")
    if rc == 0 and not a.no_doc and (mode in ("full", "quick") or a.doc):
        write_report(out)
        log("wrote docs/performance.md")
    return rc


if __name__ == "__main__":
    sys.exit(main())
