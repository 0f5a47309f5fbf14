"""One test's clock: request records, chaos and cluster events, and what they add up to.

The load thread appends request records, the chaos scheduler and the backend append events,
all stamped with ``time.monotonic()`` (one clock for every process on the machine, so the
simulator's events line up with the load generator's records). :func:`summarize` turns the
lot into a :class:`LoadResult`, and :func:`judge` into the list of SLO violations.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import Counter
from dataclasses import dataclass, field

from . import outcomes
from .settings import SLOSpec

# Failures closer together than this (in test seconds) belong to one error window.
ERROR_WINDOW_GAP = 1.0
# A request sent later than this after its scheduled time counts as sent late.
LATE_SEND_THRESHOLD = 0.050
# The generator "held the rate" if it sent at least this share of what was scheduled, on time.
RATE_TOLERANCE = 0.01


class RequestLog:
    """Columnar request records: one array per field, not one Python object per request."""

    def __init__(self) -> None:
        self.intended = array("d")  # when the schedule said to send (monotonic seconds)
        self.sent = array("d")  # when it was actually sent
        self.end = array("d")  # when the response (or the failure) arrived
        self.outcome = array("h")  # HTTP status, or a negative outcomes.* code
        self.pod = array("h")  # index into pod_names, -1 when unknown
        self.pod_names: list[str] = []
        self._pod_index: dict[str, int] = {}

    def add(self, intended: float, sent: float, end: float, outcome: int, pod: str | None) -> None:
        if pod is None:
            index = -1
        elif (index := self._pod_index.get(pod, -1)) < 0:
            index = self._pod_index[pod] = len(self.pod_names)
            self.pod_names.append(pod)
        self.intended.append(intended)
        self.sent.append(sent)
        self.end.append(end)
        self.outcome.append(outcome)
        self.pod.append(index)

    def __len__(self) -> int:
        return len(self.outcome)


@dataclass(frozen=True)
class Event:
    """Something that happened during the test, ``at`` seconds (test time) from load start."""

    at: float
    source: str  # "chaos", "cluster", "alb", "kube-proxy", "load"
    kind: str  # machine-readable, e.g. "pod.deleted", "target.deregistered"
    subject: str  # the pod, target or node it is about
    message: str  # one human-readable line


@dataclass(frozen=True)
class ErrorWindow:
    """A run of failed requests: first and last failure, by scheduled send time."""

    start: float
    end: float
    count: int
    by_outcome: dict[str, int]


@dataclass(frozen=True)
class LoadResult:
    """What one load window measured. Times are test seconds from load start."""

    requests: int  # requests sent and finished (success or failure)
    errors: int  # non-2xx responses and transport failures
    by_outcome: dict[str, int]  # "200" -> 1270, "502" -> 20, "timeout" -> 286
    target_rate: float  # requests per second asked for
    achieved_rate: float  # requests per second actually sent
    duration: float  # length of the load window
    latency: dict[str, float]  # ms from the scheduled send: p50, p90, p99, max, mean, stdev
    send_lag: dict[str, float]  # ms from scheduled to actual send: p50, p99, max
    late: int  # requests sent more than LATE_SEND_THRESHOLD after their scheduled time
    not_sent: int  # requests the schedule asked for that never went out
    error_windows: list[ErrorWindow]
    events: list[Event]
    per_pod: dict[str, int]  # serving pod -> successful responses
    time_scale: float = 1.0
    violations: list[str] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def held_rate(self) -> bool:
        """Did the generator send what it promised, when it promised?"""
        scheduled = self.requests + self.not_sent
        if scheduled == 0:
            return False
        return (self.not_sent + self.late) <= RATE_TOLERANCE * scheduled


class Timeline:
    """Thread-safe collector for one test's records and events."""

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale
        self.requests = RequestLog()
        self.load_start: float | None = None
        self.load_end: float | None = None
        self.not_sent = 0
        self._events: list[tuple[float, str, str, str, str]] = []
        self._lock = threading.Lock()

    def record(self, t: float, source: str, kind: str, subject: str, message: str) -> None:
        with self._lock:
            self._events.append((t, source, kind, subject, message))

    def offset(self, t: float) -> float:
        """Monotonic time -> test seconds from load start."""
        start = self.load_start if self.load_start is not None else 0.0
        return (t - start) / self.time_scale

    def events(self) -> list[Event]:
        with self._lock:
            raw = sorted(self._events, key=lambda event: event[0])  # stable: same-time order kept
        return [Event(self.offset(t), *rest) for t, *rest in raw]


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile, as wrk2 and HdrHistogram report them."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _distribution(values_ms: list[float], quantiles: dict[str, float]) -> dict[str, float]:
    values_ms.sort()
    figures = {name: _percentile(values_ms, q) for name, q in quantiles.items()}
    figures["max"] = values_ms[-1] if values_ms else 0.0
    return figures


def _error_windows(timeline: Timeline, failed: list[int]) -> list[ErrorWindow]:
    log = timeline.requests
    failed.sort(key=lambda i: log.intended[i])
    windows: list[ErrorWindow] = []
    group: list[int] = []
    for i in failed:
        if group and timeline.offset(log.intended[i]) - timeline.offset(
                log.intended[group[-1]]) > ERROR_WINDOW_GAP:
            windows.append(_window(timeline, group))
            group = []
        group.append(i)
    if group:
        windows.append(_window(timeline, group))
    return windows


def _window(timeline: Timeline, group: list[int]) -> ErrorWindow:
    log = timeline.requests
    kinds = Counter(outcomes.label(log.outcome[i]) for i in group)
    return ErrorWindow(
        start=timeline.offset(log.intended[group[0]]),
        end=timeline.offset(log.intended[group[-1]]),
        count=len(group),
        by_outcome=dict(kinds.most_common()),
    )


def summarize(timeline: Timeline, target_rate: float, slo: SLOSpec | None = None) -> LoadResult:
    """Turn a finished timeline into a result; with ``slo``, also list its violations."""
    log = timeline.requests
    count = len(log)
    by_outcome: Counter[str] = Counter()
    per_pod: Counter[str] = Counter()
    failed: list[int] = []
    latency_ms: list[float] = []
    lag_ms: list[float] = []
    late = 0
    for i in range(count):
        code = log.outcome[i]
        by_outcome[outcomes.label(code)] += 1
        if outcomes.is_success(code):
            if log.pod[i] >= 0:
                per_pod[log.pod_names[log.pod[i]]] += 1
        else:
            failed.append(i)
        latency_ms.append((log.end[i] - log.intended[i]) * 1000)
        lag = log.sent[i] - log.intended[i]
        lag_ms.append(lag * 1000)
        late += lag > LATE_SEND_THRESHOLD
    mean = sum(latency_ms) / count if count else 0.0
    stdev = math.sqrt(sum((x - mean) ** 2 for x in latency_ms) / count) if count else 0.0
    latency = _distribution(latency_ms, {"p50": 0.5, "p90": 0.9, "p99": 0.99})
    latency.update(mean=mean, stdev=stdev)
    start, end = timeline.load_start, timeline.load_end
    real_duration = (end - start) if start is not None and end is not None else 0.0
    result = LoadResult(
        requests=count,
        errors=len(failed),
        by_outcome=dict(sorted(by_outcome.items())),
        target_rate=target_rate,
        achieved_rate=count / real_duration if real_duration > 0 else 0.0,
        duration=real_duration / timeline.time_scale,
        latency=latency,
        send_lag=_distribution(lag_ms, {"p50": 0.5, "p99": 0.99}),
        late=late,
        not_sent=timeline.not_sent,
        error_windows=_error_windows(timeline, failed),
        events=timeline.events(),
        per_pod=dict(sorted(per_pod.items())),
        time_scale=timeline.time_scale,
    )
    if slo is not None:
        result.violations.extend(judge(result, slo))
    return result


def judge(result: LoadResult, slo: SLOSpec) -> list[str]:
    """Every way ``result`` breaks ``slo``, one sentence each. Empty means the test passes."""
    violations = []
    if result.requests == 0:
        violations.append("no request was sent: the load window was empty")
        return violations
    if not result.held_rate:
        violations.append(
            f"the load generator could not hold the rate: {result.not_sent} requests not sent "
            f"and {result.late} sent more than {LATE_SEND_THRESHOLD * 1000:g} ms late out of "
            f"{result.requests + result.not_sent} scheduled; the verdict on the ingress is void"
        )
    counted = result.errors - sum(
        n for name, n in result.by_outcome.items() if name in slo.ignore)
    ignored = f" (not counting {', '.join(slo.ignore)})" if slo.ignore else ""
    if slo.max_errors is not None and counted > slo.max_errors:
        violations.append(
            f"{counted} of {result.requests} requests failed{ignored}; "
            f"ingress_slo allows max_errors={slo.max_errors}"
        )
    if slo.max_error_rate is not None and counted / result.requests > slo.max_error_rate:
        violations.append(
            f"error rate {counted / result.requests:.2%}{ignored} is above "
            f"ingress_slo max_error_rate={slo.max_error_rate:g}"
        )
    if slo.p99 is not None and result.latency["p99"] > slo.p99 * 1000:
        violations.append(
            f"p99 latency {result.latency['p99']:.1f} ms is above ingress_slo "
            f"p99={slo.p99 * 1000:g} ms"
        )
    return violations
