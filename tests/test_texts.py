"""Error messages in the reader's language: English for scripts, the catalogue's for a page that asked for one."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import orjson
import pytest

from agents_ui.i18n import translations
from ccserver.phonetext import number_reason
from ccserver.texts import Field, T, Text, translated
from ccserver.web.field_labels import field_labels
from tests.web_support import MemoryUsers, call, make_router


def test_a_text_is_its_english_string_everywhere() -> None:
    text = T("extension {extension} is not signed in", extension="6012")
    assert text == "extension 6012 is not signed in" and isinstance(text, str)
    assert json.dumps({"error": text}) == '{"error": "extension 6012 is not signed in"}'
    assert orjson.loads(orjson.dumps({"error": text})) == {"error": "extension 6012 is not signed in"}
    kept = copy.deepcopy(text)  # through __reduce__, as pickling goes
    assert isinstance(kept, Text) and kept.template == text.template and kept.params == {"extension": "6012"}
    assert T("a {literal} brace stays") == "a {literal} brace stays"  # no values: the template is not formatted


def test_translated_fills_the_catalogue_s_template_with_the_same_values() -> None:
    zh = translations("zh-CN").gettext
    assert translated(T("extension {extension} is not signed in", extension="6012"), zh) == "分机 6012 未签入"
    assert translated(T("not found"), zh) == "未找到"
    assert translated("a plain str stays as written", zh) == "a plain str stays as written"
    assert translated(T("not found"), None) == "not found"
    assert translated(T("no such message in the catalogue"), zh) == "no such message in the catalogue"
    # A translation that does not fit the values (a broken catalogue entry) falls back to the English text.
    assert translated(T("x {a}", a=1), lambda _t: "坏 {b}") == "x 1"


@pytest.fixture
def users() -> MemoryUsers:
    store = MemoryUsers()
    store.add(2, "agent8001", "agent", "agent-pass")
    return store


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, "invalid username or password"),  # a script: English, as it always was
    ({"Accept-Language": "zh-CN,zh;q=0.9"}, "用户名或密码错误"),
    ({"Accept-Language": "en-US,en;q=0.9"}, "invalid username or password"),
    ({"Accept-Language": "zh-CN", "Cookie": "ccserver_lang=en"}, "invalid username or password"),
    ({"Cookie": "ccserver_lang=zh-CN"}, "用户名或密码错误"),
])
def test_api_errors_answer_in_the_language_asked_for(users, headers, expected) -> None:
    router, _ = make_router(users)
    reply = call(router, "POST", "/api/login", json_body={"username": "agent8001", "password": "wrong"},
                 headers=headers)
    assert reply.status == 401 and reply.json() == {"error": expected}


def test_framework_and_auth_errors_are_translated_too(users) -> None:
    router, _ = make_router(users)
    zh = {"Accept-Language": "zh-CN"}
    assert call(router, "GET", "/api/no-such-route", headers=zh).json() == {"error": "未找到"}
    reply = call(router, "GET", "/api/me", headers={**zh, "Authorization": "Bearer nonsense"})
    assert reply.status == 401 and reply.json() == {"error": "令牌格式错误"}
    reply = call(router, "POST", "/api/login", body=b"{not json", headers={**zh, "Content-Type": "application/json"})
    assert reply.status == 400 and reply.json()["error"].startswith("请求内容不是有效的 JSON：")
    english = call(router, "GET", "/api/me", headers={"Authorization": "Bearer nonsense"})
    assert english.json() == {"error": "malformed token"}


def test_a_field_reads_as_the_pages_label_and_stays_a_name_for_scripts() -> None:
    message = T("{field}: no queue named {queue}", field=Field("queue"), queue=repr("nosuch"))
    assert message == "queue: no queue named 'nosuch'"  # the API's English keeps the field's name
    zh = translations("zh-CN").gettext
    assert translated(message, zh, field_labels(zh)) == "队列：没有名为 'nosuch' 的队列"
    assert translated(message, zh) == "queue：没有名为 'nosuch' 的队列"  # no labels given: the name
    assert field_labels(None) is None
    # a value equal to a field's name but not marked as one is data, never relabelled
    assert translated(T("no queue named {name}", name="queue"), zh, field_labels(zh)) == "没有名为 queue 的队列"


def test_every_reason_routing_numbers_gives_is_translatable() -> None:
    source = (Path(__file__).resolve().parent.parent / "routing/numbers.py").read_text()
    reasons = set(re.findall(r'_invalid\(raw, "([^"]+)"', source)) | {"withheld"}
    assert len(reasons) >= 10
    zh = translations("zh-CN").gettext
    for reason in reasons:
        text = number_reason(reason)
        assert isinstance(text, Text) and text.translated(zh) != reason, reason
    assert number_reason("something new") == "something new"
