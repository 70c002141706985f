"""The characters a stored or forwarded text must not hold, defined once.

- The C0 controls and DEL: they end lines (a forged log line, a cut AMI/AGI frame) and drive terminals.
- The bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069): a text holding them displays in
  another order than it is stored — a store name or a ticket subject that reads as something it is not.

No name, number or subject needs any of them.
"""

from __future__ import annotations

import re

__all__ = ["CONTROLS", "CONTROLS_BUT_LINE_BREAKS"]

_BIDI = "\u202a-\u202e\u2066-\u2069"

# one line of text: every control, line breaks included
CONTROLS = re.compile(f"[\\x00-\\x1f\\x7f{_BIDI}]")
# text of several lines (a ticket's body): tab, LF and CR are allowed, the rest is not
CONTROLS_BUT_LINE_BREAKS = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f{_BIDI}]")
