"""Pages in zh-CN (the default) and en, from gettext catalogues: every message translated, lang attribute right."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from agents_ui import Pages
from agents_ui.i18n import DEFAULT, negotiate, translations

ROOT = Path(__file__).resolve().parent.parent
# Where error messages people read are marked with ccserver.texts.T (babel.cfg lists the same folders).
TEXT_SOURCES = (("ccserver/web", "**.py"), ("ccserver/desktop", "**.py"), ("ccserver/agents", "**.py"),
                ("ccserver/supervisor", "**.py"), ("ccserver/tickets", "**.py"), ("ccserver/admin", "**.py"),
                ("ccserver/campaigns", "**.py"), ("ccserver", "auth.py"), ("ccserver", "csvtext.py"),
                ("ccserver", "phonetext.py"))


def extracted() -> set[tuple[str | None, str]]:
    """Every message the templates and the web code mark for translation (as `make i18n` extracts them), as
    (context, message): pgettext's context tells apart one English word meaning two things."""
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2), "N_": None, "T": None}
    found: set[tuple[str | None, str]] = set()
    for folder, method in (("agents_ui", [("**.py", "python"), ("templates/**.html", "jinja2")]),
                           *((folder, [(files, "python")]) for folder, files in TEXT_SOURCES)):
        for _file, _line, message, _comments, context in extract_from_dir(
                ROOT / folder, method, keywords=keywords, options_map={"templates/**.html": {
                    "extensions": "jinja2.ext.i18n"}}):
            found.add((context, message if isinstance(message, str) else message[0]))
    return found


def test_every_message_has_a_chinese_translation() -> None:
    messages = extracted()
    assert len(messages) >= 10
    with open(ROOT / "agents_ui/locale/zh_CN/LC_MESSAGES/messages.po", "rb") as fh:
        zh = {(m.context, m.id): m.string for m in read_po(fh) if m.id}
    missing = sorted(m for m in messages if not zh.get(m))
    assert missing == [], f"run `make i18n` and translate: {missing}"
    with open(ROOT / "agents_ui/locale/en/LC_MESSAGES/messages.po", "rb") as fh:
        en = {(m.context, m.id) for m in read_po(fh) if m.id}
    assert messages <= en


@pytest.mark.parametrize(("cookie", "accept", "lang"), [
    (None, None, "zh-CN"),
    (None, "en-US,en;q=0.9", "en"),
    (None, "fr-FR,en;q=0.5,zh;q=0.8", "zh-CN"),
    (None, "fr-FR", "zh-CN"),
    ("en", "zh-CN", "en"),
    ("xx", "en", "en"),
    (None, "en;q=abc, zh-TW", "zh-CN"),
])
def test_language_negotiation(cookie, accept, lang) -> None:
    assert negotiate(cookie, accept) == lang


def test_pages_render_in_both_languages_and_escape_what_they_show() -> None:
    pages = Pages()
    zh = pages.render("login.html", "zh-CN", principal=None, csrf_token="t", next="/", error="", username="")
    en = pages.render("login.html", "en", principal=None, csrf_token="t", next="/", error="", username="")
    assert '<html lang="zh-CN">' in zh and "登录" in zh and "用户名" in zh
    assert '<html lang="en">' in en and "Log in" in en and "登录" not in en.replace(">中文<", "")
    hostile = pages.render("login.html", DEFAULT, principal=None, csrf_token="t", next="/", error="",
                           username='<img src=x onerror=alert(1)>')
    assert "<img src=x" not in hostile and "&lt;img src=x onerror=alert(1)&gt;" in hostile
    assert "<script>" not in zh and 'type="module" src="/static/common.js"' in zh  # no inline script
    assert translations("zh-CN").gettext("Invalid username or password.") == "用户名或密码错误。"


def test_one_english_word_with_two_meanings_reads_right_in_each_place() -> None:
    """"Since" filters the audit log by date and heads the supervisor's time-in-state column: a context each."""
    templates = ROOT / "agents_ui/templates"
    admin, console = (templates / "admin.html").read_text(), (templates / "supervisor.html").read_text()
    assert 'pgettext("audit filter: entries from this date on", "Since")' in admin
    assert 'pgettext("time in the current state", "Since")' in console
    zh = translations("zh-CN")
    assert zh.pgettext("audit filter: entries from this date on", "Since") == "起始日期"
    assert zh.pgettext("time in the current state", "Since") == "持续"
    assert translations("en").pgettext("audit filter: entries from this date on", "Since") == "Since"


def test_error_page_headings_are_translated() -> None:
    zh = translations("zh-CN")
    assert zh.gettext("The request was refused") == "请求被拒绝"
    assert zh.gettext("Something went wrong") == "出错了"


def test_pages_and_refusals_name_every_role_from_one_list() -> None:
    from agents_ui import template_environment
    from ccserver.auth import ROLES
    from ccserver.texts import RoleName, T, translated

    assert set(RoleName.NAMES) == set(ROLES)
    zh = translations("zh-CN").gettext
    macro = template_environment("zh-CN").from_string(
        '{% import "_roles.html" as r with context %}{% for role in roles %}{{ r.name(role) }}|{% endfor %}')
    shown = macro.render(roles=ROLES).split("|")[:-1]
    assert shown == [translated(T("{role}", role=RoleName(role)), zh) for role in ROLES]
    assert "班长" in shown and not set(shown) & set(ROLES)  # names, never the codes
    assert "部门人员" in shown  # the department role names its people ("部门" alone is a department)
    from ccserver.web import admin_pages  # the admin pages' role picker reads the same list

    assert not hasattr(admin_pages, "ROLE_NAMES")
