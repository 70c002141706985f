"""One thread pool for blocking SQL: the server's BlockingPool is also the loop's default executor, so the record
writers' ``asyncio.to_thread`` runs on it, bounded by the same size, not on a second pool of asyncio's own."""

from __future__ import annotations

import asyncio
import threading

from ccserver.bridge import BlockingPool
from ccserver.state.records import RecordBatcher


def test_to_thread_and_the_record_writers_run_on_the_blocking_pool() -> None:
    pool = BlockingPool(2, name="sql-test")
    written: list[tuple[str, list[int]]] = []

    def sink(batch: list[int]) -> None:
        written.append((threading.current_thread().name, batch))

    async def main() -> list[str]:
        pool.serve_default(asyncio.get_running_loop())
        batcher = RecordBatcher(sink, batch_size=2)
        batcher.start()
        batcher.submit(1)
        batcher.submit(2)  # a full batch: written now
        lost = await batcher.close()
        assert lost == 0
        return [await asyncio.to_thread(lambda: threading.current_thread().name),
                await asyncio.get_running_loop().run_in_executor(None, lambda: threading.current_thread().name),
                await pool.run(lambda: threading.current_thread().name)]

    try:
        names = asyncio.run(main())
    finally:
        pool.shutdown()
    assert all(name.startswith("sql-test") for name in names)
    assert [batch for _name, batch in written] == [[1, 2]] and written[0][0].startswith("sql-test")
