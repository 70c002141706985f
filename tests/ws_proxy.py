"""A TCP proxy in front of the websocket listener, for tests that cut a browser's socket: ``drop()`` aborts every
connection through it (the browser sees the socket die, code 1006, as when a network path or a node goes away);
``hold()`` keeps new connections waiting (not forwarded) until ``release()``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class WsProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._open = asyncio.Event()
        self._server: Any = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> WsProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._open.set()
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._open.wait()
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            self._writers.add(up_writer)
            self.accepted += 1
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except OSError:
            pass
        finally:
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _call(self, fn: Any) -> None:
        async def run() -> None:
            fn()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def drop(self) -> None:
        """Abort every connection now (RST, no closing handshake)."""

        def abort() -> None:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._call(abort)

    def hold(self) -> None:
        self._call(self._open.clear)

    def release(self) -> None:
        self._call(self._open.set)

    def stop(self) -> None:
        def close() -> None:
            self._server.close()

        self._call(close)
        self.drop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
