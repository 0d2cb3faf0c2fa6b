"""What an operator reads at /metrics besides the stream's figures: the build, the
process, and the requests refused for their token or their rate."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from tests.helpers import bearer, make_token, metric_samples, ops_headers
from ticker import __version__
from ticker.settings import Settings

pytestmark = pytest.mark.anyio


def refused(samples: dict[str, float], channel: str, status: str) -> float:
    return samples[f'ticker_auth_refused_total{{channel="{channel}",status="{status}"}}']


async def test_build_info_and_the_process_are_on_the_page(
    server: tuple[str, Any], settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as http:
        samples = metric_samples((await http.get("/metrics", headers=ops_headers(settings))).text)
    assert samples[f'ticker_build_info{{version="{__version__}"}}'] == 1
    assert samples["process_resident_memory_bytes"] > 1_000_000
    assert samples["process_open_fds"] > 0
    assert samples["process_start_time_seconds"] > 0


@pytest.mark.parametrize("settings_overrides", [{"write_burst": 1, "write_rate_per_minute": 1}])
async def test_refused_tokens_and_rate_limits_are_counted_by_channel(
    server: tuple[str, Any], settings: Settings, token: str
) -> None:
    viewer = make_token(settings, "viewer", ["en"], role="viewer")
    ops = ops_headers(settings)
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as http:

        async def samples() -> dict[str, float]:
            return metric_samples((await http.get("/metrics", headers=ops)).text)

        before = await samples()
        # Every series is there from start-up, at 0.
        for channel in (*(c.name for c in settings.channels), "-"):
            assert refused(before, channel, "401") == refused(before, channel, "403") == 0
            assert before[f'ticker_rate_limited_total{{channel="{channel}"}}'] == 0
        answers = [
            await http.post("/channels/en/items", json={"headline": "a"}),  # no token
            await http.post("/channels/en/items", json={"headline": "a"}, headers=bearer("x")),
            await http.post("/channels/en/items", json={"headline": "a"}, headers=bearer(viewer)),
            await http.get("/channels/ar/queue", headers=bearer(viewer)),  # not its channel
            await http.get("/whoami"),  # no channel
            await http.post("/channels/en/items", json={"headline": "a"}, headers=bearer(token)),
            await http.post("/channels/en/items", json={"headline": "b"}, headers=bearer(token)),
        ]
        assert [r.status_code for r in answers] == [401, 401, 403, 403, 401, 201, 429]
        after = await samples()
    assert refused(after, "en", "401") == 2 and refused(after, "en", "403") == 1
    assert refused(after, "ar", "403") == 1 and refused(after, "ar", "401") == 0
    assert refused(after, "-", "401") == 1
    assert after['ticker_rate_limited_total{channel="en"}'] == 1
    assert after['ticker_rate_limited_total{channel="ar"}'] == 0


async def test_requests_are_counted_by_route_template_method_and_status(
    server: tuple[str, Any], settings: Settings, token: str
) -> None:
    ops = ops_headers(settings)
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as http:
        posted = await http.post(
            "/channels/en/items", json={"headline": "a"}, headers=bearer(token)
        )
        uri = posted.json()["uri"]
        await http.get(f"/channels/en/items/{uri}")
        await http.get("/channels/en/items/nope-1")
        await http.get("/channels/ar/items")
        await http.get("/no/such/page/42")
        await http.delete("/channels")
        await http.get("/static/desk.js")
        # A file response is counted once its last byte is sent, which the client can
        # see a moment before the count: scrape until it is there (bounded).
        static = 'ticker_http_requests_total{method="GET",route="/static/{path}",status="200"}'
        for _ in range(50):
            samples = metric_samples((await http.get("/metrics", headers=ops)).text)
            if static in samples:
                break
            await anyio.sleep(0.02)

    def count(route: str, method: str, status: int) -> float:
        key = f'ticker_http_requests_total{{method="{method}",route="{route}",status="{status}"}}'
        return samples.get(key, 0)

    one = "/channels/{channel}/items/{uri}"
    assert count("/channels/{channel}/items", "POST", 201) == 1
    assert count(one, "GET", 200) == 1 and count(one, "GET", 404) == 1
    assert count("/channels/{channel}/items", "GET", 200) == 1
    assert count("-", "GET", 404) == 1  # the path itself is never a label
    assert count("/channels", "DELETE", 405) == 1
    assert count("/static/{path}", "GET", 200) == 1
    assert not [k for k in samples if "nope" in k or "/42" in k or uri in k]
