"""JSON text of the call path's small values (the cached identity, a decision record's reasons and variables),
exactly as ``json.JSONEncoder(...).encode`` writes it, without what that costs per call beyond the encoding: two
Python frames and, each time, a new C encoder with its own ``markers`` dict (the circular-reference check; these
values are flat lists and dicts made here, never circular). About 0.7 µs less per value (1.9 -> 1.1 µs for a
cached identity); the same text (tests/test_jsontext.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _encoder
from typing import Any

__all__ = ["json_encoder"]


def json_encoder(*, ensure_ascii: bool = True, separators: tuple[str, str] = (", ", ": ")) -> Callable[[Any], str]:
    """``json.JSONEncoder(ensure_ascii=…, separators=…).encode``, its C encoder made once (no circular check)."""
    plain = json.JSONEncoder(ensure_ascii=ensure_ascii, separators=separators)
    make = getattr(_encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the library's own
        return plain.encode
    item_separator, key_separator = separators
    quote = _encoder.encode_basestring_ascii if ensure_ascii else _encoder.encode_basestring
    chunks = make(None, plain.default, quote, None, key_separator, item_separator, False, False, True)
    join = "".join
    encode_str = plain.encode

    def encode(value: Any) -> str:
        if isinstance(value, str):  # encode()'s own shortcut for a bare string
            return encode_str(value)
        return join(chunks(value, 0))

    return encode
