"""Queue and agent KPIs: live, per 15-minute interval and per day (README "KPIs and reports").

- :mod:`ccserver.kpi.counts` — the counters and the figures derived from them (the definitions);
- :mod:`ccserver.kpi.book` — the pure counting logic: the hub's typed events in, counters out (one book per
  Asterisk server);
- :mod:`ccserver.kpi.store` — the interval rows in SQL, read back for reports and after a restart;
- :mod:`ccserver.kpi.service` — the hub subscriber that feeds the books of the servers this node leads, keeps
  them live in Redis for every node, and writes each interval's rows to SQL when it ends.
"""

from ccserver.kpi.book import KpiSettings, ServerBook
from ccserver.kpi.counts import AgentCounts, QueueCounts, agent_figures, queue_figures

__all__ = ["AgentCounts", "KpiSettings", "QueueCounts", "ServerBook", "agent_figures", "queue_figures"]
