"""The caller's side of an IVR call over FastAGI: the language, playing prompts, asking for a key, choosing.

Round trips are what a caller waits on, so each step is as few as Asterisk allows:

- one prompt and a key: ``GET DATA prompt timeout 1`` (one round trip; ``200 result= (timeout)`` is no key);
- several prompts (a read-back of times and plates) and a key: ``EXEC Read`` plays them as one
  ``a&b&c`` list, interruptible by a key, then ``GET FULL VARIABLE ${READSTATUS}:${CC_IVR_KEY}`` reads the
  outcome (two round trips whatever the length; Read skips a missing piece instead of failing);
- prompts without a key: ``EXEC Playback a&b&c`` (one round trip).

``GET DATA`` answers ``200 result=-1`` both when the caller hung up and when its prompt file is missing. The
session raises ``CallerHungUp`` for it; while the connection is still up the dialog reports it as
:class:`PromptFailed`, and the flow hands the caller to a person — if they really left, the next command gets
Asterisk's ``HANGUP`` and the flow ends there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ccserver.agi.errors import CallerHungUp
from ccserver.agi.session import AGISession
from ccserver.logs import log_text

__all__ = ["Choice", "Dialog", "OutOfTries", "PromptFailed"]

log = logging.getLogger("ccserver.ivr")

T = TypeVar("T")

KEY_VARIABLE = "CC_IVR_KEY"
# Read and Playback last as long as their prompts: a read-back of three slots is well under this.
LONG_PROMPT_SECONDS = 180.0
MAX_LANGUAGE_SWITCHES = 4  # a caller pressing the switch key over and over ends up with a person, like any other


class PromptFailed(Exception):
    """Asterisk could not play a prompt (missing file), or the caller hung up and Asterisk has not said so yet."""


@dataclass(frozen=True, slots=True)
class OutOfTries:
    """:meth:`Dialog.choose`'s answer when the caller gave no valid key in every try."""

    last_key: str


@dataclass(frozen=True, slots=True)
class Choice(Generic[T]):
    key: str
    value: T


class Dialog:
    """One caller's dialog. ``language``: ``zh`` or ``en``; ``language_key``: the key that switches (or "")."""

    def __init__(self, session: AGISession, language: str, *, language_key: str = "") -> None:
        self.session = session
        self.language = language
        self.language_key = language_key
        self.switches = 0

    async def use_language(self, language: str, *, force: bool = False) -> None:
        """Play prompts from ``sounds/<language>/`` (``CHANNEL(language)``); nothing sent when Asterisk's channel
        already has it."""
        self.language = language
        if force or self.session.get("language") != language:
            await self.session.set_variable("CHANNEL(language)", language)

    async def switch_language(self) -> None:
        self.switches += 1
        await self.use_language("en" if self.language == "zh" else "zh", force=True)

    async def ask(self, prompts: Sequence[str], timeout_ms: int, max_digits: int = 1) -> str:
        """Play ``prompts`` and return the key(s) pressed ("" for none). Raises :class:`PromptFailed` (a prompt
        Asterisk cannot play: GET DATA -1 while the channel is up, Read's READSTATUS=ERROR), or
        ``CallerHungUp`` once Asterisk said the caller left."""
        session = self.session
        if len(prompts) == 1:
            try:
                result = await session.get_data(prompts[0], timeout_ms, max_digits)
            except CallerHungUp:
                if session.alive:
                    raise PromptFailed(prompts[0]) from None
                raise
            return result.digits
        await session.exec("Read", KEY_VARIABLE, "&".join(prompts), max_digits, "", 1,
                           f"{timeout_ms / 1000:g}", timeout=LONG_PROMPT_SECONDS)
        answer = await session.get_full_variable(f"${{READSTATUS}}:${{{KEY_VARIABLE}}}")
        status, _, digits = (answer.data or "").partition(":")
        if status == "HANGUP":
            raise CallerHungUp("caller hung up during Read")
        if status == "ERROR":  # a prompt Asterisk cannot play: Read gives up at once, never waiting for a key
            raise PromptFailed("&".join(prompts))
        return digits

    async def play(self, prompts: Sequence[str]) -> None:
        """Play ``prompts`` to the end (no key interrupts them)."""
        if prompts:
            await self.session.exec("Playback", "&".join(prompts), timeout=LONG_PROMPT_SECONDS)

    async def choose(self, first: Sequence[str], again: Sequence[str], options: Mapping[str, T], *,
                     timeout_ms: int, retries: int, context: str) -> Choice[T] | OutOfTries:
        """Play ``first``, then ``again`` on each later try, until the caller presses one of ``options``; after
        ``retries`` repeats with no key or a wrong one, :class:`OutOfTries`. The language key switches language
        and plays ``again`` in the new one (not counted as a try, up to ``MAX_LANGUAGE_SWITCHES``)."""
        prompts = list(first)
        tries = 0
        key = ""
        while True:
            key = await self.ask(prompts, timeout_ms)
            key = key[:1]
            if key and key == self.language_key and self.switches < MAX_LANGUAGE_SWITCHES:
                await self.switch_language()
                prompts = list(again)
                continue
            if key in options:
                return Choice(key, options[key])
            tries += 1
            if tries > retries:
                log.info("ivr uniqueid=%s %s: no valid key after %d tries (last %r): to a person",
                         log_text(self.session.uniqueid, 64), context, tries, log_text(key, 4))
                return OutOfTries(key)
            prompts = ["cc-ivr-invalid" if key else "cc-ivr-no-input", *again]
