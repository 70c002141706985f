"""Start-up check: is every prompt the shipped dialplan and ccserver's settings play in Asterisk's sound folder?

A missing prompt is silent on a live call: ``Playback`` goes on, a FastAGI ``STREAM FILE`` / ``GET DATA`` of a
missing file ends the script like a hangup. With ``prompts.sound_dir`` set (the folder Asterisk looks names up
in, e.g. /var/lib/asterisk/sounds/en), ``ccserver run`` names every missing one in one warning at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["DIALPLAN_PROMPTS", "SOUND_EXTENSIONS", "check_prompts", "missing_prompts", "played_prompts"]

log = logging.getLogger("ccserver.prompts")

# Prompts config/asterisk/extensions_ccserver.conf plays by name (tests/test_asterisk_prompts.py checks this
# list against the file). vm-goodbye is one of Asterisk's own core sounds.
DIALPLAN_PROMPTS = ("cc-callback-thanks", "cc-callback-unavailable", "vm-goodbye")
# File formats Asterisk plays a prompt from (format_*.so): the name is looked up with each extension.
SOUND_EXTENSIONS = ("wav", "WAV", "wav16", "gsm", "ulaw", "ul", "pcm", "alaw", "al", "sln", "raw", "sln16",
                    "g722", "g729")


def played_prompts(settings: Any) -> dict[str, str]:
    """Every prompt name that can be played, each with who plays it. ``settings`` is the routing service's
    :class:`ccserver.callrouting.RoutingSettings` (announcements from ``routing.announce``, survey prompts
    from ``callrouting.survey_*``)."""
    rules = settings.routing_rules()
    names: dict[str, str] = {}
    for name in DIALPLAN_PROMPTS:
        names.setdefault(name, "the shipped dialplan")
    for key, name in (("after_hours", rules.announce_after_hours), ("no_agents", rules.announce_no_agents),
                      ("callback_offer", rules.announce_callback_offer)):
        names.setdefault(name, f"routing.announce.{key}")
    for key in ("survey_prompt", "survey_invalid_prompt", "survey_thanks_prompt"):
        names.setdefault(getattr(settings, key), f"callrouting.{key}")
    return names


def missing_prompts(sound_dir: str | Path, names: Iterable[str]) -> list[str]:
    """The names with no sound file in ``sound_dir`` (any of :data:`SOUND_EXTENSIONS`), in the order given."""
    folder = Path(sound_dir)
    missing = []
    for name in names:
        base = Path(name) if Path(name).is_absolute() else folder / name
        if not any(base.with_name(f"{base.name}.{ext}").is_file() for ext in SOUND_EXTENSIONS):
            missing.append(name)
    return missing


def check_prompts(sound_dir: str, settings: Any) -> list[str]:
    """Log one warning naming every missing prompt (and who plays it); nothing when ``sound_dir`` is empty.
    Returns the missing names."""
    if not sound_dir:
        return []
    if not Path(sound_dir).is_dir():
        log.warning("prompts.sound_dir %s is not a folder: cannot check the prompts the dialplan plays", sound_dir)
        return []
    played: Mapping[str, str] = played_prompts(settings)
    missing = missing_prompts(sound_dir, played)
    if missing:
        listed = ", ".join(f"{name} ({played[name]})" for name in missing)
        log.warning("%d prompt(s) missing in %s (callers hear nothing there; a FastAGI script ends): %s",
                    len(missing), sound_dir, listed)
    return missing
