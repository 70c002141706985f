"""``[desktop]``: the agent desktop's codes and timers, validated once at start-up.

``pause_codes`` and ``dispositions`` are lists of ``{code, label_zh, label_en}``: the code travels to Asterisk
(QueuePause ``Reason``) or into SQL (``calls.disposition``), the labels are what the page shows in its language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ccserver.texts import T

__all__ = ["Code", "DesktopSettings", "DesktopSettingsError", "WRAPUP_REASON"]

WRAPUP_REASON = "wrapup"  # the pause reason of forced wrap-up (never a configurable pause code)
_CODE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")
DEFAULT_PAUSE_CODES: tuple[dict[str, str], ...] = (
    {"code": "break", "label_zh": "休息", "label_en": "Break"},
    {"code": "lunch", "label_zh": "午餐", "label_en": "Lunch"},
    {"code": "meeting", "label_zh": "会议", "label_en": "Meeting"},
    {"code": "training", "label_zh": "培训", "label_en": "Training"},
    {"code": "callback", "label_zh": "外呼回访", "label_en": "Call-backs"},
)
DEFAULT_DISPOSITIONS: tuple[dict[str, str], ...] = (
    {"code": "resolved", "label_zh": "已解决", "label_en": "Resolved"},
    {"code": "ticket", "label_zh": "已建工单", "label_en": "Ticket opened"},
    {"code": "appointment", "label_zh": "已预约", "label_en": "Appointment booked"},
    {"code": "callback", "label_zh": "需回电", "label_en": "Call back needed"},
    {"code": "transferred", "label_zh": "已转接", "label_en": "Transferred"},
    {"code": "sales_lead", "label_zh": "销售线索", "label_en": "Sales lead"},
    {"code": "wrong_number", "label_zh": "打错电话", "label_en": "Wrong number"},
)


class DesktopSettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    label_zh: str
    label_en: str

    def label(self, lang: str) -> str:
        return self.label_en if lang == "en" else self.label_zh

    def json(self) -> dict[str, str]:
        return {"code": self.code, "label_zh": self.label_zh, "label_en": self.label_en}


def _codes(value: Any, key: str) -> tuple[Code, ...]:
    if not isinstance(value, list) or not value:
        raise DesktopSettingsError(T("desktop.{key}: expected a non-empty list of {{code, label_zh, label_en}}",
                                     key=key))
    out: list[Code] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"code", "label_zh", "label_en"}:
            raise DesktopSettingsError(T("desktop.{key}[{i}]: expected exactly code, label_zh, label_en", key=key, i=i))
        code = item["code"]
        if not isinstance(code, str) or not _CODE.match(code):
            raise DesktopSettingsError(T("desktop.{key}[{i}].code: lower-case letters, digits, '_', '-' (≤ 40)",
                                         key=key, i=i))
        if key == "pause_codes" and code == WRAPUP_REASON:
            raise DesktopSettingsError(T("desktop.{key}[{i}].code: '{wrapup_reason}' is forced wrap-up's own reason",
                                         key=key, i=i, wrapup_reason=WRAPUP_REASON))
        for label in ("label_zh", "label_en"):
            text = item[label]
            if not isinstance(text, str) or not text.strip() or len(text) > 60 or not text.isprintable():
                raise DesktopSettingsError(T("desktop.{key}[{i}].{label}: printable text of 1–60 characters", key=key,
                                             i=i, label=label))
        if any(c.code == code for c in out):
            raise DesktopSettingsError(T("desktop.{key}: code {code} given twice", key=key, code=repr(code)))
        out.append(Code(code, item["label_zh"].strip(), item["label_en"].strip()))
    return tuple(out)


@dataclass(frozen=True)
class DesktopSettings:
    pause_codes: tuple[Code, ...] = tuple(Code(**c) for c in DEFAULT_PAUSE_CODES)
    dispositions: tuple[Code, ...] = tuple(Code(**c) for c in DEFAULT_DISPOSITIONS)
    wrapup_seconds: float = 30.0  # 0: no forced wrap-up
    dial_context: str = "ccserver-dial"
    transfer_context: str = "ccserver-transfer"
    dial_timeout_seconds: float = 30.0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DesktopSettings:
        pause = values.get("pause_codes")
        dispositions = values.get("dispositions")
        return cls(
            pause_codes=_codes(pause, "pause_codes") if pause is not None else cls.pause_codes,
            dispositions=_codes(dispositions, "dispositions") if dispositions is not None else cls.dispositions,
            wrapup_seconds=float(values.get("wrapup_seconds", cls.wrapup_seconds)),
            dial_context=str(values.get("dial_context") or cls.dial_context),
            transfer_context=str(values.get("transfer_context") or cls.transfer_context),
            dial_timeout_seconds=float(values.get("dial_timeout_seconds", cls.dial_timeout_seconds)),
        )

    @classmethod
    def from_config(cls, config: Any) -> DesktopSettings:
        return cls.from_dict(config.section("desktop"))

    def pause_code(self, code: object) -> Code | None:
        return next((c for c in self.pause_codes if c.code == code), None)

    def disposition(self, code: object) -> Code | None:
        return next((c for c in self.dispositions if c.code == code), None)
