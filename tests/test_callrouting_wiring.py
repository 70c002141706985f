"""RoutingRuntime.stop() at shutdown (a component of ``ccserver run``): it flushes the decision log."""

from __future__ import annotations

import asyncio

from ccserver.callrouting.wiring import RoutingRuntime
from ccserver.state.records import RecordBatcher


class Refresher:
    stopped = False

    def stop(self) -> None:
        self.stopped = True


def test_stop_flushes_the_decision_log() -> None:
    async def main() -> None:
        written: list[dict] = []

        async def sink(batch: list[dict]) -> None:
            written.extend(batch)

        batcher = RecordBatcher(sink, batch_size=100, interval=30)
        refresher = Refresher()
        runtime = RoutingRuntime(None, refresher, batcher)  # type: ignore[arg-type]
        batcher.start()
        batcher.submit({"kind": "decision", "decision_id": "d1"})

        await runtime.stop()
        assert refresher.stopped and [r["decision_id"] for r in written] == ["d1"]

    asyncio.run(main())
