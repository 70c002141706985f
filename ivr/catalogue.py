"""The prompt catalogue: every prompt ccserver plays, by file name, with its Mandarin and English text.

``ccserver prompts build`` renders each text into ``<sound_dir>/zh/<name>.wav`` and ``<sound_dir>/en/<name>.wav``
(Asterisk looks a name up under the channel's language, ``CHANNEL(language)``); a studio recording with the same
file name replaces a rendered one. Three kinds of entries:

- sentences: the menus, the IVR's messages, and the prompts the shipped dialplan and the routing/survey settings
  play (``cc-after-hours``, ``cc-survey`` …);
- pieces that read data back (Asterisk ships no Mandarin number prompts): digits, letters, the province
  characters of Chinese plates, hours and minutes, weekdays, months and days of the month — ``ivr.speech``
  composes them, each language in its own word order;
- vehicle models, named by :func:`model_prompt` and rendered from the database's models by ``prompts build``.

A text may name the voice that speaks it (``("en", "For English, press 9.")`` in the Mandarin folder): the key
that switches language is announced in the language it switches to.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["LANGUAGES", "PROMPTS", "Prompt", "catalogue", "model_prompt", "model_texts", "PROVINCES"]

LANGUAGES = ("zh", "en")


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt's texts. ``voice_zh`` / ``voice_en``: the voice of the text filed under that language when it is
    not that language's own (the language-switch hint)."""

    zh: str
    en: str
    voice_zh: str = "zh"
    voice_en: str = "en"

    def text(self, language: str) -> str:
        return self.zh if language == "zh" else self.en

    def voice(self, language: str) -> str:
        return self.voice_zh if language == "zh" else self.voice_en


_SENTENCES: dict[str, Prompt] = {
    # -- the shipped dialplan, routing announcements and the survey ----------------------------------------------
    "cc-after-hours": Prompt("您好，现在是非工作时间。", "Hello. We are closed at the moment."),
    "cc-no-agents": Prompt("抱歉，现在没有客服人员可以接听。",
                           "Sorry, no one is available to take your call right now."),
    "cc-callback-offer": Prompt("目前等待时间较长。如需我们回电，请按1；继续等待请不要挂机。",
                                "All our agents are busy. To be called back instead, press 1. To keep waiting, "
                                "stay on the line."),
    "cc-callback-thanks": Prompt("已为您登记回电，我们会尽快与您联系。", "Thank you. We will call you back as soon "
                                 "as we can."),
    "cc-callback-unavailable": Prompt("抱歉，我们无法为此号码登记回电，请稍后再拨。", "Sorry, we cannot arrange a "
                                      "call back to this number. Please call again later."),
    "cc-queue-callback-hint": Prompt("如不想继续等待，可随时按1，我们将按您的排队顺序回电。", "If you would rather "
                                     "not wait, press 1 at any time and we will call you back in your turn."),
    "cc-goodbye": Prompt("感谢您的来电，再见。", "Thank you for calling. Goodbye."),
    # An answered campaign call no agent could take within the abandon limit (the store's number follows).
    "cc-campaign-abandon": Prompt("您好，这里是您的汽车经销商客户服务中心，现在没有客服人员可以接听，"
                                  "我们稍后会再联系您。我们的电话号码是",
                                  "Hello, this is your car dealer's customer service. No one is free to talk right "
                                  "now; we will call you again later. Our number is"),
    "cc-survey": Prompt("请为本次服务评分，非常满意请按5，非常不满意请按1。", "Please rate this call from 1 to 5, "
                        "where 5 is very satisfied and 1 very dissatisfied."),
    "cc-survey-invalid": Prompt("输入有误，请按1到5之间的数字。", "Sorry, please press a number from 1 to 5."),
    "cc-survey-thanks": Prompt("感谢您的评价，再见。", "Thank you for your rating. Goodbye."),
    # -- IVR: the default dealer-group menu ----------------------------------------------------------------------
    "cc-ivr-welcome": Prompt("您好，欢迎致电客户服务热线。", "Hello, and welcome to our customer service line."),
    "cc-ivr-main": Prompt("新车销售请按1，售后服务请按2，投诉建议请按3，保险业务请按4，人工服务请按0。",
                          "For new car sales, press 1. For after-sales service, press 2. For complaints, press 3. "
                          "For insurance, press 4. To speak to an operator, press 0."),
    "cc-ivr-language": Prompt("For English, press 9.", "中文服务请按9。", voice_zh="en", voice_en="zh"),
    "cc-ivr-after-sales": Prompt("预约保养请按1，故障报修请按2，查询车辆维修进度请按3，人工服务请按0。",
                                 "To book a maintenance visit, press 1. To report a breakdown, press 2. To hear the "
                                 "status of your car, press 3. To speak to an operator, press 0."),
    "cc-ivr-complaints": Prompt("服务质量请按1，配件问题请按2，费用问题请按3，员工态度请按4，销售承诺请按5，"
                                "其他问题请按6，人工服务请按0。",
                                "For service quality, press 1. For parts, press 2. For billing, press 3. For staff "
                                "attitude, press 4. For a sales promise, press 5. For anything else, press 6. To "
                                "speak to an operator, press 0."),
    "cc-ivr-invalid": Prompt("输入有误，请重新选择。", "Sorry, that is not one of the choices."),
    "cc-ivr-no-input": Prompt("我们没有收到您的选择。", "We did not hear your choice."),
    "cc-ivr-operator": Prompt("正在为您转接人工服务，请稍候。", "Connecting you to an operator. Please hold."),
    "cc-ivr-connecting": Prompt("正在为您转接，请稍候。", "Connecting you now. Please hold."),
    "cc-ivr-breakdown-recorded": Prompt("您的故障报修已登记，正在为您优先转接售后服务。",
                                        "Your breakdown report is recorded. We are putting you through to "
                                        "after-sales service first."),
    "cc-ivr-complaint-recorded": Prompt("您的投诉已登记，正在为您优先转接投诉专员。",
                                        "Your complaint is recorded. We are putting you through to our complaints "
                                        "team first."),
    # -- IVR: booking a maintenance visit ------------------------------------------------------------------------
    "cc-ivr-booking-which": Prompt("请选择要预约保养的车辆。", "Which car would you like to book?"),
    "cc-ivr-booking-for": Prompt("为您的这辆车预约保养：", "Booking a maintenance visit for your"),
    "cc-ivr-booking-slots": Prompt("最近可预约的时间有：", "The next free times are:"),
    "cc-ivr-booking-choose": Prompt("请选择预约时间，人工服务请按0。", "Please choose a time, or press 0 to speak to "
                                    "service staff."),
    "cc-ivr-booking-chosen": Prompt("您选择的时间是：", "You chose"),
    "cc-ivr-booking-confirm": Prompt("确认预约请按1，重新选择请按2。", "To confirm, press 1. To choose another time, "
                                     "press 2."),
    "cc-ivr-booking-done": Prompt("预约成功。您的保养时间是：", "Your maintenance visit is booked for"),
    "cc-ivr-booking-sms": Prompt("我们会发送确认短信给您。", "We will send you a confirmation message."),
    "cc-ivr-booking-taken": Prompt("抱歉，这个时间刚刚被约满了。", "Sorry, that time has just been taken."),
    "cc-ivr-booking-none": Prompt("抱歉，暂时没有可以自助预约的时间，正在为您转接售后服务。",
                                  "Sorry, there are no free times to book by phone. Connecting you to service "
                                  "staff."),
    "cc-ivr-booking-failed": Prompt("抱歉，预约暂时无法完成，正在为您转接售后服务。",
                                    "Sorry, we could not complete the booking. Connecting you to service staff."),
    "cc-ivr-no-vehicle": Prompt("没有找到登记在此号码下的车辆，正在为您转接售后服务。",
                                "We could not find a car registered to this number. Connecting you to service "
                                "staff."),
    # -- IVR: status of my car -----------------------------------------------------------------------------------
    "cc-ivr-status-intro": Prompt("您的车辆维修进度如下：", "Here is the status of your car."),
    "cc-ivr-status-none": Prompt("今天没有查到您的车辆维修记录，正在为您转接售后服务。",
                                 "We found no car of yours in the workshop today. Connecting you to after-sales "
                                 "service."),
    "cc-ivr-status-end": Prompt("重听请按1，转售后服务请按0，或直接挂机。", "To hear this again, press 1. To speak to "
                                "after-sales service, press 0. Or simply hang up."),
    "cc-ivr-status-promised": Prompt("预计完成时间：", "expected to be ready at"),
    "cc-ivr-repair-report": Prompt("您的报修单", "Your repair report"),
    "cc-visit-booked": Prompt("已预约进店", "is booked in"),
    "cc-visit-in_progress": Prompt("正在维修", "is being worked on"),
    "cc-visit-waiting_parts": Prompt("正在等待配件", "is waiting for parts"),
    "cc-visit-ready": Prompt("已完工，可以取车", "is ready for collection"),
    "cc-repair-new": Prompt("已受理", "has been received"),
    "cc-repair-assigned": Prompt("已安排技师", "has been given to a technician"),
    "cc-repair-in_progress": Prompt("正在处理", "is being worked on"),
    "cc-today": Prompt("今天", "today"),
    "cc-tomorrow": Prompt("明天", "tomorrow"),
}

_DIGITS_ZH = "零一二三四五六七八九"
_EN_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
            "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty")
_EN_ORDINAL_ONES = ("", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
                    "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
                    "eighteenth", "nineteenth")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")
_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ZH_WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")

# The province (and municipality) characters that open a mainland plate, with the pinyin the English voice says.
PROVINCES: dict[str, str] = {
    "京": "jing", "津": "jin", "沪": "hu", "渝": "yu", "冀": "ji", "豫": "yu2", "云": "yun", "辽": "liao",
    "黑": "hei", "湘": "xiang", "皖": "wan", "鲁": "lu", "新": "xin", "苏": "su", "浙": "zhe", "赣": "gan",
    "鄂": "e", "桂": "gui", "甘": "gan2", "晋": "jin2", "蒙": "meng", "陕": "shan", "吉": "ji2", "闽": "min",
    "贵": "gui2", "粤": "yue", "青": "qing", "藏": "zang", "川": "chuan", "宁": "ning", "琼": "qiong",
}  # fmt: skip


def _zh_number(n: int) -> str:
    """0–99 in Mandarin (十, 十五, 二十, 二十五)."""
    if n < 10:
        return _DIGITS_ZH[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _DIGITS_ZH[tens]) + "十" + (_DIGITS_ZH[ones] if ones else "")


def _en_number(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    tens, ones = divmod(n, 10)
    return _EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else "")


def _en_ordinal(n: int) -> str:
    if n < 20:
        return _EN_ORDINAL_ONES[n]
    tens, ones = divmod(n, 10)
    if not ones:
        return _EN_TENS[tens][:-1] + "ieth"
    return f"{_EN_TENS[tens]}-{_EN_ORDINAL_ONES[ones]}"


def _pieces() -> dict[str, Prompt]:
    out: dict[str, Prompt] = {}
    for d in range(10):
        out[f"cc-digit-{d}"] = Prompt(_DIGITS_ZH[d], _EN_ONES[d])
        if d:
            out[f"cc-press-{d}"] = Prompt(f"请按{d}", f"press {_EN_ONES[d]}")
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        out[f"cc-letter-{letter.lower()}"] = Prompt(letter, letter)
    for char, pinyin in PROVINCES.items():
        out[f"cc-province-{pinyin}"] = Prompt(char, pinyin.rstrip("2").capitalize())
    for hour in range(1, 13):
        out[f"cc-hour-{hour}"] = Prompt(("两" if hour == 2 else _zh_number(hour)) + "点", _en_number(hour))
    for minute in range(1, 60):
        zh = ("零" + _zh_number(minute) if minute < 10 else _zh_number(minute)) + "分"
        en = ("oh " + _en_number(minute)) if minute < 10 else _en_number(minute)
        out[f"cc-minute-{minute}"] = Prompt(zh, en)
    out["cc-oclock"] = Prompt("整", "o'clock")
    out["cc-am"] = Prompt("上午", "a.m.")
    out["cc-pm"] = Prompt("下午", "p.m.")
    for month in range(1, 13):
        out[f"cc-month-{month}"] = Prompt(_zh_number(month) + "月", _EN_MONTHS[month - 1])
    for day in range(1, 32):
        out[f"cc-day-{day}"] = Prompt(_zh_number(day) + "日", _en_ordinal(day))
    for weekday in range(7):
        out[f"cc-weekday-{weekday}"] = Prompt(_ZH_WEEKDAYS[weekday], _EN_WEEKDAYS[weekday])
    return out


PROMPTS: Mapping[str, Prompt] = {**_SENTENCES, **_pieces()}

_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
_CJK = re.compile(r"[\u3400-\u9fff]+")


def model_prompt(model: str) -> str:
    """The prompt name of a vehicle model: ``cc-model-`` and its Latin letters and digits (``XC60`` →
    ``cc-model-xc60``, ``Accord 雅阁`` → ``cc-model-accord``), or a short hash when it has none."""
    words = _ASCII_WORD.findall(model)
    slug = "-".join(w.lower() for w in words)[:40]
    if not slug:
        slug = hashlib.blake2s(model.encode("utf-8")).hexdigest()[:10]
    return f"cc-model-{slug}"


def model_texts(model: str) -> Prompt:
    """What a model's prompt says: its Chinese name in Mandarin when it has one, its Latin name in English."""
    latin = " ".join(_ASCII_WORD.findall(model)) or model
    chinese = "".join(_CJK.findall(model)) or latin
    return Prompt(chinese, latin)


def catalogue(extra: Mapping[str, Prompt] | None = None, models: Iterable[str] = ()) -> dict[str, Prompt]:
    """Every prompt to render: the built-in ones, a site's own (``[ivr.prompts]``, which win) and one per model."""
    out = dict(PROMPTS)
    for model in models:
        out.setdefault(model_prompt(model), model_texts(model))
    out.update(extra or {})
    return out
