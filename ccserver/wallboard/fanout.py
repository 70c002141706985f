"""Sending one wallboard update to every websocket client with one serialisation: the JSON is encoded once per
update (the publisher's :class:`Frame`), and — since a server's frames are never masked — the websocket frame
itself (header + payload) is the same bytes for every client, so it is built once too and written to each
connection's transport as is.

``websockets.broadcast`` builds the frame again for each connection; this is what makes the fan-out cheaper than
that floor per client (benchmarks/bench_wallboard.py). Connections it cannot serve that way — not open, a
compression extension negotiated (per-connection deflate state), a fragmented send in progress — get the
library's own ``broadcast``. A client whose send buffer already holds more than ``max_buffer`` bytes is skipped
(it gets the next update: a wallboard only ever needs the latest), so a stuck client costs no memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("ccserver.wallboard")

DEFAULT_MAX_BUFFER = 1 << 20


def wire_frame(payload: bytes) -> bytes:
    """The unmasked websocket text frame carrying ``payload`` (RFC 6455 §5.2), built by the library."""
    from websockets.frames import Frame, Opcode

    return Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])


class SharedFrameFanout:
    def __init__(self, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self.max_buffer = max_buffer
        self.skipped_slow = 0
        self._cached: tuple[int, bytes] | None = None  # (frame version, wire bytes)

    def send(self, connections: Iterable[Any], frame: Any) -> int:
        """Write ``frame`` (a publisher Frame: ``version``, ``data``) to every open connection; returns how many."""
        from websockets import broadcast
        from websockets.protocol import State

        if self._cached is None or self._cached[0] != frame.version:
            self._cached = (frame.version, wire_frame(frame.data))
        wire = self._cached[1]
        sent = 0
        fallback = []
        for ws in connections:
            protocol = getattr(ws, "protocol", None)  # the asyncio implementation (websockets ≥ 13) has one
            if protocol is None:
                fallback.append(ws)
                continue
            if protocol.state is not State.OPEN:
                continue
            if protocol.extensions or getattr(ws, "send_in_progress", None) is not None:
                fallback.append(ws)
                continue
            transport = ws.transport
            if transport.get_write_buffer_size() > self.max_buffer:
                self.skipped_slow += 1
                continue
            transport.write(wire)
            sent += 1
        if fallback:
            broadcast(fallback, frame.data, text=True)
            sent += len(fallback)
        return sent
