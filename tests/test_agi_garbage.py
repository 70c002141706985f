"""A finished FastAGI session is freed at once by reference counting, not left for the cycle collector.

Sessions that wait for the garbage collector pile up with their transports and buffers between collections
(measurably slower per call); this pins down that protocol <-> session and exception <-> frame cycles are broken.
"""

from __future__ import annotations

import gc
import logging
import weakref
from typing import Any

import pytest

from ccserver.agi import AGISession, CallerHungUp
from tests.replay.agi_peer import Responder, transcript_peer
from tests.test_agi_protocol import Harness


async def routed(session: AGISession) -> None:
    await session.set_variable("CC_QUEUE", "sales")
    await session.set_variable("CC_PRIORITY", "5")


async def hangs_up(session: AGISession) -> None:
    try:
        await session.get_data("beep", 1000, 1)
        await session.set_variable("CC_QUEUE", "sales")
    except CallerHungUp:
        raise


async def fails(session: AGISession) -> None:
    raise RuntimeError("bug in a handler")


@pytest.mark.parametrize(
    "handler, transcript",
    [(routed, "agi-01-13800138000"), (hangs_up, "agi-04-13600000002"), (fails, "agi-01-13800138000")],
)
def test_finished_sessions_are_freed_without_the_collector(handler: Any, transcript: str) -> None:
    # pytest's log capture keeps every LogRecord (with the handler error's traceback, whose frames hold the
    # session); a production handler formats the record and drops it. Keep the capture out of this test.
    agi_log = logging.getLogger("ccserver.agi")
    agi_log.disabled = True
    gc.collect()
    gc.disable()
    try:
        peer = transcript_peer(transcript, Responder(), network_script="incoming")
        if handler is hangs_up:
            peer = transcript_peer(transcript, network_script="incoming")  # the recorded -1 / HANGUP answers
        harness = Harness({"incoming": handler}, peer, default_variables={"CC_QUEUE": "default"})
        harness.flush()
        harness.pump.flush()
        server = weakref.ref(harness.server)
        session = weakref.ref(harness.server.session) if getattr(harness.server, "session", None) else None
        # The in-memory transports of the test harness link both ends in cycles of their own (a real TCP
        # transport is dropped by the reactor): cut them, so only the server's own references remain.
        for end in (harness.server, harness.peer):
            end.transport = None
        del harness, peer
        assert server() is None, "the protocol outlived its session (a reference cycle)"
        assert session is None or session() is None
    finally:
        gc.enable()
        agi_log.disabled = False
