"""Parse one FastAGI answer line: ``200 result=<r>[ (data)][ key=value ...]``.

Real shapes (see the transcripts): ``200 result=1``, ``200 result=1 (Liu Yang)``, ``200 result=0 endpos=11234``,
``200 result=-1``, ``200 result= (timeout)``, ``510 Invalid or unknown command``, ``511 Command Not Permitted
on a dead channel or intercept routine``. The multi-line ``520-`` block is assembled by the protocol.
"""

from __future__ import annotations

_EMPTY: dict[str, str] = {}


class AGIResult:
    """An immutable parsed answer. ``result`` is None when the result text is not an integer (GET DATA ``*1``)."""

    __slots__ = ("code", "result", "result_text", "data", "extras", "line")

    code: int
    result: int | None
    result_text: str
    data: str | None
    extras: dict[str, str]
    line: str

    def __init__(
        self,
        code: int,
        result_text: str,
        data: str | None = None,
        extras: dict[str, str] | None = None,
        line: str = "",
    ) -> None:
        self.code = code
        self.result_text = result_text
        self.result = _to_int(result_text)
        self.data = data
        self.extras = extras if extras else _EMPTY
        self.line = line

    @property
    def digits(self) -> str:
        """GET DATA: the digits entered ("" on timeout / nothing). The result text, kept as text (leading 0, ``*``)."""
        return "" if self.result == -1 else self.result_text

    @property
    def digit(self) -> str:
        """WAIT FOR DIGIT / STREAM FILE: the key pressed (Asterisk sends its ASCII code), "" for none."""
        r = self.result
        return chr(r) if r is not None and 0 < r < 0x110000 else ""

    @property
    def endpos(self) -> int | None:
        value = self.extras.get("endpos")
        return _to_int(value) if value is not None else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AGIResult):
            return NotImplemented
        return (self.code, self.result_text, self.data, self.extras) == (
            other.code,
            other.result_text,
            other.data,
            other.extras,
        )

    def __hash__(self) -> int:
        return hash((self.code, self.result_text, self.data))

    def __repr__(self) -> str:
        return f"AGIResult({self.line!r})"


def _to_int(text: str) -> int | None:
    # int() accepts " 1" and "1_0"; Asterisk never sends those, so a cheap digit check is enough here
    body = text[1:] if text.startswith("-") else text
    return int(text) if body.isdigit() and body.isascii() else None


def parse_result(line: str) -> AGIResult:
    """Parse one answer line (no trailing newline). Never raises: odd lines become code 0 / raw text."""
    cached = _COMMON.get(line)
    if cached is not None:
        return cached
    code_text, _, rest = line.partition(" ")
    code = int(code_text) if code_text.isdigit() and code_text.isascii() else 0
    if code != 200 or not rest.startswith("result="):
        # 510/511/other: no result=; keep the message as data
        return AGIResult(code, "", rest or None, None, line)
    rest = rest[7:]
    result_text, _, rest = rest.partition(" ")
    data: str | None = None
    if rest.startswith("("):
        if rest.endswith(")"):
            # GET VARIABLE: the value may itself hold parentheses or spaces, and nothing follows it
            data, rest = rest[1:-1], ""
        else:
            close = rest.rfind(")")
            if close < 0:
                data, rest = rest[1:], ""
            else:
                data, rest = rest[1:close], rest[close + 1 :]
    extras: dict[str, str] | None = None
    if rest:
        for word in rest.split():
            key, sep, value = word.partition("=")
            if sep:
                if extras is None:
                    extras = {}
                extras[key] = value
    return AGIResult(code, result_text, data, extras, line)


# The overwhelmingly common answers are shared objects: no allocation on the hot path.
_COMMON: dict[str, AGIResult] = {}
for _text in ("200 result=0", "200 result=1", "200 result=-1"):
    _COMMON[_text] = parse_result(_text)
del _text


_COMMON_BYTES: dict[bytes, AGIResult] = {k.encode(): v for k, v in _COMMON.items()}


def parse_result_bytes(raw: bytes) -> AGIResult:
    """``parse_result`` for a raw line; the common answers cost one dict lookup and no decode."""
    cached = _COMMON_BYTES.get(raw)
    if cached is not None:
        return cached
    return parse_result(raw.decode("utf-8", "replace"))
