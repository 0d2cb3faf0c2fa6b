"""A loopback TCP proxy for fault tests: forward, freeze (a half-open peer), or cut the
connection right after the server's reply starts (a lost reply)."""

from __future__ import annotations

import asyncio
import contextlib

from tests.helpers import free_port


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.frozen = asyncio.Event()
        self.drop_replies = 0  # cut this many connections as their reply starts
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        cut = self.drop_replies > 0
        if cut:
            self.drop_replies -= 1
        tasks = [
            asyncio.create_task(self._pipe(reader, up_writer, cut=False)),
            asyncio.create_task(self._pipe(up_reader, writer, cut=cut)),
        ]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
                self._tasks.discard(task)
            for w in (writer, up_writer):
                w.close()

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, cut: bool
    ) -> None:
        while True:
            data = await src.read(65536)
            if not data:
                return
            while self.frozen.is_set():  # hold the bytes: the peer looks alive but mute
                await asyncio.sleep(0.05)
            if cut:
                return  # the reply was on its way: drop it and the connection
            dst.write(data)
            await dst.drain()
