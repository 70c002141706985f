"""ccserver.jsontext: the same text as json.JSONEncoder(...).encode for the call path's values, and what it raises."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccserver.jsontext import json_encoder

OPTIONS: list[dict[str, Any]] = [{}, {"ensure_ascii": False}, {"ensure_ascii": False, "separators": (",", ":")},
                                 {"separators": (",", ":")}]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=6)),
                      max_leaves=30)


@pytest.mark.parametrize("options", OPTIONS)
def test_call_path_values(options: dict[str, Any]) -> None:
    ours, library = json_encoder(**options), json.JSONEncoder(**options).encode
    for value in ({"c": ["5", "于志强", "bronze", 24.86, False, "zh", "6190", None, False, False], "o": [7, 9]},
                  {"c": None}, ["known customer 张伟 (diamond)", "queue \"sales\"\n: 3 waiting"],
                  {"CC_QUEUE": "sales-zh", "CC_TIER": "gold", "CC_EWT": "30"}, [], {}, None, "bare \u2028 text",
                  [math.inf, -0.0, 1e300, 2**70]):
        assert ours(value) == library(value)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_any_json_value(value: Any) -> None:
    for options in OPTIONS:
        assert json_encoder(**options)(value) == json.JSONEncoder(**options).encode(value)


def test_what_json_cannot_write_is_refused_alike() -> None:
    ours = json_encoder(ensure_ascii=False)
    with pytest.raises(TypeError):
        ours({"when": object()})
    with pytest.raises(TypeError):
        ours({1j: 1})
    assert ours({"after": "an error"}) == '{"after": "an error"}'  # nothing left over from the failed one
