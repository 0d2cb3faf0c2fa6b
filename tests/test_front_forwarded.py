"""The client behind a trusted proxy, at the byte, on every door of one process: the
front protocol's own streams, a stream on a keep-alive connection (uvicorn's protocol),
and the app (a refusal handed over, and every stream with ``TICKER_DIRECT_WRITES=false``).
Each door must count a reader against the same address, and log the same one, as
``forwarded.client_address`` says; tests/test_forwarded.py tests that function alone.

In-process, on the real app and Redis, through a mock transport (tests/front_harness.py);
tests/test_forwarded_server.py does the same over real sockets."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.front_harness import Conn, Harness, MockTransport, running, until
from ticker.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

PROXY = ("127.0.0.1", 40000)  # trusted (TICKER_FORWARDED_ALLOW_IPS)
STRANGER = ("192.0.2.50", 40001)  # not trusted
CLIENT = "203.0.113.7"
OVER_CAPACITY = b"retry: 30000\n"


def stream_request(*forwarded: bytes, version: bytes = b"1.1") -> bytes:
    lines = b"".join(b"X-Forwarded-For: %s\r\n" % value for value in forwarded)
    return b"GET /channels/en/events HTTP/%s\r\nHost: x\r\n%s\r\n" % (version, lines)


@pytest.fixture(params=[True, False], ids=["front", "app"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {
        "forwarded_allow_ips": ("127.0.0.1", "10.0.0.0/8"),
        "max_readers_per_ip": 1,
        "direct_writes": request.param,
    }


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    async with running(settings, logged=True) as h:
        yield h


def counted(h: Harness, address: str) -> int:
    """Readers the hub counts against ``address``, on either door."""
    return int(h.app.app.state.services.hub.readers_from(address))


async def opened(h: Harness, request: bytes, peer: tuple[str, int], parts: int = 1) -> Conn:
    """A connection from ``peer`` that sent ``request`` in ``parts`` reads; its answer."""
    conn = h.connect(MockTransport(peer=peer))
    size = -(-len(request) // parts)
    conn.feed_parts([request[n : n + size] for n in range(0, len(request), size)])
    await conn.answered()
    return conn


async def test_a_trusted_proxys_reader_is_counted_and_logged_as_its_client(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    request = stream_request(b"198.51.100.1, " + CLIENT.encode(), b"10.1.2.3")
    caplog.set_level(logging.INFO, logger="ticker.access")
    # Split in two at every offset, for the front protocol's own parse (uvicorn's parser
    # gives the app whole headers), and whole.
    native = harness.door.streams is not None
    # A reader held open keeps the channel's reader up: each stream opens at once.
    keeper = await opened(harness, stream_request(), ("192.0.2.99", 1))
    for at in range(1, len(request)) if native else [len(request)]:
        conn = harness.connect(MockTransport(peer=PROXY))
        conn.feed_parts([request[:at], request[at:]])
        reply = await conn.answered()
        assert reply.status == "HTTP/1.1 200 OK", (at, reply)
        assert OVER_CAPACITY not in reply.body
        assert (counted(harness, CLIENT), counted(harness, PROXY[0])) == (1, 0), at
        conn.lose()
        await until(lambda: counted(harness, CLIENT) == 0, what=f"slot back, split at {at}")
    clients = {getattr(r, "client", None) for r in caplog.records if r.name == "ticker.access"}
    assert clients == {CLIENT}
    keeper.lose()


async def test_an_untrusted_peer_is_counted_as_itself_whatever_it_claims(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ticker.access")
    first = await opened(harness, stream_request(CLIENT.encode()), STRANGER, parts=7)
    assert (counted(harness, STRANGER[0]), counted(harness, CLIENT)) == (1, 0)
    # Another claimed client from the same peer is the same reader: over the cap of one.
    second = await opened(harness, stream_request(b"198.51.100.2"), STRANGER)
    assert second.reply() is not None and OVER_CAPACITY in second.transport.buffer
    first.lose()
    second.lose()
    await until(lambda: counted(harness, STRANGER[0]) == 0)
    clients = {getattr(r, "client", None) for r in caplog.records if r.name == "ticker.access"}
    assert clients == {STRANGER[0]}


async def test_the_cap_is_per_forwarded_client_on_every_door(harness: Harness) -> None:
    # Two clients behind one proxy each get a stream; the first one's second stream is over
    # its cap, and is answered so (by the app: the front hands refusals over).
    one = await opened(harness, stream_request(CLIENT.encode()), PROXY)
    two = await opened(harness, stream_request(b"198.51.100.2, 10.9.9.9"), PROXY, parts=3)
    again = await opened(harness, stream_request(b"[::ffff:203.0.113.7]:1234"), PROXY)
    assert OVER_CAPACITY not in one.transport.buffer + two.transport.buffer
    assert OVER_CAPACITY in again.transport.buffer
    # HTTP/1.0 streams are the app's on either setting: the same address, the same cap.
    old = await opened(harness, stream_request(b"198.51.100.3", version=b"1.0"), PROXY)
    old_again = await opened(harness, stream_request(b"198.51.100.3", version=b"1.0"), PROXY)
    assert OVER_CAPACITY not in old.transport.buffer
    assert OVER_CAPACITY in old_again.transport.buffer
    assert [counted(harness, a) for a in (CLIENT, "198.51.100.2", "198.51.100.3")] == [1, 1, 1]
    assert counted(harness, PROXY[0]) == 0
    for conn in (one, two, again, old, old_again):
        conn.lose()
    await until(lambda: harness.app.app.state.services.hub.connections == 0)


async def test_a_stream_after_another_request_on_the_connection_counts_the_client(
    harness: Harness,
) -> None:
    # The second request of a keep-alive connection reaches uvicorn's protocol, which
    # serves a stream itself (or, without direct writes, hands it to the app).
    conn = harness.connect(MockTransport(peer=PROXY))
    conn.feed(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.9\r\n\r\n")
    await conn.answered()
    conn.transport.buffer.clear()
    conn.feed(stream_request(b"198.51.100.4"))
    reply = await conn.answered()
    assert reply.status == "HTTP/1.1 200 OK" and OVER_CAPACITY not in reply.body
    assert counted(harness, "198.51.100.4") == 1
    conn.lose()
    await until(lambda: counted(harness, "198.51.100.4") == 0)
