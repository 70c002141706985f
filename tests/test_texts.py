"""Error messages in the reader's language: English for scripts, the catalogue's for a page that asked for one."""

from __future__ import annotations

import copy
import json

import orjson
import pytest

from agents_ui.i18n import translations
from ccserver.texts import T, Text, translated
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
