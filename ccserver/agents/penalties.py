"""A queue member's penalty from the agent's skills (app_queue has no skills; penalties stand in for them).

Bands, as in ``routing/rules.py``: **0–4 primary skill, 5–9 secondary, 10+ backup**. A queue's skill is its line
(``sales``, ``service``, ``complaints``, ``insurance``; per-store queues carry their line) or else its name.
An agent's skills are an ordered list: the first is their primary skill (penalty 0), any other listed skill is
secondary (5); ``"service:3"`` sets the penalty explicitly. A queue whose skill the agent lacks gets the backup
penalty (10) when that skill is one agents can have; general queues (``vip``, ``hotline``, ``english`` …) take
anyone at 0. The fallback queue (``default``) is staffed by everyone as backup (10), and an agent's personal
queue is always 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

PRIMARY: Final = 0
SECONDARY: Final = 5
BACKUP: Final = 10
SKILLED_LINES: Final = frozenset({"sales", "service", "complaints", "insurance"})
MAX_PENALTY: Final = 1000


def parse_skill(entry: str) -> tuple[str, int | None]:
    """``"sales"`` → ``("sales", None)``; ``"service:3"`` → ``("service", 3)``. Raises ValueError when bad."""
    name, sep, explicit = entry.strip().partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"empty skill in {entry!r}")
    if not sep:
        return name, None
    explicit = explicit.strip()
    if not (explicit.isascii() and explicit.isdigit()) or int(explicit) > MAX_PENALTY:
        raise ValueError(f"skill {entry!r}: the penalty after ':' must be a whole number 0-{MAX_PENALTY}")
    return name, int(explicit)


def member_penalty(skills: Sequence[str], queue: str, line: str | None, *, personal: bool = False,
                   fallback_queue: str = "default") -> int:
    """The penalty for an agent with ``skills`` joining ``queue`` (of ``line``, None when it has none)."""
    if personal:
        return PRIMARY
    if queue == fallback_queue:
        return BACKUP
    wanted = line or queue
    for index, entry in enumerate(skills):
        try:
            name, explicit = parse_skill(entry)
        except ValueError:
            continue  # a malformed skill in the user record: ignored, never fatal for a sign-in
        if name in (wanted, queue):
            if explicit is not None:
                return explicit
            return PRIMARY if index == 0 else SECONDARY
    return BACKUP if wanted in SKILLED_LINES else PRIMARY
