"""Asterisk Manager Interface (AMI): message model, parser, Twisted client, multi-server manager, lease.

Nothing here imports the global Twisted reactor; pass ``reactor=`` (or a Clock in tests).
"""

from __future__ import annotations

from ccserver.ami.actions import build_action
from ccserver.ami.client import ORIGINATE_REASONS, AMIClient, AMIServerConfig, OriginateResult, backoff_delay
from ccserver.ami.dispatch import EventDispatcher, HandOff
from ccserver.ami.errors import AMIAuthError, AMIConnectionLost, AMIError, AMITimeout, OriginateOutcomeUnknown
from ccserver.ami.manager import AMIManager
from ccserver.ami.message import AMIMessage, parse_block, parse_stream
from ccserver.ami.protocol import ActionResult, AMIProtocol
from ccserver.ami.units import event_time, ring_time_seconds

__all__ = [
    "AMIAuthError", "AMIClient", "AMIConnectionLost", "AMIError", "AMIManager", "AMIMessage", "AMIProtocol",
    "AMIServerConfig", "AMITimeout", "ActionResult", "EventDispatcher", "HandOff", "ORIGINATE_REASONS",
    "OriginateOutcomeUnknown", "OriginateResult", "backoff_delay", "build_action", "event_time", "parse_block",
    "parse_stream", "ring_time_seconds",
]
