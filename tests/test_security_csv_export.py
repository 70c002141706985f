"""CRM export: no spreadsheet formula from data, phone numbers left as they are (they round-trip through import)."""

from __future__ import annotations

import pytest

from ccserver.admin.crm_export import _safe


@pytest.mark.parametrize("value", ["=1+1", "-2+3+cmd|' /C calc'!A0", "+1+cmd|' /C calc'!A0", "@SUM(A1:A9)",
                                   "\t=HYPERLINK(\"http://x\")", "\r=1", "-", "+"])
def test_formulas_are_prefixed(value: str) -> None:
    assert _safe(value) == "'" + value


@pytest.mark.parametrize("value", ["+8613800138000", "+86 138 0013 8000", "-5", "021-5888 1234", "张伟", "", 7, None])
def test_plain_values_are_unchanged(value: object) -> None:
    assert _safe(value) == value
