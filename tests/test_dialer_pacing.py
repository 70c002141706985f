"""The pacing model (ccserver.dialer.pacing) and the simulation through it (ccserver.dialer.simulate), pure."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccserver.dialer.pacing import (
    LiveStats,
    PacingInput,
    PacingSettings,
    _agents_pmf,
    expected_abandon_ratio,
    lines_to_dial,
    target_ratio,
)
from ccserver.dialer.simulate import simulate

HANDLES = sorted([120.0 + 10 * i for i in range(60)])  # 120 … 710 s


def test_preview_never_dials_and_progressive_is_one_line_per_free_agent() -> None:
    assert lines_to_dial(PacingInput("preview", 10, 0)) == 0
    assert lines_to_dial(PacingInput("progressive", 5, 0)) == 5
    assert lines_to_dial(PacingInput("progressive", 5, 3)) == 2
    assert lines_to_dial(PacingInput("progressive", 2, 4)) == 0
    with pytest.raises(ValueError):
        PacingInput("blaster", 1, 0)


def test_predictive_waits_for_enough_samples_then_overdials() -> None:
    few = PacingInput("predictive", 5, 0, answer_rate=0.3, samples=10, handle_times=HANDLES)
    assert lines_to_dial(few) == 5  # progressive until the answer rate is known
    short_history = PacingInput("predictive", 5, 0, answer_rate=0.3, samples=100, handle_times=HANDLES[:5])
    assert lines_to_dial(short_history) == 5  # only short calls have finished yet: not trusted
    known = PacingInput("predictive", 5, 0, answer_rate=0.3, samples=100, handle_times=HANDLES)
    assert lines_to_dial(known) > 5


def test_predictive_more_lines_when_fewer_answer_and_when_agents_are_about_to_finish() -> None:
    def lines(rate: float, busy: tuple[float, ...] = ()) -> int:
        return lines_to_dial(PacingInput("predictive", 3, 0, busy, rate, 200, 15.0, HANDLES))
    assert lines(0.15) > lines(0.3) > lines(0.6)
    assert lines(0.3, (700.0,) * 5) > lines(0.3, (10.0,) * 5)  # long calls near the end free agents soon


def test_abandon_feedback_pulls_back_to_progressive_at_the_cap() -> None:
    s = PacingSettings(abandon_cap=0.03, aim=0.5)
    assert target_ratio(0.0, s) == 0.03 and target_ratio(0.015, s) == pytest.approx(0.015)
    assert target_ratio(0.03, s) == 0.0 and target_ratio(0.2, s) == 0.0
    base = {"busy_elapsed": (30.0,) * 10, "answer_rate": 0.3, "samples": 200, "handle_times": HANDLES}
    calm = lines_to_dial(PacingInput("predictive", 4, 0, abandon_rate=0.0, **base), s)  # type: ignore[arg-type]
    hot = lines_to_dial(PacingInput("predictive", 4, 0, abandon_rate=0.05, **base), s)  # type: ignore[arg-type]
    assert calm > hot
    assert hot <= 4  # target 0: never more lines than agents certainly free


def test_no_free_agent_and_nobody_finishing_means_no_dial() -> None:
    state = PacingInput("predictive", 0, 0, (1.0,) * 5, 0.3, 200, 15.0, sorted([900.0] * 50))
    assert lines_to_dial(state) == 0


@settings(max_examples=200, deadline=None)
@given(free=st.integers(0, 30), in_flight=st.integers(0, 40), rate=st.floats(0.01, 1.0),
       busy=st.lists(st.floats(0, 2000), max_size=30), observed=st.floats(0, 0.2))
def test_property_predictive_stays_within_its_target(free: int, in_flight: int, rate: float, busy: list[float],
                                                     observed: float) -> None:
    s = PacingSettings()
    state = PacingInput("predictive", free, in_flight, tuple(busy), rate, 500, 15.0, HANDLES, observed)
    new = lines_to_dial(state, s)
    assert new >= 0
    assert in_flight + new <= max(in_flight, int(s.max_lines_per_agent * (free + len(busy))))
    if new:
        from ccserver.dialer.pacing import _done_within
        pmf = _agents_pmf(free, [_done_within(HANDLES, e, 15.0) for e in busy])
        assert expected_abandon_ratio(in_flight + new, rate, pmf) <= target_ratio(observed, s) + 1e-12


def test_live_stats_rolling_figures() -> None:
    stats = LiveStats(results=4, handles=3, window=100.0)
    assert stats.answer_rate is None and stats.abandon_rate(0) == 0.0
    for answered, ring in [(True, 10.0), (False, 0.0), (False, 0.0), (True, 20.0), (True, 30.0)]:
        stats.result(answered, ring)
    assert stats.samples == 4 and stats.answer_rate == 0.5 and stats.ring_time == 25.0
    for h in (300.0, 100.0, 200.0, 50.0):
        stats.handled(h)
    assert stats.handle_times == [50.0, 100.0, 200.0]  # the oldest (300) left the window, sorted kept
    stats.answered(0.0, True)
    stats.answered(50.0, False)
    assert stats.abandon_rate(50.0) == 0.5
    assert stats.abandon_rate(100.0) == 0.0  # the abandon at t=0 left the 100 s window


@pytest.mark.slow
def test_simulation_predictive_beats_progressive_within_the_abandon_cap() -> None:
    progressive = simulate(agents=20, answer_rate=0.3, hours=4, mode="progressive", seed=11)
    predictive = simulate(agents=20, answer_rate=0.3, hours=4, mode="predictive", seed=11)
    assert progressive.abandon_rate == 0.0  # one line per free agent never leaves a callee waiting long
    assert predictive.occupancy >= 0.80 and predictive.abandon_rate <= 0.03
    assert predictive.occupancy > progressive.occupancy + 0.04
    again = simulate(agents=20, answer_rate=0.3, hours=4, mode="predictive", seed=11)
    assert again == predictive  # deterministic for a seed


def test_cli_simulate_prints_both_modes_and_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from ccserver.cli import main

    assert main(["dialer", "simulate", "--agents", "5", "--hours", "0.5", "--seed", "3", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["mode"] for r in rows] == ["progressive", "predictive"]
    assert all(0.0 <= r["occupancy"] <= 1.0 and r["agents"] == 5 for r in rows)
    assert main(["dialer", "simulate", "--mode", "progressive", "--hours", "0.2"]) == 0
    assert capsys.readouterr().out.startswith("progressive  agents=20 hours=0.2 ")
    for bad in (["--answer-rate", "0"], ["--agents", "x"], ["--mode", "blast"]):
        with pytest.raises(SystemExit) as exc:
            main(["dialer", "simulate", *bad])
        assert exc.value.code == 2
    assert "--answer-rate" in capsys.readouterr().err
