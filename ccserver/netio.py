"""Writing to a Twisted TCP/UNIX transport without a trip through the reactor when its buffer is empty.

``transport.write`` only queues: the bytes leave on the next loop iteration, after the reactor registered the
socket for writability (an ``epoll_ctl``), polled, and unregistered it again (another). On the call path that
is twice per routed call (the Redis lookup, the MSet answer), each a small line into an idle socket that
``send()`` takes whole. ``write_through`` sends such a line at once and leaves everything else — bytes already
queued, a partial send, an error, a transport of another kind (TLS) — to ``transport.write`` as before, so
ordering and error handling stay Twisted's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_through"]


def write_through(transport: Any, data: bytes) -> None:
    try:
        idle = (not transport._tempDataLen and transport.offset == len(transport.dataBuffer)
                and transport.connected and not transport.disconnecting)
    except AttributeError:  # not a twisted.internet.abstract.FileDescriptor (TLS, a test's StringTransport)
        idle = False
    if idle:
        sent = transport.writeSomeData(data)  # a socket error comes back as an exception object
        if isinstance(sent, int) and sent > 0:
            if sent == len(data):
                return
            data = data[sent:]
    transport.write(data)
