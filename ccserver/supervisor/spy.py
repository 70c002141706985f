"""Pure pieces of listen / whisper / barge: which ChanSpy options, which channel, which Originate.

The supervisor's phone is called (AMI ``Originate``) into the dialplan context ``[ccserver-spy]``
(config/asterisk/extensions_ccserver.conf), extension = the mode; the context runs
``ChanSpy(${CC_SPY_CHANNEL},<options>)``. The options live in the dialplan (an AMI user cannot choose them), and
this table says what the shipped dialplan must carry (a test compares them):

- ``b`` only channels in a bridged call; ``q`` no beep, no channel name read out; ``S`` stop when nothing is left
  to spy on; ``E`` hang up when the spied-on channel hangs up — for every mode;
- listen adds nothing (the supervisor hears both sides, nobody hears them);
- whisper ``w``: the supervisor speaks to the agent only;
- barge ``B``: the supervisor speaks to both the agent and the caller.

ChanSpy takes a channel *prefix*: the agent's channels are named after their interface plus ``-<counter>``
(``PJSIP/8001-0000002a``, ``Local/8001@agent-phones-00000001;1`` for ``Local/8001@agent-phones/n``), so the prefix
is the interface (a Local channel's ``/n``-style options dropped) and ``-``.
"""

from __future__ import annotations

import re
from typing import Any

from ccserver.texts import T

SPY_CONTEXT = "ccserver-spy"
COMMON_OPTIONS = "bqSE"
SPY_OPTIONS: dict[str, str] = {
    "listen": COMMON_OPTIONS,
    "whisper": COMMON_OPTIONS + "w",
    "barge": COMMON_OPTIONS + "B",
}
# What may reach ChanSpy's first argument: no comma (a second argument: options), no '$' '{' (expressions),
# no spaces or control characters (CR/LF/NUL would be AMI header injection).
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}/[A-Za-z0-9_.@:+#*\-/]{1,100}-$")
_LOCAL_OPTIONS = re.compile(r"/[a-z]{1,4}$")


class SpyError(ValueError):
    """The request cannot become a safe Originate."""


def channel_prefix(interface: str) -> str:
    """The prefix every channel of ``interface`` starts with (what ChanSpy is given)."""
    base = interface
    if base.lower().startswith("local/"):
        base = _LOCAL_OPTIONS.sub("", base)  # Local/8001@agent-phones/n -> Local/8001@agent-phones
    prefix = base + "-"
    if not _PREFIX.match(prefix):
        raise SpyError(T("interface {interface} cannot be spied on (not a plain Tech/resource)",
                         interface=repr(interface)))
    return prefix


def originate_headers(mode: str, *, supervisor_phone: str, agent_interface: str, agent_extension: str,
                      supervisor: str, timeout_seconds: int = 30) -> dict[str, Any]:
    """The ``Originate`` headers: ring ``supervisor_phone``; when answered, spy on the agent's channel."""
    if mode not in SPY_OPTIONS:
        raise SpyError(T("mode must be one of {modes}", modes=', '.join(SPY_OPTIONS)))
    prefix = channel_prefix(agent_interface)
    for name, value in (("supervisor", supervisor), ("agent_extension", agent_extension)):
        if not re.fullmatch(r"[A-Za-z0-9_.\-@]{1,64}", value):
            raise SpyError(T("{name} {value} is not a plain name", name=name, value=repr(value)))
    return {
        "Channel": supervisor_phone,
        "Context": SPY_CONTEXT,
        "Exten": mode,
        "Priority": 1,
        # The supervisor's phone shows what it is about to do and whom.
        "CallerID": f'"{mode} {agent_extension}" <{agent_extension}>',
        "Async": "true",
        "Timeout": timeout_seconds * 1000,
        "Variable": {"CC_SPY_CHANNEL": prefix, "CC_SPY_AGENT": agent_extension, "CC_SPY_SUPERVISOR": supervisor},
    }
