"""One test's clock: request records, chaos and cluster events, and what they add up to.

The load thread appends request records, the chaos scheduler and the backend append events,
all stamped with ``time.monotonic()`` (one clock for every process on the machine, so the
simulator's events line up with the load generator's records). :func:`summarize` turns the
lot into a :class:`LoadResult`, and :func:`judge` into the list of SLO violations.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from . import outcomes
from .records import LATE_SEND_THRESHOLD, RequestLog
from .settings import SLOSpec
from .stats import spectrum, summary_ms

BUCKET = 0.1  # seconds of test time per bucket of the request-rate timeline
# Failures closer together than this (in test seconds) belong to one error window.
ERROR_WINDOW_GAP = 1.0
# The generator "held the rate" if it sent at least this share of what was scheduled, on time.
RATE_TOLERANCE = 0.01


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
    # ms from the scheduled send (corrected for coordinated omission, as wrk2 reports):
    # p50, p75, p90, p99, p99.9, p99.99, max, mean, stdev
    latency: dict[str, float]
    latency_uncorrected: dict[str, float]  # the same from the actual send (wrk2 -U)
    send_lag: dict[str, float]  # ms from scheduled to actual send: p50, p90, p99, p99.9, max
    late: int  # requests sent more than LATE_SEND_THRESHOLD after their scheduled time
    not_sent: int  # requests the schedule asked for that never went out
    error_windows: list[ErrorWindow]
    events: list[Event]
    per_pod: dict[str, int]  # serving pod -> successful responses
    buckets: list[dict[str, float | int]] = field(default_factory=list)  # per BUCKET seconds
    latency_spectrum: list[dict[str, Any]] = field(default_factory=list)  # wrk2's spectrum
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


def _buckets(timeline: Timeline) -> list[dict[str, float | int]]:
    """Requests per BUCKET seconds of test time, by scheduled send: ``at``, ``ok``, ``errors``."""
    log = timeline.requests
    if not log or timeline.load_start is None:
        return []
    width = BUCKET * timeline.time_scale
    start = timeline.load_start
    ok: Counter[int] = Counter()
    failed: Counter[int] = Counter()
    for intended, code in zip(log.intended, log.outcome, strict=True):
        # Scheduled times fall exactly on bucket edges (i / rate): the epsilon keeps float
        # error from moving them into the bucket before.
        (ok if outcomes.is_success(code) else failed)[int((intended - start) / width + 1e-6)] += 1
    last = max(max(ok, default=0), max(failed, default=0))
    return [{"at": round(i * BUCKET, 3), "ok": ok[i], "errors": failed[i]}
            for i in range(min(ok.keys() | failed.keys(), default=0), last + 1)]


def summarize(timeline: Timeline, target_rate: float, slo: SLOSpec | None = None) -> LoadResult:
    """Turn a finished timeline into a result; with ``slo``, also list its violations.

    One pass over the outcome column at C speed (Counter over arrays); percentiles come from the
    histograms the log filled as requests finished.
    """
    log = timeline.requests
    count = len(log)
    codes = Counter(log.outcome)
    # HTTP statuses first, in order, then transport failures.
    by_outcome = {outcomes.label(code): codes[code]
                  for code in sorted(codes, key=lambda code: (code < 0, abs(code)))}
    served = Counter(pod for code, pod in zip(log.outcome, log.pod, strict=True)
                     if pod >= 0 and outcomes.is_success(code))
    failed = [i for i, code in enumerate(log.outcome) if not outcomes.is_success(code)]
    start, end = timeline.load_start, timeline.load_end
    real_duration = (end - start) if start is not None and end is not None else 0.0
    # Only what went out inside the window counts toward the rate: a generator that fell
    # behind and sent the rest afterwards did not achieve the rate.
    in_window = sum(1 for sent in log.sent if sent <= end) if end is not None else 0
    lag = summary_ms(log.send_lag)
    result = LoadResult(
        requests=count,
        errors=len(failed),
        by_outcome=by_outcome,
        target_rate=target_rate,
        achieved_rate=in_window / real_duration if real_duration > 0 else 0.0,
        duration=real_duration / timeline.time_scale,
        latency=summary_ms(log.corrected),
        latency_uncorrected=summary_ms(log.uncorrected),
        send_lag={name: lag[name] for name in ("p50", "p90", "p99", "p99.9", "max")},
        late=log.late,
        not_sent=timeline.not_sent,
        error_windows=_error_windows(timeline, failed),
        events=timeline.events(),
        per_pod=dict(sorted((log.pod_names[i], n) for i, n in served.items())),
        buckets=_buckets(timeline),
        latency_spectrum=spectrum(log.corrected),
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
