"""The supervisors' wallboard: a snapshot of queues, callers, agents, alarms and today's interval charts, built
once per update and encoded once for every client.

- :mod:`ccserver.wallboard.snapshot` — pure: tiles, VIP alert, agent grid, service-level status.
- :mod:`ccserver.wallboard.charts` — pure: SVG line and bar charts (also used by the reports page).
- :mod:`ccserver.wallboard.source` — gathers the inputs (live views, SQL interval rows, SLA alarms).
- :mod:`ccserver.wallboard.publisher` — coalesced updates (≤ ``wallboard.max_updates_per_second``), one shared
  encoding per update, subscribers (the websocket ``/ws/wallboard`` attaches here; ``GET /api/wallboard`` reads it).
"""

from ccserver.wallboard.publisher import Frame, WallboardPublisher, encode
from ccserver.wallboard.source import WallboardSource

__all__ = ["Frame", "WallboardPublisher", "WallboardSource", "encode"]
