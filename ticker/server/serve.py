"""``ticker serve``: Redis (given or embedded), the dev token, the demo feed, uvicorn.

Start-up is a list of checks before anything is served: the address is free, the state
folder is usable, Redis answers and accepts the credentials. Each failure is a
``StartupError`` (or ``EmbeddedError``) whose message is one line saying what to do; the
CLI prints it and exits 1, with no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import faulthandler
import gc
import inspect
import logging
import os
import resource
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from pydantic import SecretStr
from starlette.types import ASGIApp

from ticker.domain.errors import StoreUnavailable
from ticker.domain.redisurl import redis_location
from ticker.newsroom.auth import ALL_CHANNELS, Tokens
from ticker.ops import logs
from ticker.server.announce import announce_when_ready, local_base
from ticker.server.embedded import EmbeddedRedis, clear_state, write_state
from ticker.settings import Settings
from ticker.store import Store

if TYPE_CHECKING:
    from ticker.ops.metrics import Metrics

log = logging.getLogger("ticker.serve")
# uvicorn's exit code when the socket or the app fails as it starts (``uvicorn.config.
# STARTUP_FAILURE`` from 0.36; 0.34, the floor we support, exits 3 without the name).
_UVICORN_STARTUP_FAILURE = 3

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

DEV_TOKEN_NAME = "dev"
# How long start-up waits for a configured Redis to answer: long enough for one started a
# moment before ticker (systemd, a compose file without a health check), short enough that
# a wrong host is reported while the person who typed it is still looking.
REDIS_WAIT_S = 5.0
# Connections waiting to be accepted: 10,000 browsers reconnecting at once overflowed 2,048.
ACCEPT_BACKLOG = 16384
# With --workers, uvicorn's supervisor kills a worker that does not answer its ping within
# this many seconds, then starts another. Its default (5 s) killed workers still importing
# on a loaded two-core host, over and over (seen under the test suite); a hung worker is
# still replaced, a little later. The setting exists from uvicorn 0.37 (0.34 keeps 5 s).
WORKER_HEALTHCHECK_S = 30


class StartupError(RuntimeError):
    """Why ``ticker serve`` cannot start: one line that says what to do."""


def check_address(host: str, port: int) -> None:
    """Fail before Redis starts if uvicorn could not listen (it would only log it, late)."""
    if port == 0:
        return
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        raise StartupError(f"cannot resolve {host!r}: check --host or TICKER_HOST") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {port} on {host} is already in use: stop what listens there, or "
                    "choose another port with --port or TICKER_PORT"
                ) from None
            raise StartupError(
                f"cannot listen on {host}:{port} ({exc.strerror}): choose another address "
                "with --host/--port or TICKER_HOST/TICKER_PORT"
            ) from None


def _refused_credentials(exc: BaseException | None) -> bool:
    from redis.exceptions import AuthenticationError, ResponseError

    if isinstance(exc, AuthenticationError):
        return True
    text = str(exc) if isinstance(exc, ResponseError) else ""
    return any(word in text for word in ("WRONGPASS", "NOAUTH", "NOPERM", "AUTH"))


async def check_redis(settings: Settings) -> None:
    """PING the configured Redis: one clear line if it is not there or refuses us."""
    assert settings.redis_url is not None
    where = redis_location(settings.redis_url.get_secret_value())
    store = Store(
        settings.redis_url.get_secret_value(), prefix=settings.key_prefix, ack=settings.ack
    )
    try:
        async with asyncio.timeout(REDIS_WAIT_S):
            while True:
                try:
                    await store.ping()
                    problem = await store.ack_problem()
                    if problem:
                        raise StartupError(problem)
                    return
                except StoreUnavailable as exc:
                    if _refused_credentials(exc.__cause__):
                        raise StartupError(
                            f"Redis at {where} refused ticker's credentials: check the user "
                            "and password in TICKER_REDIS_URL"
                        ) from None
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise StartupError(
            f"no Redis answers at {where}: start it, or fix TICKER_REDIS_URL (unset, ticker "
            "starts a Redis of its own)"
        ) from None
    finally:
        await store.close()


def raise_fd_limit(wanted: int = 65536) -> int:
    """Each reader is one socket: lift the soft fd limit as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < 10_000:
        log.warning(
            "open-file limit is %d: at most about %d readers can connect "
            "(raise the hard limit, e.g. LimitNOFILE= or ulimit -Hn)",
            soft,
            soft - 100,
        )
    return soft


async def ensure_dev_token(settings: Settings) -> None:
    """On an embedded Redis, keep a local all-channel token in the state folder (0600)."""
    assert settings.redis_url is not None
    path = settings.state_dir / "dev-token"
    store = Store(settings.redis_url.get_secret_value(), prefix=settings.key_prefix)
    try:
        tokens = Tokens(store)
        if path.exists() and await tokens.verify(path.read_text().strip()):
            return
        await tokens.revoke(DEV_TOKEN_NAME)
        secret = await tokens.create(DEV_TOKEN_NAME, [ALL_CHANNELS], "chief")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
    finally:
        await store.close()


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[Settings]:
    """The settings with a Redis URL: the configured one, or a private embedded server."""
    if settings.redis_url is not None:
        yield settings
        return
    embedded = EmbeddedRedis(settings.state_dir)
    url = embedded.start()
    try:
        log.info("started embedded Redis (pid %s) with data in %s", embedded.pid, embedded.data_dir)
        yield settings.model_copy(update={"redis_url": SecretStr(url)})
    finally:
        embedded.stop()
        log.info("stopped embedded Redis")


def _demo_thread(settings: Settings, stop: threading.Event, metrics: Metrics) -> threading.Thread:
    from ticker.server.demo import run_demo

    def target() -> None:
        asyncio.run(run_demo(settings, stop, metrics=metrics))

    thread = threading.Thread(target=target, name="ticker-demo", daemon=True)
    thread.start()
    return thread


def tune_gc() -> None:
    """Fewer full garbage collections. One stalls every stream and request of the process:
    tens of milliseconds under the publish load, most of its p99 then (the figures, dated:
    docs/performance.md). What start-up made is frozen (never scanned again), and the
    young generation is collected every 10,000 allocations instead of 700; cyclic garbage
    still goes, a little later."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 10)


def build_app(settings: Settings | None = None, *, metrics: Metrics | None = None) -> ASGIApp:
    """The served app (from ``settings``, else the environment), with request IDs and the
    access line outermost, streams included. No side effects on the process."""
    from ticker.http.app import app_from_env, create_app

    if settings is None:
        return logs.RequestId(app_from_env())
    return logs.RequestId(create_app(settings, metrics=metrics))


def worker_app() -> ASGIApp:
    """A ``ticker serve --workers N`` process's start-up, which uvicorn runs as its factory
    in each worker (docs/deploy.md names it for running uvicorn yourself): the same two
    steps as ``serve`` in a single process, build the app, then tune the GC."""
    app = build_app()
    tune_gc()
    return app


def http_protocol(direct_writes: bool = True) -> type[asyncio.Protocol]:
    """What accepts connections: ``front.Front``, which serves streams itself and hands
    everything else to uvicorn's httptools protocol with ticker's rules
    (``protocol.HttpProtocol``); that protocol alone when direct writes are off. Passed
    as a class (import strings for ``http=`` need uvicorn 0.36). What they rely on in
    uvicorn is tested over the supported range (tests/test_uvicorn_shape.py)."""
    from ticker.http.front import Front
    from ticker.http.protocol import HttpProtocol

    return Front if direct_writes else HttpProtocol


@contextlib.contextmanager
def metrics_dir_for(settings: Settings) -> Iterator[Settings]:
    """With ``--workers N``, the settings with a metrics directory for this run (made
    here, removed after; or the one given, emptied: an earlier run's files would add to
    this one's), exported so every worker's prometheus-client shares it (metrics.py)."""
    if settings.workers == 1 and settings.metrics_dir is None:
        yield settings
        return
    made = settings.metrics_dir is None
    path = Path(tempfile.mkdtemp(prefix="ticker-metrics-")) if made else settings.metrics_dir
    assert path is not None
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()
    # Read by prometheus-client when it is first imported, in the workers and here (the
    # demo); nothing in this process has imported it yet.
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield settings.model_copy(update={"metrics_dir": path})
    finally:
        if made:
            shutil.rmtree(path, ignore_errors=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(settings: Settings, *, demo: bool = False, log_level: str = "info") -> None:
    # The checks first: a failure is then the only line start-up prints.
    check_address(settings.host, settings.port)
    embedded = settings.redis_url is None
    if not embedded:
        asyncio.run(check_redis(settings))
    log_format = logs.resolve_format(settings.log_format)
    logs.configure(log_level, log_format)
    # uvicorn re-raises the signal that stopped it once it has shut down; turn SIGTERM into
    # a normal exit so the embedded Redis is stopped and the state file removed.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # `kill -USR1 PID` prints every thread's stack to stderr: for a process that hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    with redis_for(settings) as settings, metrics_dir_for(settings) as settings:
        assert settings.redis_url is not None
        url = f"http://{settings.host}:{settings.port}"
        if embedded:
            asyncio.run(ensure_dev_token(settings))
            write_state(
                settings.state_dir,
                url=url,
                redis_url=settings.redis_url.get_secret_value(),
                pid=os.getpid(),
            )
        raise_fd_limit()
        from ticker.ops.metrics import Metrics  # after metrics_dir_for (prometheus-client)

        metrics = Metrics(
            [c.name for c in settings.channels], multiprocess_dir=settings.metrics_dir
        )
        stop = threading.Event()
        if demo:
            _demo_thread(settings, stop, metrics)
        token_file = settings.state_dir / "dev-token" if embedded else None
        announce_when_ready(
            local_base(settings.host, settings.port),
            token_file,
            stop,
            as_log=log_format == "json",
        )
        config: dict[str, Any] = dict(
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            # Our handlers, not uvicorn's, here and in every worker it spawns.
            log_config=logs.dict_config(log_level, log_format),
            # ticker.access (logs.RequestId) instead: uvicorn's line has the query string.
            access_log=False,
            timeout_graceful_shutdown=5,
            # Off: ticker reads X-Forwarded-For itself, by one rule on every door
            # (TICKER_FORWARDED_ALLOW_IPS, ticker/http/forwarded.py).
            proxy_headers=False,
            http=http_protocol(settings.direct_writes),
            # A reconnect storm queues in the kernel instead of losing SYNs (uvicorn's
            # default is 2048; the kernel caps it at net.core.somaxconn).
            backlog=ACCEPT_BACKLOG,
            # No WebSocket routes: and websockets' legacy module warns on import.
            ws="none",
        )
        try:
            if settings.workers > 1:
                # Workers build their own app from the environment; hand them the Redis URL.
                os.environ["TICKER_REDIS_URL"] = settings.redis_url.get_secret_value()
                if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
                    config["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_S
                uvicorn.run(
                    "ticker.server.serve:worker_app",
                    factory=True,
                    workers=settings.workers,
                    **config,
                )
            else:
                app = build_app(settings, metrics=metrics)
                tune_gc()  # last, so what start-up made is frozen
                uvicorn.run(app, **config)
        except SystemExit as exc:
            if exc.code != _UVICORN_STARTUP_FAILURE:
                raise
            raise StartupError("the service did not start: see the log lines above") from None
        finally:
            stop.set()
            if embedded:
                clear_state(settings.state_dir)
