"""The routing service (issue #4): FastAGI ``incoming`` / ``survey`` handlers on top of the pure ``routing``
package, with the routing reference data in memory, the live view from the state tracker, a hard answer
deadline and a write-behind decision log. See ``service`` for the call flow and the deadline."""

from __future__ import annotations

from ccserver.callrouting.directory_data import RoutingData, RoutingDataRefresher, StoreCalendar
from ccserver.callrouting.live import live_view, queues_of_interest
from ccserver.callrouting.records import make_record_batcher, routing_record_sink
from ccserver.callrouting.service import RoutingService, new_decision_id
from ccserver.callrouting.settings import RoutingSettings
from ccserver.callrouting.wiring import RoutingRuntime, make_directory

__all__ = [
    "RoutingData",
    "RoutingDataRefresher",
    "RoutingRuntime",
    "RoutingService",
    "RoutingSettings",
    "StoreCalendar",
    "live_view",
    "make_directory",
    "make_record_batcher",
    "new_decision_id",
    "queues_of_interest",
    "routing_record_sink",
]
