"""Redis stand-ins on loopback: for the call-path tests, a proxy in front of the real Redis that behaves like one
that does not honour ``CLIENT REPLY`` (twemproxy, envoy, an old Redis), and one that answers a chosen command
with another command's reply (what a reply stream out of step looks like to a client); for the relay tests, a
plain byte pipe that can be cut and made to refuse connections (:class:`PipeProxy`: Redis restarting).

Both run on the asyncio loop of the test's reactor, parse what the client sends with hiredis' RESP reader
(requests are arrays of bulk strings) and forward each command to the real Redis one at a time, so the replies
go back in request order exactly as a real proxy sends them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import hiredis

__all__ = ["PipeProxy", "RedisProxy"]


def _encode(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


async def _read_reply(reader: asyncio.StreamReader, parser: Any) -> bytes:
    """One whole reply from the upstream Redis, as the raw bytes it sent."""
    raw = bytearray()
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            raise ConnectionError("upstream Redis closed")
        raw += chunk
        parser.feed(chunk)
        if parser.gets() is not False:
            return bytes(raw)


class RedisProxy:
    """``answer(args) -> bytes | None``: the proxy's own reply to a command (not forwarded), or None to forward
    it. ``rewrite(args, reply) -> bytes``: the reply the client gets for a forwarded command. ``commands`` records
    every command the client sent, in order."""

    def __init__(self, upstream_url: str, *, answer: Callable[[list[bytes]], bytes | None] = lambda args: None,
                 rewrite: Callable[[list[bytes], bytes], bytes] = lambda args, reply: reply) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._answer = answer
        self._rewrite = rewrite
        self.commands: list[list[bytes]] = []
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        requests = hiredis.Reader()
        replies = hiredis.Reader()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                requests.feed(data)
                while (command := requests.gets()) is not False:
                    args = [a if isinstance(a, bytes) else str(a).encode() for a in command]
                    self.commands.append(args)
                    own = self._answer(args)
                    if own is None:
                        up_writer.write(_encode(args))
                        own = self._rewrite(args, await _read_reply(up_reader, replies))
                    writer.write(own)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()
            up_writer.close()


def ignores_client_reply(args: list[bytes]) -> bytes | None:
    """A proxy's answer to ``CLIENT REPLY …``: it does not pass it on, and it answers it (as every proxy that does
    not support the command does, with OK or an error) — the client's next command gets a reply all the same."""
    if len(args) >= 2 and args[0].upper() == b"CLIENT" and args[1].upper() == b"REPLY":
        return b"+OK\r\n"
    return None


class PipeProxy:
    """Bytes both ways between a client and the real Redis (pub/sub included), on the test's asyncio loop.

    ``cut()`` closes every open connection at once (a Redis restart, a reset); while ``refusing`` is true, new
    connections are closed as soon as they are accepted (Redis down); while ``stalled`` (``stall()`` until
    ``resume()``), new connections are accepted but nothing passes yet (a Redis still loading); ``blackhole()``
    makes the open connections lose everything both ways from then on, without closing (a host gone, a partition:
    nobody tells the client). ``accepted`` counts connections let through.
    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._db = parts.path.lstrip("/") or "0"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._sessions: set[asyncio.Task[Any]] = set()
        self._silenced: set[asyncio.StreamWriter] = set()
        self.refusing = False
        self._open = asyncio.Event()
        self._open.set()
        self.accepted = 0
        self.port = 0

    @property
    def stalled(self) -> bool:
        return not self._open.is_set()

    def stall(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def blackhole(self) -> None:
        self._silenced |= self._writers

    @property
    def url(self) -> str:
        """The upstream's database, through this proxy."""
        return f"redis://127.0.0.1:{self.port}/{self._db}"

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        self.accepted += 1
        self._writers.add(writer)
        pumps: list[asyncio.Task[None]] = []
        up_writer: asyncio.StreamWriter | None = None
        try:
            await self._open.wait()
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
            self._writers.add(up_writer)
            pumps = [asyncio.ensure_future(self._pump(reader, up_writer)),
                     asyncio.ensure_future(self._pump(up_reader, writer))]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass  # stopped, or the upstream refused: the client sees its connection closed
        finally:
            self._sessions.discard(task)
            for pump in pumps:
                pump.cancel()
            for w in (writer, up_writer):
                if w is not None:
                    self._writers.discard(w)
                    w.transport.abort()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                if sink in self._silenced:
                    continue
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            return
