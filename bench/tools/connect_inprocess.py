"""The Python part of a connect: N stream requests through ``front.Front`` and the native
stream path, in this process, on a transport that only counts bytes (no sockets, no
kernel). Needs a Redis (TICKER_REDIS_URL, default the local one); its keys go under a
prefix of their own and are deleted afterwards.

  .venv/bin/python bench/tools/connect_inprocess.py [N]      # N = 5000
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from typing import Any

import redis
import uvicorn
from uvicorn.server import ServerState

REQUEST = (
    b"GET /channels/en/events HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"Accept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: sse_load/1\r\n\r\n"
)


class CountingTransport:
    """What the protocol and the stream call on a transport, without a socket."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        pass


async def main(count: int) -> None:
    from ticker.http.app import create_app
    from ticker.http.front import Front
    from ticker.settings import Settings

    app = create_app(Settings())
    config = uvicorn.Config(app=app, lifespan="off")
    state = ServerState()
    async with app.app.router.lifespan_context(app.app) as lifespan_state:
        app_state = dict(lifespan_state or {})

        def connect() -> Front:
            front = Front(config=config, server_state=state, app_state=app_state)
            front.connection_made(CountingTransport())  # type: ignore[arg-type]
            front.data_received(REQUEST)
            return front

        connect()  # starts the channel's reader; the next reads its current items
        await asyncio.sleep(0.5)
        connect()
        open_ = []
        started = time.thread_time()
        for _ in range(count):
            open_.append(connect())
        spent = time.thread_time() - started
        for front in open_:
            front.connection_lost(None)
    print(f"{count} connects: {spent / count * 1e6:.1f} us of Python each (thread CPU time)")


if __name__ == "__main__":
    url = os.environ.setdefault("TICKER_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = os.environ.setdefault("TICKER_KEY_PREFIX", f"connect-inprocess-{uuid.uuid4().hex[:8]}")
    try:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
