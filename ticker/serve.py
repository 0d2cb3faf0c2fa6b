"""``ticker serve``: Redis (given or embedded), the dev token, the demo feed, uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import logging
import os
import resource
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from pydantic import SecretStr
from starlette.types import ASGIApp

from ticker import logs
from ticker.auth import ALL_CHANNELS, Tokens
from ticker.embedded import EmbeddedRedis, clear_state, write_state
from ticker.settings import Settings
from ticker.store import Store

log = logging.getLogger("ticker.serve")

DEV_TOKEN_NAME = "dev"


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


def _demo_thread(settings: Settings, stop: threading.Event) -> threading.Thread:
    from ticker.demo import run_demo

    def target() -> None:
        asyncio.run(run_demo(settings, stop))

    thread = threading.Thread(target=target, name="ticker-demo", daemon=True)
    thread.start()
    return thread


def tune_gc() -> None:
    """Fewer full garbage collections. One stalls every stream and request of the process:
    35-65 ms at 72k objects under the publish load, which was most of its p99
    (docs/performance.md). What start-up made is frozen (never scanned again), and the
    young generation is collected every 10,000 allocations instead of 700; cyclic garbage
    still goes, a little later."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 10)


def worker_app() -> ASGIApp:
    """The app of each ``ticker serve --workers N`` process (uvicorn's factory): built from
    the environment, with request IDs and the access line outermost, streams included."""
    from ticker.app import app_from_env

    app = logs.RequestId(app_from_env())
    tune_gc()
    return app


def http_protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol plus the ticker.socket extension and the early header
    limit (protocol.py), passed as a class (import strings for ``http=`` need uvicorn
    0.36); plain ``httptools`` if this uvicorn no longer has the shape it relies on."""
    from ticker.protocol import HttpProtocol, compatible

    missing = compatible()
    if missing is not None:
        log.warning(
            "uvicorn %s has no %s: serving streams through plain ASGI sends "
            "(slower, no early header limit)",
            uvicorn.__version__,
            missing,
        )
        return "httptools"
    return HttpProtocol


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(settings: Settings, *, demo: bool = False, log_level: str = "info") -> None:
    log_format = logs.resolve_format(settings.log_format)
    logs.configure(log_level, log_format)
    raise_fd_limit()
    # uvicorn re-raises the signal that stopped it once it has shut down; turn SIGTERM into
    # a normal exit so the embedded Redis is stopped and the state file removed.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # `kill -USR1 PID` prints every thread's stack to stderr: for a process that hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    embedded = settings.redis_url is None
    with redis_for(settings) as settings:
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
        stop = threading.Event()
        if demo:
            _demo_thread(settings, stop)
        config: dict[str, Any] = dict(
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            # Our handlers, not uvicorn's, here and in every worker it spawns.
            log_config=logs.dict_config(log_level, log_format),
            # ticker.access (logs.RequestId) instead: uvicorn's line has the query string.
            access_log=False,
            timeout_graceful_shutdown=5,
            proxy_headers=False,
            http=http_protocol(),
            # No WebSocket routes: and websockets' legacy module warns on import.
            ws="none",
        )
        try:
            if settings.workers > 1:
                # Workers build their own app from the environment; hand them the Redis URL.
                os.environ["TICKER_REDIS_URL"] = settings.redis_url.get_secret_value()
                uvicorn.run(
                    "ticker.serve:worker_app", factory=True, workers=settings.workers, **config
                )
            else:
                from ticker.app import create_app

                app = logs.RequestId(create_app(settings))
                tune_gc()
                uvicorn.run(app, **config)
        finally:
            stop.set()
            if embedded:
                clear_state(settings.state_dir)
