"""What one load window measured: :class:`LoadResult`, built by :func:`summarize` from a
finished :class:`~.timeline.Timeline`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import outcomes
from .load.stats import spectrum, summary_ms

if TYPE_CHECKING:
    from .timeline import Timeline

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
    width = timeline.clock.wall(BUCKET)
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


def summarize(timeline: Timeline, target_rate: float) -> LoadResult:
    """Turn a finished timeline into a result.

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
        duration=timeline.clock.test(real_duration),
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
    return result
