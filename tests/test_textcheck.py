"""The one definition of the characters stored and forwarded texts must not hold (ccserver/textcheck.py)."""

from __future__ import annotations

import pytest

from ccserver.textcheck import CONTROLS, CONTROLS_BUT_LINE_BREAKS

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
C0_BUT_BREAKS = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"]


@pytest.mark.parametrize("ch", BIDI + C0_BUT_BREAKS + ["\x7f"])
def test_every_control_and_bidi_override_is_caught_in_both(ch: str) -> None:
    assert CONTROLS.search(f"广州{ch}店")
    assert CONTROLS_BUT_LINE_BREAKS.search(f"广州{ch}店")


@pytest.mark.parametrize("ch", ["\t", "\n", "\r"])
def test_line_breaks_are_refused_in_one_line_only(ch: str) -> None:
    assert CONTROLS.search(f"a{ch}b")
    assert not CONTROLS_BUT_LINE_BREAKS.search(f"a{ch}b")


@pytest.mark.parametrize("text", ["广州天河店", "Müller & Söhne", "+86 138 0013 8000", "עברית", "عربي", "\u200f", "🚗"])
def test_ordinary_text_passes(text: str) -> None:
    # right-to-left letters and the plain marks are text, not overrides: only the embedding/override/isolate
    # controls are refused
    assert not CONTROLS.search(text)
    assert not CONTROLS_BUT_LINE_BREAKS.search(text)
