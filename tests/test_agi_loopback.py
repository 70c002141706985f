"""Real loopback TCP: the server on Twisted's asyncio reactor (as in production) and on a plain epoll reactor.

Reactors are private instances (never installed), so these tests leave the global reactor alone.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from twisted.internet.defer import Deferred

from ccserver.agi import AGISession, FastAGIFactory, listen_fastagi
from ccserver.agi.metrics import ERRORS
from tests.replay.agi_peer import AGIPeer, AGIPeerFactory, Responder, transcript_peer
from tests.replay.agi_transcripts import load_agi


def run_until(reactor: Any, d: Deferred[Any], timeout: float) -> Any:
    """Run a private asyncio reactor's loop until ``d`` fires (or fail after ``timeout`` s)."""
    loop = reactor._asyncioEventloop
    return loop.run_until_complete(asyncio.wait_for(d.asFuture(loop), timeout))


def spin(reactor: Any, seconds: float) -> None:
    loop = reactor._asyncioEventloop
    loop.run_until_complete(asyncio.sleep(seconds))


def test_session_completes_promptly_while_1000_half_open_connections_are_held(aio_reactor: Any) -> None:
    reactor = aio_reactor
    results: list[Any] = []

    async def incoming(session: AGISession) -> None:
        results.append((await session.get_variable("CALLERID(name)")).data)
        await session.set_variables({"CC_QUEUE": "service", "CC_PRIORITY": 2})

    factory = FastAGIFactory({"incoming": incoming}, clock=reactor, header_timeout=2.0)
    port = listen_fastagi(reactor, factory, 0)
    address = ("127.0.0.1", port.getHost().port)
    errors_before = ERRORS.value()

    # 1,000 half-open clients: connected, some with part of a header, then silent
    socks = []
    for _ in range(1000):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(address)
        socks.append(s)
    spin(reactor, 0.05)
    for i, s in enumerate(socks):
        if i % 2:
            try:
                s.send(b"agi_network: yes\nagi_network_script: incoming\n")
            except BlockingIOError:
                pass
    deadline = time.monotonic() + 10
    while factory.headers_pending < 1000 and time.monotonic() < deadline:
        spin(reactor, 0.01)
    assert factory.headers_pending == 1000

    # a normal call still goes through, promptly
    peer = transcript_peer("agi-02-13912345678")
    started = time.monotonic()
    reactor.connectTCP(*address, AGIPeerFactory(lambda: peer))
    run_until(reactor, peer.done, timeout=2.0)
    elapsed = time.monotonic() - started
    assert results == ["Liu Yang"]
    assert peer.commands == ["GET VARIABLE CALLERID(name)", 'EXEC MSet "CC_QUEUE=service,CC_PRIORITY=2"']
    assert elapsed < 0.5, elapsed

    # and the silent ones are dropped by the header timeout, counted
    deadline = time.monotonic() + 5
    while factory.headers_pending and time.monotonic() < deadline:
        spin(reactor, 0.05)
    assert factory.headers_pending == 0
    assert factory.drops["header timeout"] == 1000
    assert ERRORS.value() == errors_before + 1000
    # Aborted transports close their sockets an iteration or so later: poll until all are seen closed.
    open_socks = list(socks)
    deadline = time.monotonic() + 5
    while open_socks and time.monotonic() < deadline:
        still = []
        for s in open_socks:
            try:
                if s.recv(1) != b"":
                    still.append(s)  # the server wrote something: not closed (reported below)
                    continue
            except ConnectionResetError:
                pass  # aborted: RST
            except BlockingIOError:
                still.append(s)
                continue
            s.close()
        open_socks = still
        if open_socks:
            spin(reactor, 0.02)
    for s in open_socks:
        s.close()
    assert not open_socks, f"{len(open_socks)} of 1000 connections not closed"
    run_until(reactor, port.stopListening(), timeout=2)
    factory.stop_watching()


def test_many_sessions_over_tcp(aio_reactor: Any) -> None:
    reactor = aio_reactor
    count = 0

    async def incoming(session: AGISession) -> None:
        nonlocal count
        for name, value in (("CC_QUEUE", "bulk"), ("CC_PRIORITY", session.callerid[-1]), ("CC_QUEUE_TIMEOUT", 120)):
            await session.set_variable(name, value)
        count += 1

    factory = FastAGIFactory({"incoming": incoming}, clock=reactor)
    port = listen_fastagi(reactor, factory, 0)
    env = load_agi("agi-load/agi-01-18800000000").env
    peers = [AGIPeer(_env(env, i), Responder()) for i in range(200)]
    it = iter(peers)
    pf = AGIPeerFactory(lambda: next(it))
    for _ in peers:
        reactor.connectTCP("127.0.0.1", port.getHost().port, pf)
    from twisted.internet.defer import gatherResults

    run_until(reactor, gatherResults([p.done for p in peers]), timeout=10)
    assert count == 200
    assert all(len(p.commands) == 3 for p in peers)
    assert sorted(p.commands[1] for p in peers)[0] == 'SET VARIABLE CC_PRIORITY "0"'
    run_until(reactor, port.stopListening(), timeout=2)
    factory.stop_watching()


def _env(env: dict[str, str], i: int) -> bytes:
    from tests.replay.agi_peer import env_block

    return env_block(env, callerid=f"188{i:08d}", uniqueid=f"1795418249.{i}")


def test_plain_twisted_epoll_reactor() -> None:
    """The same code under a classic (non-asyncio) reactor instance, driven with iterate()."""
    from twisted.internet.epollreactor import EPollReactor

    reactor = EPollReactor()
    got: list[str] = []

    async def incoming(session: AGISession) -> None:
        got.append((await session.get_variable("CALLERID(name)")).data)
        await session.set_variable("CC_QUEUE", "service")

    factory = FastAGIFactory({"incoming": incoming}, clock=reactor)
    port = listen_fastagi(reactor, factory, 0)
    peer = transcript_peer("agi-02-13912345678")
    reactor.connectTCP("127.0.0.1", port.getHost().port, AGIPeerFactory(lambda: peer))
    deadline = time.monotonic() + 5
    while not peer.closed and time.monotonic() < deadline:
        reactor.iterate(0.01)
    assert got == ["Liu Yang"] and peer.closed
    assert peer.commands == ["GET VARIABLE CALLERID(name)", 'SET VARIABLE CC_QUEUE "service"']
    port.stopListening()
    factory.stop_watching()
    for _ in range(5):
        reactor.iterate(0)


def test_a_handler_is_a_plain_asyncio_coroutine(aio_reactor: Any) -> None:
    """One async model: a FastAGI handler awaits asyncio work (a thread pool, a lock, wait_for, a Task, a
    coroutine) between AGI commands, and an asyncio error reaches it as an exception."""
    from ccserver.bridge import BlockingPool

    reactor = aio_reactor
    pool = BlockingPool(2, name="agi-test")
    lock = asyncio.Lock()
    seen: list[Any] = []

    async def helper(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    async def incoming(session: AGISession) -> None:
        name = (await session.get_variable("CALLERID(name)")).data
        seen.append(await pool.run(lambda: name.upper()))
        async with lock:
            seen.append(await helper(21))
        seen.append(await asyncio.wait_for(asyncio.ensure_future(helper(2)), 1.0))
        try:
            await asyncio.wait_for(asyncio.get_running_loop().create_future(), 0.01)
        except TimeoutError:
            seen.append("timed out")
        await session.set_variables({"CC_QUEUE": "service"})

    factory = FastAGIFactory({"incoming": incoming}, clock=reactor)
    port = listen_fastagi(reactor, factory, 0)
    peer = transcript_peer("agi-02-13912345678")
    reactor.connectTCP("127.0.0.1", port.getHost().port, AGIPeerFactory(lambda: peer))
    try:
        run_until(reactor, peer.done, timeout=5.0)
    finally:
        pool.shutdown()
        port.stopListening()
    assert seen == ["LIU YANG", 42, 4, "timed out"]
    assert peer.commands[0] == "GET VARIABLE CALLERID(name)" and "CC_QUEUE" in peer.commands[-1]
