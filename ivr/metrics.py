"""IVR metrics. The names are a contract (dashboards and alerts use them)."""

from __future__ import annotations

from ccserver.metrics import REGISTRY

# How each call that entered the IVR left it: ``line`` (handed to the line the caller chose), ``operator``,
# ``booked`` (self-service booking read back, the IVR hung up), ``vip`` / ``closed`` (menu skipped),
# ``caller_left`` (hung up in the IVR), ``error`` (a bug: the dialplan's fallback took the call).
CALLS = REGISTRY.counter("ccserver_ivr_calls_total", "Calls that entered the IVR, by how they left it (end)")
TICKETS = REGISTRY.counter("ccserver_ivr_tickets_total", "Tickets filed from the IVR, by kind")
BOOKINGS = REGISTRY.counter("ccserver_ivr_bookings_total", "Workshop appointments booked in the IVR")
FAILURES = REGISTRY.counter(
    "ccserver_ivr_failures_total",
    "IVR reads and tickets-service calls that failed (what=error) or missed the routing deadline (what=timeout); "
    "the caller went to a person")
