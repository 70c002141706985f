"""Components start in order, stop in reverse; a failed start stops what had started; a failed stop is logged."""

from __future__ import annotations

import asyncio
import logging

import pytest
from twisted.internet.defer import succeed

from ccserver.components import Components, Step


def test_start_in_order_stop_in_reverse_and_undo_a_failed_start(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []

    async def later(what: str) -> None:
        await asyncio.sleep(0)
        log.append(what)

    def boom() -> None:
        raise RuntimeError("port in use")

    def stop_fails() -> None:
        raise RuntimeError("already gone")

    async def main() -> None:
        ok = Components([
            Step("pool", lambda: log.append("start pool"), lambda: log.append("stop pool")),
            Step("redis", lambda: later("start redis"), stop_fails),
            Step("hub", lambda: succeed(log.append("start hub")), lambda: later("stop hub")),
        ])
        await ok.start()
        await ok.stop()
        bad = Components([Step("a", lambda: log.append("start a"), lambda: log.append("stop a")),
                          Step("b", boom, lambda: log.append("stop b"))])
        with pytest.raises(RuntimeError, match="port in use"):
            await bad.start()

    with caplog.at_level(logging.ERROR, logger="ccserver"):
        asyncio.run(main())
    assert log == ["start pool", "start redis", "start hub", "stop hub", "stop pool",  # redis' stop failed: logged
                   "start a", "stop a"]  # b never started, so it is not stopped
    assert "component redis failed to stop cleanly" in caplog.text
    assert "component b failed to start" in caplog.text
