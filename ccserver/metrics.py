"""A small Prometheus text-format registry: counters, gauges and histograms.

Kept in-process and lock-free: everything runs on the one event loop, and the few updates made from
worker threads are plain int/float adds, which is fine for monitoring figures.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping

LabelKey = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels_text(labels: LabelKey, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _fmt(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str):
        self.name = name
        self.help = help_text

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str):
        super().__init__(name, help_text)
        self.values: dict[LabelKey, float] = {(): 0.0}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        # Per-call hot paths (every FastAGI session, every AMI message) use the unlabelled series: skip sorting.
        key = tuple(sorted(labels.items())) if labels else ()
        self.values[key] = self.values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def lines(self) -> list[str]:
        shown = {k: v for k, v in self.values.items() if k or len(self.values) == 1}
        return [f"{self.name}{_labels_text(k)} {_fmt(v)}" for k, v in shown.items()]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] = float(value)


class SampledGauge(_Metric):
    """A gauge read when /metrics is rendered: ``sample()`` returns ``{labels: value}`` (nothing on a hot path)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, sample: Callable[[], Mapping[LabelKey, float]]):
        super().__init__(name, help_text)
        self.sample = sample

    def lines(self) -> list[str]:
        values = dict(self.sample()) or {(): 0.0}
        return [f"{self.name}{_labels_text(k)} {_fmt(v)}" for k, v in values.items()]


DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float] = DEFAULT_BUCKETS):
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets)) + (math.inf,)
        self.counts = [0] * len(self.buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        if value == value:  # NaN fits no bucket (bisect would put it in the first)
            self.counts[bisect_left(self.buckets, value)] += 1

    def lines(self) -> list[str]:
        out = []
        running = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            out.append(f'{self.name}_bucket{{le="{_fmt(bound)}"}} {running}')
        out.append(f"{self.name}_sum {_fmt(self.sum)}")
        out.append(f"{self.name}_count {self.count}")
        return out


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: _Metric) -> _Metric:
        existing = self._metrics.get(metric.name)
        if existing is not None:
            if type(existing) is not type(metric):
                raise ValueError(f"metric {metric.name} already registered as {existing.kind}")
            return existing
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help_text: str) -> Counter:
        return self._add(Counter(name, help_text))  # type: ignore[return-value]

    def gauge(self, name: str, help_text: str) -> Gauge:
        return self._add(Gauge(name, help_text))  # type: ignore[return-value]

    def sampled_gauge(self, name: str, help_text: str, sample: Callable[[], Mapping[LabelKey, float]]) -> SampledGauge:
        return self._add(SampledGauge(name, help_text, sample))  # type: ignore[return-value]

    def histogram(self, name: str, help_text: str, buckets: Iterable[float] = DEFAULT_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help_text, buckets))  # type: ignore[return-value]

    def render(self, names: Iterable[str] | None = None) -> str:
        """The text format of every metric, or of those named (unknown names are left out)."""
        out: list[str] = []
        chosen = self._metrics.values() if names is None else [m for n in dict.fromkeys(names)
                                                                if (m := self._metrics.get(n)) is not None]
        for metric in chosen:
            out.extend(metric.header())
            out.extend(metric.lines())
        return "\n".join(out) + "\n"


# The process-wide registry that /metrics renders.
REGISTRY = Registry()
