"""Writing to (and closing) a Twisted TCP/UNIX transport without a trip through the reactor when its buffer is
empty.

``transport.write`` only queues: the bytes leave on the next loop iteration, after the reactor registered the
socket for writability (an ``epoll_ctl``), polled, and unregistered it again (another). On the call path that
is twice per routed call (the Redis lookup, the MSet answer), each a small line into an idle socket that
``send()`` takes whole. ``write_through`` sends such a line at once and leaves everything else — bytes already
queued, a partial send, an error, a transport of another kind (TLS) — to ``transport.write`` as before, so
ordering and error handling stay Twisted's.

``transport.loseConnection`` likewise waits for a writability event even when nothing is left to write: it
registers the socket for writing, and on the next iteration ``doWrite`` sends an empty buffer (a ``send()`` of
zero bytes), unregisters it, and only then closes the socket — a loop iteration, two ``epoll_ctl`` and a
``send`` per routed call. ``close_through`` closes such an idle TCP connection at once, the way the reactor
does when that ``doWrite`` reports the connection done (``connectionLost`` with ``ConnectionDone``: stop
reading, an orderly ``shutdown`` and ``close``, then the protocol's ``connectionLost``) — so the protocol's
``connectionLost`` runs before ``close_through`` returns. Anything else (bytes still queued, a producer, TLS,
another kind of transport) goes through ``transport.loseConnection`` as before.

``read_through`` reads a TCP connection just accepted without waiting for the reactor to report it readable.
A FastAGI peer sends its whole ``agi_*`` block as soon as it is connected, so by the time the accept runs the
block has usually arrived, and the loop iteration that would report it (an ``epoll_wait`` and the reactor's
dispatch) is saved; when it has not, the read finds nothing (one ``recv``) and the reactor reports it as usual.
The read is the reactor's own (``_readOrWrite``, in the connection's log context), so what the reactor does with
an error, an EOF or an exception from the protocol is done here too.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.python.log import callWithLogger

__all__ = ["close_through", "read_through", "write_through"]

# One shared Failure, as the reactor's own (posixbase._disconnectSelectable) for every connection it closes.
_DONE = Failure(ConnectionDone())


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


def close_through(transport: Any) -> None:
    """``transport.loseConnection()``, done at once when nothing is left to write (see the module docstring)."""
    if (isinstance(transport, tcp.Connection) and not transport.TLS and transport.connected
            and not transport.disconnecting and transport.producer is None and not transport._tempDataLen
            and transport.offset == len(transport.dataBuffer)):
        transport.disconnecting = True  # as loseConnection: a write from connectionLost is dropped, not sent
        transport.connectionLost(_DONE)
        return
    transport.loseConnection()


def read_through(transport: Any) -> None:
    """What the reactor does when ``transport`` turns readable, done now (see the module docstring). For a TCP
    connection on a reactor with the ``_readOrWrite`` dispatch (the asyncio reactor); otherwise nothing."""
    if not isinstance(transport, tcp.Connection) or transport.TLS or not transport.connected:
        return
    dispatch = getattr(transport.reactor, "_readOrWrite", None)
    if dispatch is not None:
        callWithLogger(transport, dispatch, transport, True)
