"""FastAGI server: Asterisk asks, over ``AGI(agi://host:4573/<script>)``, where a call should go.

factory = FastAGIFactory(default_variables={"CC_QUEUE": "default"})

@factory.route("incoming")
async def incoming(session: AGISession) -> None:
    await session.set_variables({"CC_QUEUE": "vip", "CC_PRIORITY": "10"})

listen_fastagi(reactor, factory, 4573)
"""

from __future__ import annotations

from ccserver.agi.errors import AGICommandFailed, AGIError, AGIInvalidCommand, AGITimeout, AGIUsageError, CallerHungUp
from ccserver.agi.protocol import FastAGIProtocol
from ccserver.agi.request import AGIRequest
from ccserver.agi.results import AGIResult, parse_result
from ccserver.agi.server import FastAGIFactory, Handler, listen_fastagi
from ccserver.agi.session import AGISession

__all__ = [
    "AGICommandFailed",
    "AGIError",
    "AGIInvalidCommand",
    "AGIRequest",
    "AGIResult",
    "AGISession",
    "AGITimeout",
    "AGIUsageError",
    "CallerHungUp",
    "FastAGIFactory",
    "FastAGIProtocol",
    "Handler",
    "listen_fastagi",
    "parse_result",
]
