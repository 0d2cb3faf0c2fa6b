"""The servers under load: how each starts (on loopback, with its own redis where it
needs one), how it is fed, and how it stops. ticker's own peer is in ticker_peer.py.

  nchan   nginx + nchan (1 worker; nchan2: 2), fed by HTTP POST /pub
  naive   Starlette + sse-starlette, XREAD per reader (bench/peers/naive_sse)
  fanout  Starlette + sse-starlette, one shared XREAD and queues (bench/peers/fanout_sse)
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

from bench.harness.publish import item_json
from bench.runner.constants import BENCH, HEADLINE, PY
from bench.runner.log import log
from bench.runner.net import conns_on_port, pick_port, redis_ping, wait_http
from bench.runner.procs import Arg, Popen, Procs, descendants


def item_template(headline: str = HEADLINE) -> str:
    """The same item JSON ticker streams, as the peers' payload (same bytes per event)."""
    item: str = item_json(headline, "bench-peer-item")
    return item


class Peer:
    """A server under load. `start()` sets `proc`, `port` and `sub_url` (where readers
    connect); `publisher()` is the publisher's arguments for this peer."""

    name = "?"
    stop_grace = 5.0  # s from SIGTERM to SIGKILL

    def __init__(self, rundir: Path, *, procs: Procs, redis_port: int) -> None:
        self.rundir = rundir
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.procs = procs
        self.redis_port = redis_port
        self.redis_url = ""
        self.redis: Popen | None = None
        self.proc: Popen | None = None
        self.port = 0
        self.sub_url = ""
        self.token: str | None = None  # a secret to hide in the recorded command lines

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    @property
    def aux_pids(self) -> list[int]:
        """Processes whose CPU the load generator reports beside the server's (redis)."""
        return [self.redis.pid] if self.redis else []

    def start(self) -> None:
        raise NotImplementedError

    def publisher(self) -> list[Arg]:
        raise NotImplementedError

    def start_redis(self) -> None:
        port = pick_port(self.redis_port)
        d = self.rundir / "redis"
        d.mkdir(exist_ok=True)
        cmd: list[Arg] = ["redis-server", "--bind", "127.0.0.1", "--port", port, "--save", ""]
        cmd += ["--appendonly", "no", "--dir", d, "--daemonize", "no", "--maxclients", "15000"]
        cmd += ["--protected-mode", "yes", "--loglevel", "warning"]
        self.redis = self.procs.spawn("redis", cmd, logfile=d / "redis.log")
        if not redis_ping(port):
            raise RuntimeError("redis did not start")
        self.redis_port = port
        self.redis_url = f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        self.procs.stop(self.proc, grace=self.stop_grace)
        if self.redis:
            self.procs.stop(self.redis, grace=5.0)
        self.proc = self.redis = None

    def hide_token(self, cmd: str) -> str:
        """A command line as the results keep it: the token as $TOKEN."""
        return cmd.replace(self.token, "$TOKEN") if self.token else cmd

    def server_pids(self) -> list[int]:
        return [self.pid, *descendants(self.pid)]

    def settle(self, limit: float = 20.0) -> None:
        """Let the server close the last run's sockets before the next run."""
        deadline = time.monotonic() + limit
        n = 0
        while time.monotonic() < deadline:
            n = conns_on_port(self.port)
            if n <= 10:
                break
            time.sleep(0.5)
        else:
            log(f"  settle: {n} connections still open on port {self.port} after {limit:.0f}s")
        time.sleep(2.0)


class Nchan(Peer):
    name = "nchan"

    def __init__(self, rundir: Path, *, procs: Procs, redis_port: int, workers: int = 1) -> None:
        super().__init__(rundir, procs=procs, redis_port=redis_port)
        self.workers = workers
        self.name = "nchan2" if workers == 2 else "nchan"

    def start(self) -> None:
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
        self.proc = self.procs.spawn(
            "nginx",
            ["nginx", "-p", prefix, "-c", self.rundir / "nginx.conf"],
            logfile=self.rundir / "stdout.log",
        )
        if not wait_http(f"http://127.0.0.1:{self.port}/nchan_status"):
            raise RuntimeError("nginx did not answer")
        self.sub_url = f"http://127.0.0.1:{self.port}/sub"

    def stop(self) -> None:
        # nginx: SIGQUIT is the graceful stop; the workers are in the recorded tree.
        self.procs.stop(self.proc, sig=signal.SIGQUIT, grace=10.0)
        self.proc = None

    def publisher(self) -> list[Arg]:
        url = f"http://127.0.0.1:{self.port}/pub"
        return ["--target", "http", "--url", url, "--template", item_template()]


class PyPeer(Peer):
    """naive or fanout: Starlette + sse-starlette + its own redis."""

    def __init__(self, rundir: Path, *, procs: Procs, redis_port: int, kind: str) -> None:
        super().__init__(rundir, procs=procs, redis_port=redis_port)
        self.name = self.kind = kind

    def start(self) -> None:
        self.start_redis()
        self.port = pick_port(8090 if self.kind == "naive" else 8091)
        env = dict(
            os.environ,
            REDIS_URL=self.redis_url,
            REDIS_MAX_CONNECTIONS=os.environ.get("REDIS_MAX_CONNECTIONS", "15000"),
        )
        app_dir = BENCH / "peers" / f"{self.kind}_sse"
        cmd: list[Arg] = [PY, "-m", "uvicorn", "app:app", "--app-dir", app_dir]
        cmd += ["--host", "127.0.0.1", "--port", self.port, "--loop", "uvloop"]
        cmd += ["--http", "httptools", "--no-access-log", "--log-level", "warning"]
        cmd += ["--backlog", "4096", "--timeout-graceful-shutdown", "2"]
        self.proc = self.procs.spawn(
            self.kind, cmd, env=env, cwd=self.rundir, logfile=self.rundir / "uvicorn.log"
        )
        # fanout answers /stats; naive only 404s, which is enough to know it is up.
        probe = "stats" if self.kind == "fanout" else "nope"
        if not wait_http(f"http://127.0.0.1:{self.port}/{probe}", ok=(200, 404)):
            raise RuntimeError(f"{self.kind} did not answer")
        self.sub_url = f"http://127.0.0.1:{self.port}/events"

    def publisher(self) -> list[Arg]:
        target = ["--target", "redis", "--redis-url", self.redis_url, "--stream", "ticker"]
        return [*target, "--template", item_template()]
