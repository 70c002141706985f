"""Quoting: every command builder against a model of Asterisk's argument splitter, hostile values, MSet rules."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from ccserver.agi import commands as cmd
from ccserver.agi.quoting import MAX_COMMAND_BYTES, arg, check_name, mset_safe, quote
from ccserver.agi.session import _plan_general, _plan_set_variables
from tests.replay.agi_peer import agi_split
from tests.replay.agi_transcripts import agi_transcript_paths, load_agi


def test_splitter_model_on_recorded_commands() -> None:
    assert agi_split('SET VARIABLE CC_QUEUE "service"') == ["SET", "VARIABLE", "CC_QUEUE", "service"]
    assert agi_split('STREAM FILE hello-world ""') == ["STREAM", "FILE", "hello-world", ""]
    assert agi_split('VERBOSE "routed to service" 1') == ["VERBOSE", "routed to service", "1"]
    assert agi_split("GET FULL VARIABLE ${CALLERID(num)}") == ["GET", "FULL", "VARIABLE", "${CALLERID(num)}"]
    assert agi_split('X "a\\"b\\\\c"') == ["X", 'a"b\\c']
    assert agi_split("X a\\ b") == ["X", "a b"]
    assert agi_split('X "ab"cd e') == ["X", "abcd", "e"]
    assert agi_split("X\ta  b") == ["X", "a", "b"]


def test_builders_reproduce_the_recorded_wire() -> None:
    """Our builders write exactly what the recordings show Asterisk accepting."""
    assert cmd.set_variable("CC_QUEUE", "service") == b'SET VARIABLE CC_QUEUE "service"\n'
    assert cmd.set_variable("CC_PRIO", 10) == b'SET VARIABLE CC_PRIO "10"\n'
    assert cmd.stream_file("hello-world") == b'STREAM FILE hello-world ""\n'
    assert cmd.get_data("beep", 6000, 1) == b"GET DATA beep 6000 1\n"
    assert cmd.get_data("beep", 10000, 4) == b"GET DATA beep 10000 4\n"
    assert cmd.wait_for_digit(5000) == b"WAIT FOR DIGIT 5000\n"
    assert cmd.get_variable("CALLERID(name)") == b"GET VARIABLE CALLERID(name)\n"
    assert cmd.get_full_variable("${CALLERID(num)}") == b"GET FULL VARIABLE ${CALLERID(num)}\n"
    assert cmd.verbose("routed to service", 1) == b'VERBOSE "routed to service" 1\n'
    assert cmd.command("NOOP", "bad", "command", "test") == b"NOOP bad command test\n"
    assert cmd.channel_status() == b"CHANNEL STATUS\n"
    assert cmd.answer() == b"ANSWER\n"
    assert cmd.command("DATABASE GET") == b"DATABASE GET\n"
    # and every recorded command line is one our builders can express byte for byte
    recorded = {c for p in agi_transcript_paths() for c in load_agi(p).commands}
    built = {
        cmd.set_variable(w[2], w[3]).decode().rstrip("\n")
        for w in (agi_split(c) for c in recorded)
        if w[:2] == ["SET", "VARIABLE"]
    }
    assert built == {c for c in recorded if c.startswith("SET VARIABLE")}


def test_quote_and_arg() -> None:
    assert quote("") == '""'
    assert quote('a"b') == '"a\\"b"'
    assert quote("a\\b") == '"a\\\\b"'
    assert arg("hello-world") == "hello-world"
    assert arg("two words") == '"two words"'
    assert arg("") == '""'
    assert arg("tab\there") == '"tab\there"'
    for bad in ("a\nb", "a\rb", "a\x00b"):
        with pytest.raises(ValueError):
            quote(bad)
        with pytest.raises(ValueError):
            arg(bad)
    with pytest.raises(TypeError):
        quote(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        quote(True)


def test_variable_names() -> None:
    for good in ("CC_QUEUE", "_x", "x1", "CDR(userfield)", "CALLERID(name)", "HASH(a,b)"):
        assert check_name(good) == good
    for bad in ("", "1x", "A B", "A-B", "A\nB", "CDR(x y)", 'CDR("x")', "CDR(x", "${X}", "X=1", "Ä"):
        with pytest.raises(ValueError):
            check_name(bad)
    with pytest.raises(ValueError):
        check_name("CDR(x)", allow_function=False)
    with pytest.raises(ValueError):
        cmd.set_variable("A B", "x")


def test_line_length_limit() -> None:
    # res_agi reads a command into a 2048-byte buffer: the rest of a longer line would run as a new command
    room = MAX_COMMAND_BYTES - len(b'SET VARIABLE X ""\n')
    assert len(cmd.set_variable("X", "a" * room)) == MAX_COMMAND_BYTES
    with pytest.raises(ValueError):
        cmd.set_variable("X", "a" * (room + 1))
    with pytest.raises(ValueError):
        cmd.verbose("\u4e2d" * 700)  # 3 bytes each in UTF-8


HOSTILE_PIECES = [
    "\r",
    "\n",
    "\x00",
    '"',
    "\\",
    " ",
    "\t",
    ",",
    "$",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "=",
    "'",
    ";",
    "|",
    "`",
    "\nEXEC System rm -rf /",
    '"\nEXEC System rm',
    "\\\nEXEC System rm",
    "\r\nHANGUP",
    "${SHELL(rm -rf /)}",
    '\\"',
    '"" ',
    "\u5f20\u4f1f",
    "\u200b",
    "\x1b[2J",
    "x" * 300,
    "a",
    "Zhang Wei",
    "13800138000",
    "-1",
    "",
]


def hostile_values(n: int, seed: int = 20240601) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(HOSTILE_PIECES) for _ in range(rng.randint(1, 6))) for _ in range(n)]


# (builder, index of the value among the words Asterisk will see)
BUILDERS: list[tuple[str, Callable[[str], bytes], int]] = [
    ("set_variable", lambda v: cmd.set_variable("CC_NAME", v), 3),
    ("set_variable_fn", lambda v: cmd.set_variable("CDR(userfield)", v), 3),
    ("verbose", lambda v: cmd.verbose(v, 3), 1),
    ("stream_file", lambda v: cmd.stream_file(v, "#"), 2),
    ("get_data", lambda v: cmd.get_data(v, 5000, 4), 2),
    ("get_full_variable", lambda v: cmd.get_full_variable(v), 3),
    ("database_get_family", lambda v: cmd.database_get(v, "key"), 2),
    ("database_get_key", lambda v: cmd.database_get("cc", v), 3),
    ("exec", lambda v: cmd.exec_("Playback", v), 2),
    ("noop", lambda v: cmd.noop(v), 1),
    ("channel_status", lambda v: cmd.channel_status(v), 2),
    ("hangup", lambda v: cmd.hangup(v), 1),
    ("command", lambda v: cmd.command("SAY ALPHA", v, ""), 2),
]


@pytest.mark.parametrize(("name", "build", "position"), BUILDERS, ids=[b[0] for b in BUILDERS])
def test_hostile_values_never_inject(name: str, build: Callable[[str], bytes], position: int) -> None:
    """10,000 hostile values per builder: ValueError, or exactly one command whose word is the value."""
    refused = accepted = 0
    for value in hostile_values(10_000):
        try:
            data = build(value)
        except ValueError:
            assert any(c in value for c in "\r\n\x00") or len(value.encode()) > 1900, repr(value)
            refused += 1
            continue
        accepted += 1
        assert data.endswith(b"\n") and data.count(b"\n") == 1, data
        assert b"\r" not in data and b"\x00" not in data
        assert len(data) <= MAX_COMMAND_BYTES
        words = agi_split(data[:-1].decode())
        if name == "noop" and value == "":
            continue
        assert words[position] == value, (value, data)
    assert refused and accepted  # the corpus exercises both outcomes


def test_hostile_names_refused() -> None:
    for value in hostile_values(2_000, seed=7):
        with pytest.raises((ValueError, TypeError)):
            if value.isascii() and value.isidentifier():
                raise ValueError("a valid name is not hostile")
            cmd.set_variable(value, "x")
        with pytest.raises(ValueError):
            cmd.exec_(value if not value.isidentifier() else value + " ", "x")


def test_hostile_values_through_set_variables() -> None:
    """The MSet planner: every value either travels in MSet (only when both layers keep it whole) or in its
    own SET VARIABLE; values are never split into extra variables."""
    values = [v for v in hostile_values(10_000, seed=3) if not any(c in v for c in "\r\n\x00") and len(v) < 200]
    mapping = {f"CC_V{i}": v for i, v in enumerate(values[:3000])}
    plan = _plan_set_variables(mapping, use_mset=True)
    seen: dict[str, str] = {}
    for data, pairs in plan:
        assert data.endswith(b"\n") and data.count(b"\n") == 1
        words = agi_split(data[:-1].decode())
        if pairs is None:
            assert words[:2] == ["SET", "VARIABLE"] and len(words) == 4
            seen[words[2]] = words[3]
        else:
            assert words[:2] == ["EXEC", "MSet"] and len(words) == 3
            assert len(pairs) <= 99
            # second layer (MSet): commas split pairs, the first '=' splits name from value
            for pair in words[2].split(","):
                key, _, value = pair.partition("=")
                seen[key] = value
    assert seen == mapping


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("vip", True),
        ("two words", True),
        ("\u5f20\u4f1f", True),
        ("10", True),
        ("", True),
        ("a,b", False),
        ('a"b', False),
        ("a\\b", False),
        (" lead", False),
        ("trail ", False),
        ("x(y", False),
        ("[x]", False),
        ("${X}", False),
        ("a=b", False),
        ("tab\t", False),
    ],
)
def test_mset_safety(value: str, safe: bool) -> None:
    assert mset_safe("CC_X", value) is safe
    assert not mset_safe("CDR(x)", "plain")


def test_mset_plan_falls_back_for_commas() -> None:
    plan = _plan_set_variables({"CC_QUEUE": "vip", "CC_NAME": "Zhang, Wei", "CC_PRIORITY": 10}, use_mset=True)
    assert [d for d, _ in plan] == [
        b'EXEC MSet "CC_QUEUE=vip,CC_PRIORITY=10"\n',
        b'SET VARIABLE CC_NAME "Zhang, Wei"\n',
    ]
    # a lone safe pair is a plain SET VARIABLE (same cost, works on any Asterisk)
    assert [d for d, _ in _plan_set_variables({"CC_QUEUE": "vip"}, True)] == [b'SET VARIABLE CC_QUEUE "vip"\n']
    # MSet disabled: one SET VARIABLE each
    assert len(_plan_set_variables({"A": "1", "B": "2"}, use_mset=False)) == 2


def test_mset_plan_chunks_at_99_pairs_and_line_length() -> None:
    plan = _plan_set_variables({f"V{i}": "x" for i in range(250)}, use_mset=True)
    assert [len(p) for _, p in plan if p] == [99, 99, 52]
    long = {f"LONG{i}": "y" * 500 for i in range(10)}
    plan = _plan_set_variables(long, use_mset=True)
    assert all(len(d) <= MAX_COMMAND_BYTES for d, _ in plan)
    assert sum(len(p) for _, p in plan if p) == 10


def test_set_variables_validates_before_writing() -> None:
    with pytest.raises(ValueError):
        _plan_set_variables({"A": "fine", "B": "bad\nEXEC System rm"}, use_mset=True)
    with pytest.raises(ValueError):
        _plan_set_variables({"A B": "x"}, use_mset=True)


_VALUE_CHARS = "aZ09_.:/@+- ,=\"\\'()[]{}$|\t\u00e9\u5f20"
_ODD_NAMES = ("CDR(userfield)", "A=B", "A,B", "1X", "CC_\u00c9", "A B", "")


class _Shouty(str):
    """A str subclass whose text, when formatted, is not its characters."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return self.upper()

    def __str__(self) -> str:
        return self.upper()


@pytest.mark.parametrize("seed", range(3))
def test_fast_plan_is_the_general_plan(seed: int) -> None:
    """The fast path for plain answers plans byte for byte what the general path plans, for any input it takes,
    and leaves everything else to it (values with MSet-unsafe characters, non-str values, long lines)."""
    rng = random.Random(seed)
    for _ in range(2000):
        count = rng.choice((2, 3, 13, 99, 100))
        plain_only = rng.random() < 0.5
        alphabet = _VALUE_CHARS[:13] if plain_only else _VALUE_CHARS
        variables: dict[str, object] = {
            f"CC_V{i}": "".join(rng.choice(alphabet) for _ in range(rng.choice((0, 1, 5, 30)))) for i in range(count)}
        if rng.random() < 0.1:
            variables["CC_N"] = rng.choice((7, 1.5))
        if rng.random() < 0.05:
            variables["CC_LONG"] = "x" * 1500
        if rng.random() < 0.1:  # a name that is not plain: a function form, or one MSet's splitter would misread
            variables[rng.choice(_ODD_NAMES)] = rng.choice(("x", "", "a,b", "a=b"))
        if rng.random() < 0.05:  # a str subclass: formatted as the general path formats it
            variables["CC_SUB"] = _Shouty(rng.choice(("vip", "a b")))
        for use_mset in (True, False):
            try:
                expected = _plan_general(variables, use_mset)
            except ValueError as exc:
                with pytest.raises(ValueError) as caught:
                    _plan_set_variables(variables, use_mset)
                assert str(caught.value) == str(exc)
                continue
            assert _plan_set_variables(variables, use_mset) == expected
