"""The call-events hub (see :mod:`ccserver.events.hub`) and the event types (:mod:`ccserver.events.types`).

How a feature subscribes::

    from ccserver.events import AgentRinging, CallAnswered, EventHub

    async def on_event(event):            # or a plain function
        if isinstance(event, AgentRinging):
            ...                           # e.g. push a screen pop to event.interface's agent

    hub.subscribe("screenpop", on_event, kinds=(AgentRinging, CallAnswered))
"""

from ccserver.events.hub import EventHub, Subscription
from ccserver.events.types import (
    RING_STOP_REASONS,
    AgentRinging,
    AgentRingStopped,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOffered,
    CallTransferred,
    CallUpdated,
    QueueChanged,
    Resynced,
    TicketSlaAlarm,
)

__all__ = [
    "RING_STOP_REASONS", "AgentRingStopped", "AgentRinging", "AgentStateChanged", "CallAbandoned", "CallAnswered",
    "CallEnded", "CallEvent", "CallOffered", "CallTransferred", "CallUpdated", "EventHub", "QueueChanged", "Resynced",
    "Subscription", "TicketSlaAlarm",
]
