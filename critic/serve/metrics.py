"""Prometheus metrics in its text format, with no dependency: counters, a gauge and histograms.

Requests and items by outcome, batch sizes, queue depth, latencies; ``GET /metrics`` renders them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

Labels = tuple[tuple[str, str], ...]


class Counter:
    def __init__(self, name: str, help: str) -> None:
        self.name, self.help = name, help
        self._values: dict[Labels, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_labels(key)} {_number(value)}" for key, value in sorted(self._values.items())]
        return lines


class Gauge:
    def __init__(self, name: str, help: str) -> None:
        self.name, self.help = name, help
        self._value = 0.0

    def set(self, value: float) -> None:
        self._value = float(value)

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge", f"{self.name} {_number(self._value)}"]


class Histogram:
    def __init__(self, name: str, help: str, buckets: Sequence[float]) -> None:
        self.name, self.help = name, help
        self.buckets = tuple(buckets)
        self._series: dict[Labels, list[float]] = {}  # bucket counts..., +Inf count, sum
        self._lock = threading.Lock()

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    series[index] += 1
            series[-2] += 1
            series[-1] += value

    def count(self, **labels: str) -> int:
        series = self._series.get(tuple(sorted(labels.items())))
        return 0 if series is None else int(series[-2])

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, series in sorted(self._series.items()):
            for bound, count in zip(self.buckets, series, strict=False):
                lines.append(f"{self.name}_bucket{_labels(key + (('le', _number(bound)),))} {_number(count)}")
            lines.append(f"{self.name}_bucket{_labels(key + (('le', '+Inf'),))} {_number(series[-2])}")
            lines.append(f"{self.name}_sum{_labels(key)} {series[-1]!r}")
            lines.append(f"{self.name}_count{_labels(key)} {_number(series[-2])}")
        return lines


class Metrics:
    """Everything the server counts."""

    def __init__(self) -> None:
        self.requests = Counter("critic_requests_total", "HTTP requests by endpoint and outcome")
        self.items = Counter("critic_items_total", "pairs or conversations by endpoint and outcome (ok, failed)")
        self.queue_depth = Gauge("critic_queue_depth", "requests waiting for the judge")
        self.batch_items = Histogram("critic_batch_items", "items per judge call", SIZE_BUCKETS)
        self.batch_seconds = Histogram("critic_batch_seconds", "seconds per judge call", LATENCY_BUCKETS)
        self.latency = Histogram("critic_request_seconds", "request latency in seconds by endpoint",
                                 LATENCY_BUCKETS)

    def render(self) -> str:
        parts = (self.requests, self.items, self.queue_depth, self.batch_items, self.batch_seconds, self.latency)
        return "\n".join(line for part in parts for line in part.render()) + "\n"


def _labels(key: Labels) -> str:
    if not key:
        return ""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, value in key)
    return "{" + ",".join(f'{name}="{value}"' for (name, _), value in zip(key, escaped, strict=True)) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
