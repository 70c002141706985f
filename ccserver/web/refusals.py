"""Refusals that anyone can provoke are audited at most once a minute per client and kind (the rest counted)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable


class RefusalThrottle:
    """At most one audit row (and log line) a minute per key for a refusal anyone can provoke.

    A request with a foreign Origin, a websocket with a made-up ticket: no login is needed to send them, and a
    hostile page can make every visitor's browser send them. Written each time, they would fill the audit table
    and the log. The caller still refuses and counts every one; when a key's minute has passed, the row written
    says how many went unwritten since the last one. The keys are bounded (the oldest forgotten).
    """

    def __init__(self, clock: Callable[[], float], *, window: float = 60.0, max_keys: int = 4096) -> None:
        self.clock = clock
        self.window = window
        self.max_keys = max_keys
        self._seen: OrderedDict[tuple[str, ...], list[float]] = OrderedDict()  # key -> [written at, repeats]

    def admit(self, *key: str) -> int | None:
        """How many refusals of ``key`` (client address, what was refused, where) went unwritten since its last
        row, when this one is to be written; None when it is only to be counted."""
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            return None
        repeats = int(seen[1]) if seen is not None else 0
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return repeats
