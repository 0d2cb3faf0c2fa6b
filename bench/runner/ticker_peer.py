"""ticker as a peer: `python -m ticker serve` from this repo (1 worker, or --workers N;
ticker-asgi: TICKER_DIRECT_WRITES=false), its own redis, a token for the publish API."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bench.runner.constants import HEADLINE, POST_TEMPLATE, PY, REPO
from bench.runner.net import pick_port, wait_http
from bench.runner.peers import Peer
from bench.runner.procs import Arg, Procs, descendants, quote


class Ticker(Peer):
    name = "ticker"
    # ticker ends its streams on SIGTERM and exits within a second or two; the
    # sse-starlette peers with a backlog never exit on their own (SIGKILL after 5 s).
    stop_grace = 15.0

    def __init__(
        self,
        rundir: Path,
        *,
        procs: Procs,
        redis_port: int,
        workers: int = 1,
        direct_writes: bool = True,
    ) -> None:
        super().__init__(rundir, procs=procs, redis_port=redis_port)
        self.workers = workers
        self.direct_writes = direct_writes
        if workers > 1:
            self.name = f"ticker-w{workers}"
        if not direct_writes:
            self.name = "ticker-asgi"
        self.post_url = ""
        self.serve_cmd = ""

    def env(self) -> dict[str, str]:
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

    def start(self) -> None:
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
        cmd: list[Arg] = [PY, "-m", "ticker", "serve", "--port", self.port]
        cmd += ["--log-level", "warning"]
        if self.workers > 1:
            cmd += ["--workers", self.workers]
        self.proc = self.procs.spawn(
            self.name, cmd, env=env, cwd=self.rundir, logfile=self.rundir / "server.log"
        )
        if not wait_http(f"http://127.0.0.1:{self.port}/readyz", timeout=40):
            raise RuntimeError(
                "ticker did not become ready; see " + str(self.rundir / "server.log")
            )
        self.sub_url = f"http://127.0.0.1:{self.port}/channels/en/events"
        self.post_url = f"http://127.0.0.1:{self.port}/channels/en/items"
        self.serve_cmd = quote(cmd)

    def worker_pids(self) -> list[int]:
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

    def publisher(self) -> list[Arg]:
        """XADD in ticker's own entry format: the server's CPU is fan-out only."""
        stream = ["--stream", "bench:{en}:events", "--maxlen", "1000"]
        return [
            "--target",
            "ticker",
            "--redis-url",
            self.redis_url,
            *stream,
            "--template",
            HEADLINE,
        ]

    def auth_header(self) -> list[Arg]:
        return ["--header", f"Authorization: Bearer {self.token}"]

    def post_publisher(self) -> list[Arg]:
        """publish.py through the publish API (POST), one request at a time."""
        url = ["--url", self.post_url]
        return ["--target", "http", *url, *self.auth_header(), "--template", POST_TEMPLATE]

    def post_load(self, conns: int) -> list[Arg]:
        """post_load.py's arguments: concurrent POSTs over `conns` connections."""
        url: list[Arg] = ["--url", self.post_url, "--conns", conns]
        return [*url, *self.auth_header(), "--template", POST_TEMPLATE]
