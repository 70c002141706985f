"""Exceptions raised by FastAGI session commands.

``CallerHungUp`` is the normal end of many calls, not an error: the server does not log it or count it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ccserver.agi.results import AGIResult


class AGIError(Exception):
    """Base class for every FastAGI failure surfaced to a handler."""


class CallerHungUp(AGIError):
    """The channel is gone: ``HANGUP`` line, ``511`` answer, ``200 result=-1`` from a media command, or EOF."""


class AGITimeout(AGIError):
    """Asterisk did not answer a command within its timeout (``agi.command_timeout``, or the command's own):
    the connection has been closed, and every later command raises ``CallerHungUp``."""


class AGIInvalidCommand(AGIError):
    """``510 Invalid or unknown command``: our bug or an Asterisk without that command."""


class AGIUsageError(AGIError):
    """The multi-line ``520-`` block: Asterisk rejected the arguments; ``usage`` holds its help text."""

    def __init__(self, usage: str) -> None:
        super().__init__("invalid command syntax")
        self.usage = usage


class AGICommandFailed(AGIError):
    """Any other non-200 answer (or a result the command treats as failure)."""

    def __init__(self, message: str, result: AGIResult | None = None) -> None:
        super().__init__(message)
        self.result = result
