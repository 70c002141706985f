"""Pure parts of the desktop: [desktop] settings as config validates them, transfer targets and dialled numbers."""

from __future__ import annotations

import pytest

from ccserver.config import ConfigError, load_config
from ccserver.desktop.settings import DesktopSettings
from ccserver.desktop.targets import TargetError, dial_number, transfer_target

QUEUES = {"sales", "vip", "agent-8002"}
EXTENSIONS = {"8001", "8002"}


def test_defaults_and_overrides_from_the_environment() -> None:
    settings = DesktopSettings.from_config(load_config(environ={}))
    assert settings == DesktopSettings()
    assert settings.pause_code("lunch") is not None and settings.pause_code("wrapup") is None
    assert settings.disposition("resolved").label("en") == "Resolved"  # type: ignore[union-attr]
    assert settings.disposition("resolved").label("zh-CN") == "已解决"  # type: ignore[union-attr]
    custom = load_config(environ={
        "CCSERVER_DESKTOP_WRAPUP_SECONDS": "0",
        "CCSERVER_DESKTOP_PAUSE_CODES": '[{"code": "toilet", "label_zh": "洗手间", "label_en": "Restroom"}]'})
    settings = DesktopSettings.from_config(custom)
    assert settings.wrapup_seconds == 0 and [c.code for c in settings.pause_codes] == ["toilet"]


@pytest.mark.parametrize(("env", "message"), [
    ({"CCSERVER_DESKTOP_PAUSE_CODES": '[{"code": "wrapup", "label_zh": "x", "label_en": "x"}]'},
     "'wrapup' is forced wrap-up's own reason"),
    ({"CCSERVER_DESKTOP_PAUSE_CODES": '[{"code": "a,b", "label_zh": "x", "label_en": "x"}]'}, "pause_codes[0].code"),
    ({"CCSERVER_DESKTOP_DISPOSITIONS": '[{"code": "ok", "label_zh": "x"}]'}, "exactly code, label_zh, label_en"),
    ({"CCSERVER_DESKTOP_DISPOSITIONS": "[]"}, "non-empty list"),
    ({"CCSERVER_DESKTOP_DISPOSITIONS": '[{"code": "ok", "label_zh": "x", "label_en": "x"},'
                                       ' {"code": "ok", "label_zh": "y", "label_en": "y"}]'}, "given twice"),
    ({"CCSERVER_DESKTOP_WRAPUP_SECONDS": "-1"}, "desktop.wrapup_seconds"),
    ({"CCSERVER_DESKTOP_DIAL_CONTEXT": "bad context;x"}, "desktop.dial_context"),
    ({"CCSERVER_DESKTOP_TRANSFER_CONTEXT": ""}, "desktop.transfer_context"),
])
def test_bad_desktop_settings_are_refused_naming_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ=env)
    assert message in str(info.value)


def test_dialled_numbers() -> None:
    assert dial_number("139 1234 5678", "CN").digits == "13912345678"
    assert dial_number("+86 21 5888 1234", "CN").digits == "02158881234"
    assert dial_number("+44 20 7946 0958", "CN").digits == "00442079460958"
    for bad in ("", "abc", "13912345678\r\nAction: Originate", "139\x0012345678", "8001&PJSIP/9", "12"):
        with pytest.raises(TargetError) as info:
            dial_number(bad, "CN")
        assert info.value.field == "number"


def test_transfer_targets() -> None:
    def target(to: str, hint: str | None = None, queues: set[str] | None = QUEUES) -> tuple[str, str, str]:
        t = transfer_target(to, hint, queues=queues, extensions=EXTENSIONS, region="CN")
        return t.type, t.value, t.exten

    assert target("sales") == ("queue", "sales", "q-sales")
    assert target("8002") == ("agent", "8002", "a-8002")
    assert target("13912345678") == ("number", "+8613912345678", "13912345678")
    assert target("newqueue", "queue", None) == ("queue", "newqueue", "q-newqueue")  # queues not known yet
    # Atxfer types the extension as keypad presses: an agent is A<ext>; a queue cannot be typed at all
    attended = transfer_target("8002", None, queues=QUEUES, extensions=EXTENSIONS, region="CN", attended=True)
    assert (attended.type, attended.exten) == ("agent", "A8002")
    assert transfer_target("13912345678", None, queues=QUEUES, extensions=EXTENSIONS, region="CN",
                           attended=True).exten == "13912345678"
    with pytest.raises(TargetError, match="transfer to a queue blind"):
        transfer_target("sales", None, queues=QUEUES, extensions=EXTENSIONS, region="CN", attended=True)
    for to, hint in (("8002", "number"), ("nosuch", None), ("nosuch", "queue"), ("9999", "agent"),
                     ("sales\n", None), ("", None), ("sales", "colour")):
        with pytest.raises(TargetError):
            target(to, hint)
