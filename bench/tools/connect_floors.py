"""Connect floors for bench/tools/connect_cost.sh: what answering one SSE request costs
with less than ticker does. Each answers any request with an SSE head and one frame, then
keeps the connection open.

  connect_floors.py uvicorn-app|uvicorn-protocol|bare PORT
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httptools
import uvicorn
import uvloop

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
FIRST = b"retry: 1000\n\n"


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The smallest ASGI SSE app: a head, one frame, then wait for the client to go."""
    if scope["type"] != "http":
        return
    start = {"type": "http.response.start", "status": 200}
    await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
    await send({"type": "http.response.body", "body": FIRST, "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass


class Bare(asyncio.Protocol):
    """httptools on a uvloop transport: parse the head, one write."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_headers_complete(self) -> None:
        self.transport.write(HEAD + b"%x\r\n%s\r\n" % (len(FIRST), FIRST))


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "bare":

        async def serve() -> None:
            loop = asyncio.get_running_loop()
            server = await loop.create_server(Bare, "127.0.0.1", port, backlog=4096)
            await server.serve_forever()

        uvloop.run(serve())
        return
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class ProtocolOnly(HttpToolsProtocol):  # type: ignore[misc]
        """uvicorn's per-connection work (state, parse, scope), then one write."""

        def on_headers_complete(self) -> None:
            self.transport.write(HEAD + b"%x\r\n%s\r\n" % (len(FIRST), FIRST))
            self.answered = True

        def on_message_complete(self) -> None:
            pass

    http: Any = ProtocolOnly if kind == "uvicorn-protocol" else "httptools"
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http=http,
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
