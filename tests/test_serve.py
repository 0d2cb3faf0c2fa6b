"""`ticker serve` as a user runs it: several workers, Redis away, graceful shutdown."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from tests.helpers import TickerProcess, free_port, serve_app, sigterm_and_time
from tests.sockets import open_streams
from ticker.server.serve import build_app
from ticker.settings import Settings


def test_two_workers_serve_the_same_channels(ticker_server: TickerProcess, tmp_path: Path) -> None:
    two = TickerProcess(ticker_server.env, args=("--workers", "2"), log=tmp_path / "w2.log")
    two.token = ticker_server.token
    two.start(timeout=30)
    try:
        item = two.post("en", headline="posted through a two-worker server")
        # Any worker answers with the same current items.
        for _ in range(6):
            listed = httpx.get(f"{two.url}/channels/en/items", timeout=5).json()["items"]
            assert [i["uri"] for i in listed] == [item["uri"]]
        with httpx.stream("GET", f"{two.url}/channels/en/events", timeout=5) as r:
            assert r.status_code == 200
            text = ""
            for chunk in r.iter_text():
                text += chunk
                if item["uri"] in text:
                    break
    finally:
        assert two.stop() == 0


@pytest.mark.anyio
async def test_redis_away_gives_503_with_retry_after(settings: Settings) -> None:
    dead = settings.model_copy(
        update={"redis_url": SecretStr(f"redis://127.0.0.1:{free_port()}/0")}
    )
    async with serve_app(dead) as (url, _), httpx.AsyncClient(base_url=url, timeout=10) as c:
        assert (await c.get("/livez")).status_code == 200
        ready = await c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"] == "store_unavailable"
        r = await c.post(
            "/channels/en/items",
            json={"headline": "x"},
            headers={"Authorization": "Bearer tk_whatever"},
        )
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert "tk_whatever" not in r.text


def test_sigterm_ends_open_streams_and_exits_promptly(ticker_server: TickerProcess) -> None:
    socks = open_streams(ticker_server.port, 50)
    elapsed = sigterm_and_time(ticker_server)
    print(f"exit after SIGTERM with 50 open streams: {elapsed:.2f}s")
    assert elapsed < 10
    for s in socks:
        # Each stream got a last retry hint, then was closed by the server (EOF);
        # EventSource reconnects elsewhere.
        received = b""
        while part := s.recv(65536):
            received += part
        s.close()
        assert received.endswith(b"retry: 500\n\n"), received[-80:]
    # Every stream ended by the hub, none by an error in the shutdown.
    log = ticker_server.log.read_text()  # type: ignore[union-attr]
    assert "Traceback" not in log and '"level": "error"' not in log


def test_building_the_app_leaves_the_garbage_collector_alone(settings: Settings) -> None:
    # Tuning the GC is a step of `ticker serve` (serve.tune_gc), not of making an app.
    before = (gc.get_threshold(), gc.get_freeze_count())
    build_app(settings)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
