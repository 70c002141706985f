"""Start-up check: is every prompt the shipped dialplan, the settings and the IVR play in Asterisk's sound folder?

A missing prompt is silent on a live call: ``Playback`` goes on, a FastAGI ``STREAM FILE`` / ``GET DATA`` of a
missing file ends the script like a hangup (the IVR then hands the caller to a person). With ``prompts.sound_dir``
set to the folder Asterisk looks sounds up in (``/var/lib/asterisk/sounds``), ccserver's prompts are in its
language subfolders — ``zh/cc-survey.wav``, ``en/cc-survey.wav``, as ``ccserver prompts build`` writes them and as
Asterisk picks them by ``CHANNEL(language)`` — and ``ccserver run`` names every missing one in one warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["DIALPLAN_PROMPTS", "LANGUAGES", "SOUND_EXTENSIONS", "check_prompts", "missing_prompts",
           "played_prompts"]

log = logging.getLogger("ccserver.prompts")

# Prompts config/asterisk/extensions_ccserver.conf (and the queues' periodic announcement) play by name
# (tests/test_asterisk_prompts.py checks this list against the files).
DIALPLAN_PROMPTS = ("cc-callback-thanks", "cc-callback-unavailable", "cc-goodbye", "cc-campaign-abandon")
QUEUE_PROMPTS = ("cc-queue-callback-hint",)
LANGUAGES = ("zh", "en")
# File formats Asterisk plays a prompt from (format_*.so): the name is looked up with each extension.
SOUND_EXTENSIONS = ("wav", "WAV", "wav16", "gsm", "ulaw", "ul", "pcm", "alaw", "al", "sln", "raw", "sln16",
                    "g722", "g729")
LISTED = 20  # missing prompts named in the warning; the rest are counted


def played_prompts(settings: Any, ivr: Any = None) -> dict[str, str]:
    """Every prompt name that can be played, each with who plays it. ``settings`` is the routing service's
    :class:`ccserver.callrouting.RoutingSettings` (announcements from ``routing.announce``, survey prompts
    from ``callrouting.survey_*``); ``ivr`` the :class:`ivr.settings.IVRSettings` (its menus and tickets, and,
    when it is on, the catalogue the flows read back from)."""
    rules = settings.routing_rules()
    names: dict[str, str] = {}
    for name in DIALPLAN_PROMPTS:
        names.setdefault(name, "the shipped dialplan")
    for name in QUEUE_PROMPTS:
        names.setdefault(name, "the shipped queues")
    for key, name in (("after_hours", rules.announce_after_hours), ("no_agents", rules.announce_no_agents),
                      ("callback_offer", rules.announce_callback_offer)):
        names.setdefault(name, f"routing.announce.{key}")
    for key in ("survey_prompt", "survey_invalid_prompt", "survey_thanks_prompt"):
        names.setdefault(getattr(settings, key), f"callrouting.{key}")
    if ivr is not None and ivr.enabled:
        from ivr.catalogue import PROMPTS

        for menu in ivr.menus.values():
            for name in (*menu.intro, *menu.prompts):
                names.setdefault(name, f"ivr.menus.{menu.name}")
        for ticket in ivr.tickets.values():
            names.setdefault(ticket.prompt, f"ivr.tickets.{ticket.name}")
        for name in PROMPTS:
            names.setdefault(name, "the IVR")
    return names


def missing_prompts(sound_dir: str | Path, names: Iterable[str],
                    languages: Sequence[str] | None = None) -> list[str]:
    """The names with no sound file in ``sound_dir`` (any of :data:`SOUND_EXTENSIONS`), in the order given; with
    ``languages``, looked up in each language's subfolder and reported as ``zh/name``."""
    folder = Path(sound_dir)
    missing = []
    for name in names:
        for language in languages or ("",):
            base = Path(name) if Path(name).is_absolute() else folder / language / name
            if not any(base.with_name(f"{base.name}.{ext}").is_file() for ext in SOUND_EXTENSIONS):
                missing.append(f"{language}/{name}" if language else name)
    return missing


def check_prompts(sound_dir: str, settings: Any, ivr: Any = None) -> list[str]:
    """Log one warning naming the missing prompts (``zh/cc-survey``, and who plays it); nothing when
    ``sound_dir`` is empty. Returns the missing ones."""
    if not sound_dir:
        return []
    if not Path(sound_dir).is_dir():
        log.warning("prompts.sound_dir %s is not a folder: cannot check the prompts ccserver plays", sound_dir)
        return []
    played: Mapping[str, str] = played_prompts(settings, ivr)
    missing = missing_prompts(sound_dir, played, LANGUAGES)
    if missing:
        listed = ", ".join(f"{name} ({played[name.split('/', 1)[1]]})" for name in missing[:LISTED])
        more = f" and {len(missing) - LISTED} more" if len(missing) > LISTED else ""
        log.warning("%d prompt(s) missing in %s (callers hear nothing there; `ccserver prompts build` renders "
                    "them): %s%s", len(missing), sound_dir, listed, more)
    return missing
