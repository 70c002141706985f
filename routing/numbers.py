"""Caller number normalisation: whatever Asterisk puts in ``CALLERID(num)`` → one E.164 string or a reason.

``normalize(raw, region="CN", local_area_code=None)`` never raises, for any input. Caller ID is
attacker-controlled, so the input is capped (``MAX_INPUT_CHARS``) before any parsing, and the result is
either ``status == "ok"`` with an ``e164`` that phonenumbers considers valid, or a ``status`` of
``"withheld"`` / ``"invalid"`` with a short ``reason``.

Shapes understood (region ``CN``; the choices that needed making are marked **decision**):

- ``13800138000`` → mobile ``+8613800138000``.
- ``013800138000`` → mobile: carriers put a trunk ``0`` before out-of-area mobiles; the ``0`` is dropped.
  (``01062345678`` is Beijing 010, not 0 + mobile: only ``01[3-9]`` + 9 digits is read as 0 + mobile.)
- ``02158881234``, ``01062345678``, ``075512345678`` → landline: trunk ``0`` + area code (2 or 3 digits) +
  subscriber number.
- ``2158881234``, ``1062345678`` → **decision:** accepted as a national landline without the trunk ``0``. This
  is how ISDN/SS7 trunks present a calling number whose type of number is *national*, unless the channel driver
  re-adds the prefix. ``2158881234`` is also a well-formed US number (Philadelphia 215), but foreign callers
  reach a CN trunk with an international prefix (``+1…``/``001…``), so the CN reading is the useful one. The
  ``reason`` says "trunk prefix 0 assumed"; pass ``trunkless=False`` to reject such numbers instead.
- ``58881234`` (7–8 digits) → local landline, prefixed with ``local_area_code`` (the area code of the DID's
  store, ``"21"`` or ``"021"``); without one → invalid "local number without area code".
- ``+86…``, ``0086…``, ``86…`` → the rest must be a valid national number (a ``(0)`` trunk digit written
  after the country code is dropped); a bare ``86…`` needs ≥ 12 digits, so it is never confused with a
  local number starting ``86``.
- ``+44…``, ``0044…`` → other countries, validated by phonenumbers; kind from its number type.
- ``4008001000``, ``8008101234`` → toll_free (400 shared-cost and 800 free-phone numbers).
- ``10086``, ``95588``, ``1001`` → invalid, kind ``other``, "short code or extension" (3–6 digits, or a short
  number starting ``1``: service codes and internal extensions are not E.164 numbers).
- withheld: ``None``, ``""``, ``anonymous``, ``unknown``, ``<unknown>``, ``Restricted``, ``Private``,
  ``withheld``, ``unavailable`` (any case), or a SIP URI whose user is one of those → status ``withheld``.
- SIP/tel URIs → **decision:** ``sip:``/``sips:``/``tel:`` URIs (optionally ``"Name" <sip:…>``) are reduced
  to their user part, which is then read like any other input: ``sip:+8613800138000@host`` is ok,
  ``sip:1001@host`` (an internal extension) is invalid "short code or extension", ``sip:alice@host`` is
  invalid "not a number".
- full-width forms → **decision:** ``１３８００１３８０００``, ``＋８６　１３８－００１３－８０００``
  (what Chinese input methods type) read as their ASCII digits, plus and separators.
- garbage: letters, ``*``, ``#``, other scripts' digits (Arabic-Indic, circled ①…), fewer than 3 or more than 18
  digits → invalid.

Spaces, tabs, dashes, dots and parentheses (ASCII or full-width) are stripped first. Only ASCII digits and
full-width digits count as digits.

Other regions: numbers with ``+``/``00`` are read as international; anything else is handed to
phonenumbers with the region as the default. The CN shortcuts above apply only to ``region="CN"``.

Speed: the CN path builds the ``PhoneNumber`` itself and validates it once (≈ 5 µs, no
``phonenumbers.parse``); results are kept in an LRU cache keyed by (raw, region, local_area_code).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType

__all__ = [
    "CallerNumber",
    "MAX_INPUT_CHARS",
    "normalize",
    "KIND_MOBILE",
    "KIND_LANDLINE",
    "KIND_TOLL_FREE",
    "KIND_OTHER",
    "KIND_UNKNOWN",
    "STATUS_OK",
    "STATUS_WITHHELD",
    "STATUS_INVALID",
]

MAX_INPUT_CHARS: Final = 64
"""Longer caller IDs are rejected unparsed (no real number, even as a SIP URI, needs more)."""

KIND_MOBILE: Final = "mobile"
KIND_LANDLINE: Final = "landline"
KIND_TOLL_FREE: Final = "toll_free"
KIND_OTHER: Final = "other"
KIND_UNKNOWN: Final = "unknown"

STATUS_OK: Final = "ok"
STATUS_WITHHELD: Final = "withheld"
STATUS_INVALID: Final = "invalid"

_MIN_DIGITS: Final = 3
_MAX_DIGITS: Final = 18  # "0086" + "0" + 11-digit national number + slack; E.164 itself is ≤ 15 digits

_WITHHELD: Final = frozenset(
    {
        "",
        "anonymous",
        "unknown",
        "<unknown>",
        "restricted",
        "private",
        "withheld",
        "unavailable",
        "<anonymous>",
    }
)

# Separators people and switches put in numbers: all whitespace, dashes, dots, parentheses (and their full-width
# forms) are dropped; full-width digits and plus (U+FF10-FF19, U+FF0B), as Chinese input methods type them, are
# read as their ASCII selves.
_SEPARATORS: Final = " \t\r\n\f\v\u00a0\u3000-.()\u2010\u2011\u2012\u2013\u2014\uff0d\uff0e\uff08\uff09"
_STRIP: Final = str.maketrans(
    {**{0xFF10 + d: str(d) for d in range(10)}, 0xFF0B: "+", **dict.fromkeys(map(ord, _SEPARATORS))}
)

# Optional display name + "<", scheme, user part (up to @ ; > or end).
_URI: Final = re.compile(r'^(?:(?:"[^"]*"|[^<"]*)\s*<)?\s*(?:sips?|tel):([^@;>]*)', re.IGNORECASE)

_TYPE_KIND: Final = {
    PhoneNumberType.MOBILE: KIND_MOBILE,
    PhoneNumberType.FIXED_LINE: KIND_LANDLINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: KIND_LANDLINE,
    PhoneNumberType.TOLL_FREE: KIND_TOLL_FREE,
    PhoneNumberType.UAN: KIND_TOLL_FREE,
    PhoneNumberType.SHARED_COST: KIND_TOLL_FREE,  # CN 400 numbers; phonenumbers files them as shared cost
}


@dataclass(frozen=True, slots=True)
class CallerNumber:
    """The outcome of :func:`normalize`.

    ``raw``: the input as given (``""`` for ``None``; truncated to ``MAX_INPUT_CHARS`` + "…" when longer).
    ``e164``: ``"+8613800138000"`` when ``status == "ok"``, else ``None``.
    ``kind``: ``mobile`` / ``landline`` / ``toll_free`` / ``other`` / ``unknown``.
    ``status``: ``ok`` / ``withheld`` / ``invalid``.
    ``reason``: short text, e.g. ``"mobile"``, ``"trunk prefix 0 assumed"``, ``"too short"``.
    """

    raw: str
    e164: str | None
    kind: str
    status: str
    reason: str

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


def normalize(raw: str | None, *, region: str = "CN", local_area_code: str | None = None,
              trunkless: bool = True) -> CallerNumber:
    """Normalise a caller number; never raises. See the module docstring for the accepted shapes."""
    if raw is None:
        return CallerNumber("", None, KIND_UNKNOWN, STATUS_WITHHELD, "no caller number")
    if not isinstance(raw, str):
        return CallerNumber(_safe_repr(raw), None, KIND_UNKNOWN, STATUS_INVALID, "not text")
    if len(raw) > MAX_INPUT_CHARS:
        return CallerNumber(raw[:MAX_INPUT_CHARS] + "…", None, KIND_UNKNOWN, STATUS_INVALID, "too long")
    if not isinstance(region, str) or not (local_area_code is None or isinstance(local_area_code, str)):
        return CallerNumber(raw, None, KIND_UNKNOWN, STATUS_INVALID, "bad region or area code")
    try:
        return _normalize_cached(raw, region, local_area_code, bool(trunkless))
    except Exception:  # noqa: BLE001 - the contract is "never raises"; a bug here must not drop the call
        return CallerNumber(raw, None, KIND_UNKNOWN, STATUS_INVALID, "unparseable")


def cache_clear() -> None:
    """Empty the normalisation cache (tests and benchmarks)."""
    _normalize_cached.cache_clear()


def _safe_repr(value: object) -> str:
    try:
        return repr(value)[:MAX_INPUT_CHARS]
    except Exception:  # noqa: BLE001
        return "?"


@lru_cache(maxsize=8192)
def _normalize_cached(raw: str, region: str, local_area_code: str | None, trunkless: bool) -> CallerNumber:
    text = raw.strip()
    via_uri = False
    if ":" in text:
        m = _URI.match(text)
        if m is None:
            return _invalid(raw, "not a number")
        text = m.group(1).strip()
        via_uri = True
    if text.lower() in _WITHHELD:
        return CallerNumber(raw, None, KIND_UNKNOWN, STATUS_WITHHELD, "withheld")
    cleaned = text.translate(_STRIP)
    if not cleaned:
        return CallerNumber(raw, None, KIND_UNKNOWN, STATUS_WITHHELD, "withheld")
    plus = cleaned[0] == "+"
    digits = cleaned[1:] if plus else cleaned
    if not (digits.isascii() and digits.isdigit()):
        return _invalid(raw, "not a number")
    if len(digits) < _MIN_DIGITS:
        return _invalid(raw, "too short")
    if len(digits) > _MAX_DIGITS:
        return _invalid(raw, "too long")
    if region == "CN":
        result = _cn(raw, digits, plus, local_area_code, trunkless)
    else:
        result = _generic(raw, digits, plus, region)
    if via_uri and result.status == STATUS_OK:
        return CallerNumber(raw, result.e164, result.kind, result.status, result.reason + " (from URI)")
    return result


def _invalid(raw: str, reason: str, kind: str = KIND_UNKNOWN) -> CallerNumber:
    return CallerNumber(raw, None, kind, STATUS_INVALID, reason)


def _ok(raw: str, number_type: int, e164: str, reason: str) -> CallerNumber:
    kind = _TYPE_KIND.get(number_type, KIND_OTHER)
    return CallerNumber(raw, e164, kind, STATUS_OK, reason or kind)


def _cn_valid(nsn: str) -> int | None:
    """The phonenumbers type of the valid +86 number with this national significant number, or None. (+86 is
    one region's only: ``is_valid_number`` is exactly "its type is not UNKNOWN", so the type is worked out once,
    not once to validate and again for the kind — half the regular expressions of a number seen first.)"""
    if not nsn or nsn[0] == "0" or len(nsn) > 12:
        return None
    number_type: int = _CN_TYPE(nsn)
    return None if number_type == PhoneNumberType.UNKNOWN else number_type


_Desc = tuple[frozenset[int], Callable[[str], object]] | None


def _cn_number_type() -> Callable[[str], int]:
    """``phonenumbers.number_type`` of a +86 number given its national significant number (no leading zero),
    with CN's patterns compiled once here: the same descriptions tried in the same order as the library's
    ``_number_type_helper`` — a description matches when the length is one of its possible lengths (if it
    lists any) and its national number pattern matches the whole number — without the per-description
    ``re.compile`` cache look-ups, ``PhoneNumber`` and metadata look-ups of the library's walk (about a third of
    the cost of a number seen first; tests/test_routing_numbers.py compares the two on generated numbers).
    Falls back to the library when +86 is not CN's alone or its metadata is not there."""
    from phonenumbers.phonemetadata import PhoneMetadata

    metadata = PhoneMetadata.metadata_for_region("CN", None)
    if phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(86) != ("CN",) or metadata is None:
        return lambda nsn: phonenumbers.number_type(PhoneNumber(country_code=86,
                                                                national_number=int(nsn)))

    def desc(d: Any) -> _Desc:
        if d is None or not d.national_number_pattern:
            return None  # never matches (as _match_national_number with no pattern)
        return frozenset(d.possible_length), re.compile(d.national_number_pattern).fullmatch

    def matches(number: str, d: _Desc) -> bool:
        if d is None:
            return False
        lengths, fullmatch = d
        return (not lengths or len(number) in lengths) and fullmatch(number) is not None

    general = desc(metadata.general_desc)
    special = [(desc(getattr(metadata, name)), kind) for name, kind in (
        ("premium_rate", PhoneNumberType.PREMIUM_RATE), ("toll_free", PhoneNumberType.TOLL_FREE),
        ("shared_cost", PhoneNumberType.SHARED_COST), ("voip", PhoneNumberType.VOIP),
        ("personal_number", PhoneNumberType.PERSONAL_NUMBER), ("pager", PhoneNumberType.PAGER),
        ("uan", PhoneNumberType.UAN), ("voicemail", PhoneNumberType.VOICEMAIL))]
    special = [(d, kind) for d, kind in special if d is not None]
    fixed, mobile = desc(metadata.fixed_line), desc(metadata.mobile)
    same = bool(metadata.same_mobile_and_fixed_line_pattern)

    def number_type(nsn: str) -> int:
        if not matches(nsn, general):
            return PhoneNumberType.UNKNOWN
        for d, kind in special:
            if matches(nsn, d):
                return kind
        if matches(nsn, fixed):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE if same or matches(nsn, mobile) else PhoneNumberType.FIXED_LINE
        if not same and matches(nsn, mobile):
            return PhoneNumberType.MOBILE
        return PhoneNumberType.UNKNOWN

    return number_type


_CN_TYPE: Final = _cn_number_type()


def _international(raw: str, digits: str) -> CallerNumber:
    """``digits`` follow a ``+`` or ``00``: country code first."""
    if digits.startswith("86"):
        nsn = digits[2:]
        if nsn.startswith("0"):  # "+86 (0)21 …": the trunk digit written after the country code
            nsn = nsn[1:]
        number_type = _cn_valid(nsn)
        if number_type is None:
            return _invalid(raw, "not a valid +86 number")
        return _ok(raw, number_type, "+86" + nsn, "")
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return _invalid(raw, "unknown country code")
    if not phonenumbers.is_valid_number(number):
        return _invalid(raw, "not a valid international number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return _ok(raw, phonenumbers.number_type(number), e164, "international")


def _cn(raw: str, digits: str, plus: bool, local_area_code: str | None, trunkless: bool) -> CallerNumber:
    if plus:
        return _international(raw, digits)
    if digits.startswith("00"):
        return _international(raw, digits[2:])
    n = len(digits)
    first = digits[0]
    if first == "8" and digits.startswith("86") and n >= 12:
        # "86" + national number, no plus. Checked before the national readings; falls through when invalid.
        nsn = digits[2:]
        if nsn.startswith("0"):
            nsn = nsn[1:]
        number_type = _cn_valid(nsn)
        if number_type is not None:
            return _ok(raw, number_type, "+86" + nsn, "")
    if first == "0":
        nsn = digits[1:]  # trunk prefix: "0" + area code + subscriber, or "0" + out-of-area mobile
        number_type = _cn_valid(nsn)
        if number_type is None:
            return _invalid(raw, "not a valid national number")
        return _ok(raw, number_type, "+86" + nsn, "")
    if first == "1":
        if n == 11:
            number_type = _cn_valid(digits)
            if number_type is None:
                return _invalid(raw, "not a valid mobile number")
            return _ok(raw, number_type, "+86" + digits, "")
        if n <= 8:
            return _invalid(raw, "short code or extension", KIND_OTHER)
        if n == 10 and digits.startswith("10"):  # Beijing (area 10) without the trunk "0"
            return _trunkless(raw, digits, trunkless)
        return _invalid(raw, "not a valid national number")
    if n <= 6:
        return _invalid(raw, "short code or extension", KIND_OTHER)
    if n <= 8:
        if local_area_code is None:
            return _invalid(raw, "local number without area code")
        area = local_area_code.strip()
        area = area[1:] if area.startswith("0") else area
        if not (area.isascii() and area.isdigit() and 2 <= len(area) <= 3):
            return _invalid(raw, "bad local area code")
        number_type = _cn_valid(area + digits)
        if number_type is None:
            return _invalid(raw, "not a valid local number")
        return _ok(raw, number_type, "+86" + area + digits, "local number, area code " + area)
    # 9+ digits, not starting with 0 or 1: 400/800 numbers, or a landline without its trunk "0".
    return _trunkless(raw, digits, trunkless)


def _trunkless(raw: str, digits: str, trunkless: bool) -> CallerNumber:
    number_type = _cn_valid(digits)
    if number_type is None:
        return _invalid(raw, "not a valid national number")
    kind = _TYPE_KIND.get(number_type, KIND_OTHER)
    if kind == KIND_TOLL_FREE:
        return CallerNumber(raw, "+86" + digits, kind, STATUS_OK, kind)
    if not trunkless:
        return _invalid(raw, "national number without trunk prefix 0")
    return CallerNumber(raw, "+86" + digits, kind, STATUS_OK, "trunk prefix 0 assumed")


def _generic(raw: str, digits: str, plus: bool, region: str) -> CallerNumber:
    if plus or digits.startswith("00"):
        return _international(raw, digits if plus else digits[2:])
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return _invalid(raw, "unparseable")
    if not phonenumbers.is_valid_number(number):
        return _invalid(raw, "not a valid number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return _ok(raw, phonenumbers.number_type(number), e164, "")
