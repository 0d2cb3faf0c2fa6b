"""A trusted proxy's clients against the reader cap, on a real uvicorn with ticker's
protocols, over real sockets: ``TICKER_MAX_READERS_PER_IP`` counts the client that a
trusted peer names, and the peer itself when it is not trusted. The trusted proxy is
127.0.0.2, a loopback address of its own, so connections from 127.0.0.1 are strangers.
Every door is asked: the front protocol's streams, a stream on a keep-alive connection
(uvicorn's protocol), and the app's (HTTP/1.0 streams, and the refusals handed to it).
tests/test_front_forwarded.py checks the access line, at the byte."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

PROXY, STRANGER = "127.0.0.2", "127.0.0.1"
STREAMING, OVER_CAPACITY = b"retry: 500\n", b"retry: 30000\n"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"forwarded_allow_ips": (PROXY,), "max_readers_per_ip": 1}


class Client:
    """Raw connections to the server from chosen loopback addresses."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.opened: list[asyncio.StreamWriter] = []

    async def connect(self, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, local_addr=(source, 0)
        )
        self.opened.append(writer)
        return reader, writer

    async def stream(
        self,
        source: str,
        forwarded: str,
        *,
        version: str = "1.1",
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None,
    ) -> bytes:
        """A stream request from ``source`` with this ``X-Forwarded-For``: its ``retry:``."""
        reader, writer = conn or await self.connect(source)
        writer.write(
            f"GET /channels/en/events HTTP/{version}\r\nHost: x\r\n"
            f"X-Forwarded-For: {forwarded}\r\n\r\n".encode()
        )
        got = await asyncio.wait_for(reader.readuntil(b"retry: "), 5)
        got += await asyncio.wait_for(reader.readuntil(b"\n"), 5)
        assert got.startswith(b"HTTP/1.1 200 OK\r\n"), got
        return got[got.rindex(b"retry: ") :]

    async def close(self) -> None:
        for writer in self.opened:
            writer.close()
        for writer in self.opened:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@pytest.fixture
async def client(server: tuple[str, Any]) -> AsyncIterator[Client]:
    port = urlsplit(server[0]).port
    assert port is not None
    opened = Client(port)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_trusted_proxys_clients_are_capped_one_by_one(client: Client) -> None:
    # Two clients behind the proxy: a stream each. The first one's second stream is over
    # its cap, whatever it put in front of the proxy's entry.
    assert await client.stream(PROXY, "198.51.100.1") == STREAMING
    assert await client.stream(PROXY, "198.51.100.2") == STREAMING
    assert await client.stream(PROXY, "203.0.113.9, 198.51.100.1") == OVER_CAPACITY


async def test_a_stranger_is_one_reader_whoever_it_claims_to_be(client: Client) -> None:
    assert await client.stream(STRANGER, "198.51.100.3") == STREAMING
    assert await client.stream(STRANGER, "198.51.100.4") == OVER_CAPACITY
    # And from the proxy, a client of that address is that same reader.
    assert await client.stream(PROXY, STRANGER) == OVER_CAPACITY


async def test_the_apps_door_and_a_keep_alive_connection_count_the_same_client(
    client: Client,
) -> None:
    # HTTP/1.0 streams are the app's, on either setting.
    assert await client.stream(PROXY, "198.51.100.5", version="1.0") == STREAMING
    assert await client.stream(PROXY, "198.51.100.5", version="1.0") == OVER_CAPACITY
    # A stream after another request on the connection: uvicorn's protocol serves it.
    reader, writer = await client.connect(PROXY)
    writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.9\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b'"ok"}'), 5)).startswith(b"HTTP/1.1 200")
    assert await client.stream(PROXY, "198.51.100.6", conn=(reader, writer)) == STREAMING
    assert await client.stream(PROXY, "198.51.100.6") == OVER_CAPACITY
