"""Limits that keep one client from taking the service: write rate per token, reader caps."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.helpers import make_token
from tests.redis_data import stream_len
from tests.sse import start_reader
from ticker.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("settings_overrides", [{"write_rate_per_minute": 60, "write_burst": 3}])
async def test_writes_over_the_token_rate_get_429_with_retry_after(
    server: tuple[str, Any], token: str
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server[0], headers=headers, timeout=5) as api:
        codes = [
            (await api.post("/channels/en/items", json={"headline": f"n{n}"})) for n in range(6)
        ]
    assert [r.status_code for r in codes[:3]] == [201, 201, 201]
    limited = [r for r in codes if r.status_code == 429]
    assert len(limited) >= 2
    assert limited[0].json()["error"] == "rate_limited"
    assert 1 <= int(limited[0].headers["retry-after"]) <= 2
    assert token not in limited[0].text


@pytest.mark.parametrize("settings_overrides", [{"write_rate_per_minute": 60, "write_burst": 3}])
async def test_refused_writes_do_not_use_up_the_token_rate(
    server: tuple[str, Any], settings: Settings
) -> None:
    token = make_token(settings, "ar-desk", ["ar"])
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server[0], headers=headers, timeout=5) as api:
        wrong = [await api.post("/channels/en/items", json={"headline": f"n{n}"}) for n in range(5)]
        right = [await api.post("/channels/ar/items", json={"headline": f"ع{n}"}) for n in range(3)]
    assert [r.status_code for r in wrong] == [403] * 5
    assert wrong[0].json()["error"] == "forbidden"
    assert [r.status_code for r in right] == [201] * 3


@pytest.mark.parametrize("settings_overrides", [{"write_rate_per_minute": 60, "write_burst": 3}])
async def test_replayed_idempotency_keys_do_not_use_up_the_token_rate(
    server: tuple[str, Any], token: str
) -> None:
    """Re-running an interrupted import replays its keys: nothing is written, so nothing
    is counted; new writes still are."""
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "import-line-1"}
    async with httpx.AsyncClient(base_url=server[0], headers=headers, timeout=5) as api:
        replies = [
            await api.post("/channels/en/items", json={"headline": "once"}) for _ in range(6)
        ]
        assert [r.status_code for r in replies] == [201] * 6
        assert {r.json()["uri"] for r in replies} == {replies[0].json()["uri"]}
        assert [r.headers.get("idempotent-replayed") for r in replies[1:]] == ["true"] * 5
        del api.headers["Idempotency-Key"]
        fresh = [await api.post("/channels/en/items", json={"headline": f"n{n}"}) for n in range(3)]
    # The burst of 3 had one write in it: two more fit, the third is over the rate.
    assert [r.status_code for r in fresh] == [201, 201, 429]


@pytest.mark.parametrize(
    "settings_overrides", [{"max_readers": 2, "over_capacity_retry_ms": 45000}]
)
async def test_reader_over_the_cap_gets_200_a_long_retry_and_a_close(
    server: tuple[str, Any],
) -> None:
    url = f"{server[0]}/channels/en/events"
    readers = [start_reader(url) for _ in range(2)]
    try:
        for reader in readers:
            await asyncio.wait_for(reader.connected.wait(), 5)
        extra = start_reader(url)
        await extra.wait_ended(45000)  # closed, not left hanging
        assert extra.status == 200
        assert extra.events == []
    finally:
        for reader in readers:
            await reader.close()
    hub = server[1].state.services.hub
    for _ in range(100):  # the server notices the two disconnects
        if hub.connections == 0:
            break
        await asyncio.sleep(0.05)
    assert hub.connections == 0
    again = start_reader(url)  # the slots were given back
    try:
        await asyncio.wait_for(again.connected.wait(), 5)
        await asyncio.sleep(0.3)
        assert not again.ended.is_set()
    finally:
        await again.close()


@pytest.mark.parametrize("settings_overrides", [{"max_readers_per_ip": 1}])
async def test_per_address_cap(server: tuple[str, Any], settings: Settings) -> None:
    url = f"{server[0]}/channels/en/events"
    first = start_reader(url)
    try:
        await asyncio.wait_for(first.connected.wait(), 5)
        second = start_reader(url)
        await second.wait_ended(settings.over_capacity_retry_ms)
        assert second.status == 200 and second.events == []
    finally:
        await first.close()


def test_tokens_never_reach_logs_or_error_bodies(ticker_server: Any, tmp_path: Any) -> None:
    wrong = "tk_" + "w" * 43
    bodies = []
    with httpx.Client(base_url=ticker_server.url, timeout=5) as client:
        for auth in (f"Bearer {wrong}", f"Basic {wrong}", wrong):
            r = client.post(
                "/channels/en/items", json={"headline": "x"}, headers={"Authorization": auth}
            )
            assert r.status_code == 401
            bodies.append(r.text)
        r = client.post(
            "/channels/en/items",
            json={"headline": "x" * 300},
            headers={"Authorization": f"Bearer {ticker_server.token}"},
        )
        assert r.status_code == 422
        bodies.append(r.text)
    ticker_server.stop()  # flush the log
    log = (tmp_path / "ticker.log").read_text()
    assert "POST /channels/en/items" in log  # the log is really there
    for secret in (wrong, ticker_server.token):
        assert secret not in log
        assert all(secret not in body for body in bodies)


def test_slowloris_clients_do_not_hold_the_service(ticker_server: Any) -> None:
    import socket
    import time

    slow = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", ticker_server.port))
        s.sendall(b"GET /channels/en/items HTTP/1.1\r\nHost: x\r\n")  # never finished
        slow.append(s)
    try:
        for _ in range(3):
            for s in slow:
                s.sendall(b"X-Slow: 1\r\n")
            started = time.monotonic()
            r = httpx.get(f"{ticker_server.url}/channels/en/items", timeout=5)
            assert r.status_code == 200
            assert time.monotonic() - started < 2
            time.sleep(0.5)
    finally:
        for s in slow:
            s.close()


def test_oversized_headers_are_refused_without_a_5xx(ticker_server: Any) -> None:
    import socket

    s = socket.create_connection(("127.0.0.1", ticker_server.port))
    s.settimeout(5)
    s.sendall(
        b"GET /channels/en/items HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
    )
    reply = b""
    try:
        while chunk := s.recv(65536):
            reply += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    s.close()
    # Refused (431 from ticker, or 400/a dropped connection from the HTTP parser), never
    # served, never a 5xx.
    assert reply == b"" or reply.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400"))
    assert httpx.get(f"{ticker_server.url}/livez", timeout=5).status_code == 200


def _status_kb(pid: int, field: str) -> int:
    from pathlib import Path

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.timeout(90)
def test_a_64_mb_header_is_refused_before_it_is_buffered(ticker_server: Any) -> None:
    """The head is counted as it arrives (ticker's protocol), not after uvicorn has
    buffered (and httptools copied) all of it: the server's memory stays flat and
    requests that use Redis are answered meanwhile."""
    import contextlib
    import socket
    import threading
    import time

    assert ticker_server.proc is not None
    pid = ticker_server.proc.pid
    rss_before = _status_kb(pid, "VmRSS")
    outcome: dict[str, Any] = {}

    def send_huge_header() -> None:
        started = time.monotonic()
        s = socket.create_connection(("127.0.0.1", ticker_server.port))
        s.settimeout(30)
        sent, piece, reply = 0, b"a" * 65536, b""
        try:
            s.sendall(b"GET /channels/en/items HTTP/1.1\r\nHost: x\r\nX-Big: ")
            while sent < 64 * 1024 * 1024:
                s.sendall(piece)
                sent += len(piece)
            s.sendall(b"\r\n\r\n")
            reply = s.recv(65536)
        except OSError:
            with contextlib.suppress(OSError):
                reply = s.recv(65536)
        finally:
            s.close()
        outcome.update(sent=sent, reply=reply, seconds=time.monotonic() - started)

    sender = threading.Thread(target=send_huge_header)
    sender.start()
    answered: list[float] = []
    peak = rss_before
    auth = {"Authorization": f"Bearer {ticker_server.token}"}
    with httpx.Client(base_url=ticker_server.url, timeout=30, headers=auth) as client:
        n = 0
        while sender.is_alive() or n < 5:
            started = time.monotonic()
            r = client.post("/channels/en/items", json={"headline": f"meanwhile {n}"})
            assert r.status_code == 201, r.text
            answered.append(time.monotonic() - started)
            peak = max(peak, _status_kb(pid, "VmRSS"))
            n += 1
    sender.join()
    growth_kb = max(peak, _status_kb(pid, "VmHWM")) - rss_before
    print(
        f"\n64 MB header: {outcome['sent'] / 2**20:.1f} MiB sent before the refusal in "
        f"{outcome['seconds']:.2f}s; server RSS growth {growth_kb / 1024:.1f} MiB; "
        f"{len(answered)} POSTs meanwhile, slowest {max(answered) * 1000:.0f} ms"
    )
    assert growth_kb < 16 * 1024
    assert answered  # requests that use Redis were answered meanwhile
    reply = outcome["reply"]
    assert reply == b"" or reply.startswith(b"HTTP/1.1 431"), reply[:100]
    assert b"headers_too_large" in reply or reply == b""
    assert httpx.get(f"{ticker_server.url}/livez", timeout=5).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"write_rate_per_minute": 1, "write_burst": 2}])
async def test_an_idempotency_key_replay_is_answered_over_the_rate(
    server: tuple[str, Any], token: str
) -> None:
    """A replay writes nothing: an import re-run after a 429 still gets its first replies."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server[0], headers=headers, timeout=5) as api:
        first = await api.post(
            "/channels/en/items", json={"headline": "once"}, headers={"Idempotency-Key": "line-1"}
        )
        assert first.status_code == 201
        spent = [await api.post("/channels/en/items", json={"headline": f"n{n}"}) for n in range(4)]
        assert spent[-1].status_code == 429  # the budget is empty now
        again = await api.post(
            "/channels/en/items", json={"headline": "once"}, headers={"Idempotency-Key": "line-1"}
        )
        other_body = await api.post(
            "/channels/en/items",
            json={"headline": "changed"},
            headers={"Idempotency-Key": "line-1"},
        )
        unknown = await api.post(
            "/channels/en/items", json={"headline": "new"}, headers={"Idempotency-Key": "line-2"}
        )
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    # Anything that is not a replay of that very request is still over the rate.
    assert other_body.status_code == 429
    assert unknown.status_code == 429


@pytest.mark.parametrize("settings_overrides", [{"write_rate_per_minute": 1, "write_burst": 4}])
async def test_refused_writes_leave_the_token_rate_intact(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    """400, 404, 409, 413, 415 and 422 after the token was checked write nothing, so they
    cost nothing: the editor who fixes the typo can still publish."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server[0], headers=headers, timeout=5) as api:
        item = (await api.post("/channels/en/items", json={"headline": "to kill"})).json()
        assert (await api.delete(f"/channels/en/items/{item['uri']}")).status_code == 200
        written = stream_len(settings)
        post = "/channels/en/items"
        refused = [
            await api.post(
                post, content=b"{not json", headers={"Content-Type": "application/json"}
            ),
            await api.post(post, json={"headline": ""}),
            await api.post(post, json={"headline": "x", "urgency": 12}),
            await api.post(post, content=b"headline=x", headers={"Content-Type": "text/plain"}),
            await api.post(post, json={"headline": "x" * 20000}),
            await api.post(post, json={"headline": "x"}, headers={"Idempotency-Key": "a b"}),
            await api.patch(f"/channels/en/items/{item['uri']}", json={"headline": "y"}),
            await api.patch("/channels/en/items/nosuchitem", json={"headline": "y"}),
            await api.delete("/channels/en/items/nosuchitem"),
            await api.patch(f"/channels/en/items/{item['uri']}", json={}),
        ]
        assert [r.status_code for r in refused] == [
            400,
            422,
            422,
            415,
            413,
            400,
            409,
            404,
            404,
            422,
        ]
        assert all(r.json()["error"] for r in refused)
        assert stream_len(settings) == written
        # A burst of 4, two used by the post and the kill: two more fit, then 429.
        fresh = [await api.post(post, json={"headline": f"n{n}"}) for n in range(3)]
    assert [r.status_code for r in fresh[:3]] == [201, 201, 429], [r.text for r in fresh]
