"""Which calls are recorded, and what the dialplan is told (pure).

A call is recorded when its queue is in ``recordings.queues`` or the line of its DID in ``recordings.lines``
(``"*"`` in either: every call). The routing answer then carries

- ``CC_RECORD=1``,
- ``CC_RECORDING`` the file name relative to the recordings folder: ``YYYY/MM/DD/<decision id>.wav`` (the UTC
  date the call was routed; the decision id is ccserver's own, so the name is unique and carries nothing a caller
  chose),
- ``CC_RECORDING_DIR`` the folder as Asterisk sees it (``recordings.dir``),
- ``CC_RECORDING_NOTICE`` the prompt played before recording starts (``recordings.notice_prompt``; empty: none).

The dialplan runs ``MixMonitor(${CC_RECORDING_DIR}/${CC_RECORDING},b)`` — never over AMI, whose MixMonitor
needs ``system`` write. The name goes into the routing decision's variables, and from there onto the call record
(``calls.recording_path``) when the call ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SAFE_ID = re.compile(r"^[a-z0-9]{1,32}$")
ALL = "*"


@dataclass(frozen=True, slots=True)
class RecordingPolicy:
    queues: frozenset[str] = frozenset()
    lines: frozenset[str] = frozenset()
    dir: str = "/var/spool/asterisk/monitor/ccserver"
    retention_days: int = 90
    notice_prompt: str = ""

    @classmethod
    def from_config(cls, config: Any) -> RecordingPolicy:
        r = config.recordings
        return cls(frozenset(r.queues), frozenset(r.lines), r.dir, int(r.retention_days), r.notice_prompt)

    @property
    def enabled(self) -> bool:
        return bool(self.queues or self.lines)

    def records(self, queue: str | None, line: str | None) -> bool:
        if ALL in self.queues or ALL in self.lines:
            return True
        return (queue is not None and queue in self.queues) or (line is not None and line in self.lines)

    def variables(self, queue: str | None, line: str | None, decision_id: str, now: float) -> dict[str, str]:
        """The dialplan variables for one routed call; none when it is not recorded (the dialplan empties
        ``CC_RECORD`` before asking ccserver)."""
        if not self.records(queue, line) or not SAFE_ID.match(decision_id):
            return {}
        return {"CC_RECORD": "1", "CC_RECORDING": file_name(decision_id, now), "CC_RECORDING_DIR": self.dir,
                "CC_RECORDING_NOTICE": self.notice_prompt}


def file_name(decision_id: str, now: float) -> str:
    day = datetime.fromtimestamp(now, UTC)
    return f"{day:%Y/%m/%d}/{decision_id}.wav"
