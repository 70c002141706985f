"""The Prometheus registry: text format, labels, histogram buckets."""

from __future__ import annotations

import math

from ccserver.metrics import Registry


def test_counter_gauge_and_labels_render():
    reg = Registry()
    calls = reg.counter("x_calls_total", "calls")
    calls.inc()
    calls.inc(2)
    errors = reg.counter("x_errors_total", "errors")
    errors.inc(server="pbx-a")
    errors.inc(server='we"ird\n')
    up = reg.gauge("x_up", "up")
    up.set(1, server="pbx-a")
    text = reg.render()
    assert "# TYPE x_calls_total counter\nx_calls_total 3\n" in text
    assert 'x_errors_total{server="pbx-a"} 1' in text
    assert 'x_errors_total{server="we\\"ird\\n"} 1' in text
    assert 'x_up{server="pbx-a"} 1' in text
    assert calls.value() == 3 and errors.value(server="pbx-a") == 1


def test_render_only_the_families_named():
    reg = Registry()
    reg.counter("x_a_total", "a").inc(server="s1")
    reg.gauge("x_b", "b").set(2)
    reg.counter("x_c_total", "c").inc()
    text = reg.render(["x_c_total", "x_a_total", "x_nope", "x_a_total"])
    assert text == ('# HELP x_c_total c\n# TYPE x_c_total counter\nx_c_total 1\n'
                    '# HELP x_a_total a\n# TYPE x_a_total counter\nx_a_total{server="s1"} 1\n')
    assert reg.render([]) == "\n" and "x_b 2" in reg.render()


def test_histogram_buckets_are_cumulative_and_bounds_inclusive():
    reg = Registry()
    hist = reg.histogram("x_seconds", "time", buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 5.0, math.nan):
        hist.observe(value)
    lines = reg.render().splitlines()
    assert 'x_seconds_bucket{le="0.1"} 2' in lines
    assert 'x_seconds_bucket{le="1"} 4' in lines
    assert 'x_seconds_bucket{le="+Inf"} 5' in lines  # NaN counted in _count but in no bucket
    assert "x_seconds_count 6" in lines


def test_re_registering_returns_the_same_metric():
    reg = Registry()
    assert reg.counter("a_total", "a") is reg.counter("a_total", "a")
