"""RoutingRuntime.stop() at shutdown: awaited the way ``ccserver run`` awaits it, it flushes the decision log."""

from __future__ import annotations

import asyncio

from twisted.internet.defer import ensureDeferred

from ccserver.callrouting.wiring import RoutingRuntime
from ccserver.state.records import RecordBatcher


class Refresher:
    stopped = False

    def stop(self) -> None:
        self.stopped = True


def test_stop_flushes_when_awaited_from_a_twisted_driven_coroutine() -> None:
    async def main() -> None:
        written: list[dict] = []

        async def sink(batch: list[dict]) -> None:
            written.extend(batch)

        batcher = RecordBatcher(sink, batch_size=100, interval=30)
        refresher = Refresher()
        runtime = RoutingRuntime(None, refresher, batcher)  # type: ignore[arg-type]
        batcher.start()
        batcher.submit({"kind": "decision", "decision_id": "d1"})

        async def cleanup() -> None:  # server.py's shutdown hook: a coroutine driven by Twisted (ensureDeferred)
            await runtime.stop()

        await ensureDeferred(cleanup()).asFuture(asyncio.get_running_loop())
        assert refresher.stopped and [r["decision_id"] for r in written] == ["d1"]

    asyncio.run(main())
