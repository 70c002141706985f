"""Tickets: complaint, repair, appointment, callback, inquiry and praise work orders.

- :mod:`~ccserver.tickets.lifecycle` — the statuses and the legal moves (pure);
- :mod:`~ccserver.tickets.settings` — ``[tickets]`` / ``[notify]``: categories, department routes, SLA, slots;
- :mod:`~ccserver.tickets.access` — who sees which tickets;
- :mod:`~ccserver.tickets.sla` — due times in business hours;
- :mod:`~ccserver.tickets.store` — the tickets in SQL (blocking); :mod:`~ccserver.tickets.appointments` — slots
  and race-safe booking;
- :mod:`~ccserver.tickets.service` — :class:`TicketService`, what the web, the IVR, the desktop and the dialer call;
- :mod:`~ccserver.tickets.alarms` — the SLA alarm job; :mod:`~ccserver.tickets.abandoned` — call backs for
  abandoned callers; :mod:`~ccserver.tickets.notify` — the webhook outbox and its deliverer.
"""

from ccserver.tickets.access import Actor
from ccserver.tickets.lifecycle import IllegalTransition
from ccserver.tickets.service import TicketService
from ccserver.tickets.settings import NotifySettings, TicketSettings
from ccserver.tickets.store import NewTicket, TicketError

__all__ = ["Actor", "IllegalTransition", "NewTicket", "NotifySettings", "TicketError", "TicketService",
           "TicketSettings"]
