"""The server's Redis client (redis-py, asyncio): one pool of connections shared by every component.

A burst — 1,000 desktops opening their sockets at once after a network blip, each redeeming a ticket and reading
its hello — puts far more commands in flight than a pool holds. redis-py's plain pool then fails the surplus at
once (``MaxConnectionsError``); this one is a *blocking* pool: a command finding every connection busy waits for
one (at most ``pool_timeout`` seconds, then ``ConnectionError``), so a burst queues instead of failing.
``max_connections`` bounds the connections one node holds (the subscriptions keep one each for good).

Timeouts: a command has ``socket_timeout`` (1 s: Redis answers in well under a millisecond, so a longer silence is
a dead server); a new connection has ``CONNECT_TIMEOUT`` (5 s). A connect is timed on the event loop, and in a burst
the loop can be busy for a second (1,000 handshakes, a full garbage collection): with 1 s, connects that had
succeeded in the kernel were failed by their timer first. A Redis that is down refuses at once either way.
"""

from __future__ import annotations

from typing import Any

MAX_CONNECTIONS = 64
POOL_TIMEOUT = 5.0
SOCKET_TIMEOUT = 1.0
CONNECT_TIMEOUT = 5.0


def make_redis_client(url: str, *, max_connections: int = MAX_CONNECTIONS, pool_timeout: float = POOL_TIMEOUT,
                      socket_timeout: float = SOCKET_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT) -> Any:
    """A ``redis.asyncio.Redis`` on a blocking pool; its ``aclose()`` closes the pool too."""
    import redis.asyncio as aioredis

    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=pool_timeout, socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout)
    return aioredis.Redis.from_pool(pool)
