"""Caller number normalisation: real-world shapes (tables) and properties (hypothesis)."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.numbers import MAX_INPUT_CHARS, CallerNumber, cache_clear, normalize

OK_TABLE = [
    # raw, local_area_code, e164, kind
    ("13800138000", None, "+8613800138000", "mobile"),
    ("138 0013 8000", None, "+8613800138000", "mobile"),
    ("138-0013-8000", None, "+8613800138000", "mobile"),
    ("013800138000", None, "+8613800138000", "mobile"),  # trunk 0 before an out-of-area mobile
    ("+8613800138000", None, "+8613800138000", "mobile"),
    ("008613800138000", None, "+8613800138000", "mobile"),
    ("8613800138000", None, "+8613800138000", "mobile"),
    ("+86 138 0013 8000", None, "+8613800138000", "mobile"),
    ("19912345678", None, "+8619912345678", "mobile"),
    ("02158881234", None, "+862158881234", "landline"),
    ("021-5888-1234", None, "+862158881234", "landline"),
    ("(021) 5888.1234", None, "+862158881234", "landline"),
    ("01062345678", None, "+861062345678", "landline"),  # Beijing 010, not "0" + mobile
    ("075512345678", None, "+8675512345678", "landline"),
    ("+862158881234", None, "+862158881234", "landline"),
    ("+86 (0)21 5888 1234", None, "+862158881234", "landline"),
    ("0086 21 58881234", None, "+862158881234", "landline"),
    ("862158881234", None, "+862158881234", "landline"),
    ("2158881234", None, "+862158881234", "landline"),  # trunkless national (ISDN TON=national)
    ("1062345678", None, "+861062345678", "landline"),
    ("58881234", "21", "+862158881234", "landline"),  # local, area code from the DID's store
    ("58881234", "021", "+862158881234", "landline"),
    ("62345678", "10", "+861062345678", "landline"),
    ("4008001000", None, "+864008001000", "toll_free"),
    ("400-800-1000", None, "+864008001000", "toll_free"),
    ("8008101234", None, "+868008101234", "toll_free"),
    ("+14155552671", None, "+14155552671", "landline"),
    ("0014155552671", None, "+14155552671", "landline"),
    ("+44 20 7946 0958", None, "+442079460958", "landline"),
    ("+85291234567", None, "+85291234567", "mobile"),
    ("sip:13800138000@10.0.0.1", None, "+8613800138000", "mobile"),
    ("sip:+8613800138000@gw.example.cn;user=phone", None, "+8613800138000", "mobile"),
    ('"Zhang San" <sip:013800138000@gw;tag=abc>', None, "+8613800138000", "mobile"),
    ("tel:+86-21-5888-1234", None, "+862158881234", "landline"),
    ("  13800138000\t", None, "+8613800138000", "mobile"),
    # full-width forms, as Chinese input methods type them
    ("１３８００１３８０００", None, "+8613800138000", "mobile"),
    ("＋８６　１３８－００１３－８０００", None, "+8613800138000", "mobile"),
    ("（０２１）５８８８．１２３４", None, "+862158881234", "landline"),
    ("138００138000", None, "+8613800138000", "mobile"),
]


@pytest.mark.parametrize(("raw", "area", "e164", "kind"), OK_TABLE)
def test_ok_shapes(raw, area, e164, kind):
    r = normalize(raw, local_area_code=area)
    assert (r.status, r.e164, r.kind) == ("ok", e164, kind), r
    assert r.raw == raw
    assert r.reason


WITHHELD = [None, "", "   ", "anonymous", "Anonymous", "ANONYMOUS", "unknown", "<unknown>", "Restricted", "Private",
            "withheld", "unavailable", "sip:anonymous@anonymous.invalid", '"Anonymous" <sip:anonymous@x>']


@pytest.mark.parametrize("raw", WITHHELD)
def test_withheld(raw):
    r = normalize(raw)
    assert (r.status, r.e164) == ("withheld", None)
    assert r.reason


INVALID = [
    # raw, local_area_code, reason fragment
    ("abc", None, "not a number"),
    ("13800l38000", None, "not a number"),
    ("*86#", None, "not a number"),
    ("#31#13800138000", None, "not a number"),
    ("1380013800", None, "not a valid national"),  # 10 digits starting 1
    ("15412345678", None, "not a valid mobile"),  # unallocated mobile prefix
    ("12", None, "too short"),
    ("1" * 30, None, "too long"),
    ("10086", None, "short code"),
    ("95588", None, "short code"),
    ("110", None, "short code"),
    ("sip:1001@pbx.local", None, "short code"),  # internal extension
    ("sip:alice@example.com", None, "not a number"),
    ("58881234", None, "without area code"),
    ("58881234", "abc", "bad local area code"),
    ("+999123456789", None, "unknown country code"),
    ("+8612345", None, "not a valid +86"),
    ("12:34", None, "not a number"),
    ("١٣٨٠٠١٣٨٠٠٠", None, "not a number"),  # Arabic-Indic digits: only ASCII and full-width digits count
    ("①③⑧００１３８０００", None, "not a number"),  # circled digits are not digits a caller types
    ("１３８００１３８０００＃", None, "not a number"),
    ("x" * (MAX_INPUT_CHARS + 1), None, "too long"),
]


@pytest.mark.parametrize(("raw", "area", "fragment"), INVALID)
def test_invalid(raw, area, fragment):
    r = normalize(raw, local_area_code=area)
    assert (r.status, r.e164) == ("invalid", None), r
    assert fragment in r.reason


def test_trunkless_can_be_refused():
    r = normalize("2158881234", trunkless=False)
    assert r.status == "invalid"
    assert normalize("4008001000", trunkless=False).status == "ok"  # 400 numbers have no trunk prefix anyway


def test_other_region():
    assert normalize("020 7946 0958", region="GB").e164 == "+442079460958"
    assert normalize("+8613800138000", region="GB").e164 == "+8613800138000"
    assert normalize("13800138000", region="XX").status == "invalid"


def test_long_input_is_cut_before_parsing():
    raw = "1" * 10_000
    r = normalize(raw)
    assert r.status == "invalid" and len(r.raw) <= MAX_INPUT_CHARS + 1


def test_non_text_never_raises():
    assert normalize(13800138000).status == "invalid"  # type: ignore[arg-type]
    assert normalize(b"13800138000").status == "invalid"  # type: ignore[arg-type]
    assert normalize("13800138000", local_area_code=21).status == "invalid"  # type: ignore[arg-type]


def test_cache_returns_equal_results():
    cache_clear()
    a = normalize("13800138000")
    b = normalize("13800138000")
    assert a == b and a is b


def _check_property(r: CallerNumber) -> None:
    assert isinstance(r, CallerNumber)
    if r.status == "ok":
        assert r.e164 is not None and r.e164.startswith("+")
        assert phonenumbers.is_valid_number(phonenumbers.parse(r.e164, None))
        assert phonenumbers.format_number(phonenumbers.parse(r.e164, None),
                                          phonenumbers.PhoneNumberFormat.E164) == r.e164
    else:
        assert r.status in ("withheld", "invalid")
        assert r.e164 is None
        assert r.reason
    assert r.kind in ("mobile", "landline", "toll_free", "other", "unknown")


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=200)), st.one_of(st.none(), st.text(max_size=5)))
def test_property_arbitrary_text_never_raises(raw, area):
    _check_property(normalize(raw, local_area_code=area))


_number_like = st.text(alphabet="0123456789+ -().", min_size=1, max_size=24)


@settings(max_examples=1500, deadline=None)
@given(_number_like, st.sampled_from([None, "21", "10", "755", "0571"]))
def test_property_number_like_text(raw, area):
    _check_property(normalize(raw, local_area_code=area))


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_property_mobile_forms_agree(mobile):
    """A mobile written in any of the usual shapes normalises to the same thing."""
    forms = [mobile, "0" + mobile, "+86" + mobile, "0086" + mobile, "86" + mobile, f"sip:{mobile}@gw"]
    results = {normalize(f).e164 for f in forms}
    assert len(results) == 1
    (e164,) = results
    assert e164 is None or e164 == "+86" + mobile


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[2-9][0-9]{6,7}", fullmatch=True))
def test_property_local_numbers(local):
    r = normalize(local, local_area_code="21")
    _check_property(r)
    if r.status == "ok":
        assert r.e164 == "+8621" + local


def test_cn_number_type_is_the_librarys() -> None:
    """The +86 type table (routing.numbers._CN_TYPE, CN's patterns compiled once) answers as
    ``phonenumbers.number_type`` for every length and leading digits a caller ID can give it."""
    import random

    from phonenumbers import PhoneNumber

    from routing.numbers import _CN_TYPE

    rng = random.Random(86)
    prefixes = ["1", "10", "13", "14", "15", "16", "17", "18", "19", "2", "20", "21", "3", "311", "371", "4", "400",
                "5", "6", "7", "755", "8", "800", "9", "95", "96", "106", "12", "1349", "1740"]
    seen = set()
    for _ in range(40_000):
        prefix = rng.choice(prefixes) if rng.random() < 0.7 else rng.choice("123456789")
        length = rng.randint(len(prefix), 12)
        nsn = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix)))
        expected = phonenumbers.number_type(PhoneNumber(country_code=86, national_number=int(nsn)))
        assert _CN_TYPE(nsn) == expected, nsn
        seen.add(expected)
    assert len(seen) >= 5  # unknown, fixed line, mobile, toll free, shared cost at least
