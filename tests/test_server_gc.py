"""After start-up the server freezes what is alive out of the collector's reach and collects its youngest
generation less often (what the event path allocates is freed by reference counting)."""

from __future__ import annotations

import gc

from ccserver.server import YOUNG_GC_THRESHOLD, freeze_startup_objects


def test_startup_freezes_and_raises_the_young_threshold_only_upwards() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert freeze_startup_objects("passed through") == "passed through"
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, 10, 10) and gc.get_freeze_count() > 0
        gc.set_threshold(YOUNG_GC_THRESHOLD * 5, 3, 4)  # an operator's higher choice stands
        freeze_startup_objects()
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD * 5, 3, 4)
        gc.set_threshold(0)  # collection disabled: left so
        freeze_startup_objects()
        assert gc.get_threshold()[0] == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
