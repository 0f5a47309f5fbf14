"""What one load window measured: :class:`LoadResult`, built by :func:`summarize` from a
finished :class:`~.timeline.Timeline`.

Errors are sorted by who can be blamed for them. Failures of the machine running the tests
(``outcomes.RUNNER_SIDE``: a DNS failure, no file descriptors left, requests the generator never
sent or abandoned) are never errors of the ingress. Timeouts of requests whose life overlapped
a stall of the load generator's own loop are *not certified*: the answer may have come while
the generator could not read it. Everything else the ingress answered, or failed to, counts.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..base import outcomes
from ..base.events import Event
from .disruption import Disruption, chaos_actions, measure
from .load.stats import spectrum, summary_ms

if TYPE_CHECKING:
    from .timeline import Timeline

BUCKET = 0.1  # seconds of test time per bucket of the request-rate timeline
# Failures closer together than this (in test seconds) belong to one error window.
ERROR_WINDOW_GAP = 1.0
# The generator "held the rate" if at most this share of the schedule was late or not sent.
RATE_TOLERANCE = 0.01
# Outcomes a stalled generator can cause itself: its timer fired, the answer was unread.
_STALL_PRONE = frozenset({outcomes.TIMEOUT})


@dataclass(frozen=True)
class ErrorWindow:
    """A run of failed requests: first and last failure, by scheduled send time.
    ``recovered`` is False when the errors were still going when the window ended."""

    start: float
    end: float
    count: int
    by_outcome: dict[str, int]
    recovered: bool = True


@dataclass(frozen=True)
class Stall:
    """A stretch (test seconds from load start) in which the load generator could not run on
    time; errors in it cannot be blamed on the ingress."""

    start: float
    end: float


@dataclass(frozen=True)
class LoadResult:
    """What one load window measured. Times are test seconds from load start."""

    requests: int  # requests sent and finished (success or failure)
    errors: int  # failures charged to the ingress: non-2xx, timeouts, refused, reset...
    by_outcome: dict[str, int]  # "200" -> 1270, "502" -> 20, "timeout" -> 286
    target_rate: float  # requests per second asked for
    achieved_rate: float  # requests per second actually sent inside the window
    duration: float  # length of the load window
    # ms from the scheduled send (corrected for coordinated omission, as wrk2 reports):
    # p50, p75, p90, p99, p99.9, p99.99, max, mean, stdev
    latency: dict[str, float]
    latency_uncorrected: dict[str, float]  # the same from the actual send (wrk2 -U)
    send_lag: dict[str, float]  # ms the generator itself was late: p50, p90, p99, p99.9, max
    late: int  # requests the generator handed out more than 50 ms after their time
    not_sent: int  # requests the schedule asked for that never went out
    error_windows: list[ErrorWindow]
    events: list[Event]
    per_pod: dict[str, int]  # serving pod -> successful responses
    # ms a request waited for a connection once the cap was reached: p50, p90, p99, max
    connection_wait: dict[str, float] = field(default_factory=dict)
    waited_for_connection: int = 0  # requests that waited more than 50 ms for a connection
    max_connections: int = 0  # the connection cap (all load processes together)
    max_connections_reason: str = ""  # "rate x timeout", "max_connections", the fd limit
    peak_connections: int = 0  # the most connections open at once
    runner_errors: int = 0  # failures of the machine running the tests, not of the ingress
    uncertified: int = 0  # errors in stretches where the generator stalled
    uncertified_by_outcome: dict[str, int] = field(default_factory=dict)
    stalls: list[Stall] = field(default_factory=list)
    buckets: list[dict[str, Any]] = field(default_factory=list)  # per BUCKET seconds: _buckets
    disruptions: list[Disruption] = field(default_factory=list)  # one per chaos action
    latency_spectrum: list[dict[str, Any]] = field(default_factory=list)  # wrk2's spectrum
    time_scale: float = 1.0
    verdict: str = outcomes.VerdictKind.PASS.value  # a VerdictKind value, a plain str
    violations: list[str] = field(default_factory=list)
    # Ctrl-C ended the window early: the figures are what was measured until then, and there
    # is no verdict (verdict "interrupted"): the chaos may not have run, nor the ALB recovered.
    interrupted: bool = False

    @property
    def longest_disruption(self) -> Disruption | None:
        return max(self.disruptions, key=lambda d: d.length, default=None)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def scheduled(self) -> int:
        return self.requests + self.not_sent

    @property
    def generator_shortfall(self) -> int:
        """Requests the generator itself did not send on time: late, waiting for a connection
        at the cap, or not sent at all."""
        return self.late + self.waited_for_connection + self.not_sent

    @property
    def held_rate(self) -> bool:
        """Did the generator send what it promised, when it promised?"""
        if self.scheduled == 0:
            return False
        return self.generator_shortfall <= RATE_TOLERANCE * self.scheduled


def _merge_stalls(stalls: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(stalls):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _overlaps(stalls: list[tuple[float, float]], starts: list[float], begin: float,
              end: float) -> bool:
    """Does [begin, end] overlap one of the merged, sorted ``stalls``?"""
    i = bisect.bisect_right(starts, end) - 1
    return i >= 0 and stalls[i][1] >= begin


def _error_windows(timeline: Timeline, failed: list[int], last_success: float | None
                   ) -> list[ErrorWindow]:
    log = timeline.requests
    failed = sorted(failed, key=lambda i: log.intended[i])
    groups: list[list[int]] = []
    for i in failed:
        if groups and timeline.offset(log.intended[i]) - timeline.offset(
                log.intended[groups[-1][-1]]) <= ERROR_WINDOW_GAP:
            groups[-1].append(i)
        else:
            groups.append([i])
    windows = []
    for group in groups:
        kinds = Counter(outcomes.label(log.outcome[i]) for i in group)
        last = log.intended[group[-1]]
        windows.append(ErrorWindow(
            start=timeline.offset(log.intended[group[0]]),
            end=timeline.offset(last),
            count=len(group),
            by_outcome=dict(kinds.most_common()),
            recovered=last_success is not None and last_success > last,
        ))
    return windows


def _buckets(timeline: Timeline) -> list[dict[str, Any]]:
    """Requests per BUCKET seconds of test time, by scheduled send: ``at`` (the bucket's start),
    ``ok``, ``errors`` (failures charged to the ingress), ``outcomes`` (every outcome label,
    runner-side ones included) and ``latency_ms`` (p50, p90, p99, max from the scheduled send of
    the bucket's requests the ingress answered or failed; empty when it has none)."""
    log = timeline.requests
    if not log or timeline.load_start is None:
        return []
    width = timeline.clock.wall(BUCKET)
    start = timeline.load_start
    counts: dict[int, Counter[int]] = {}
    # float32 is plenty for a latency and halves the memory of an hour at 1,000/s.
    latencies: dict[int, array[float]] = {}
    for intended, end, code in zip(log.intended, log.end, log.outcome, strict=True):
        # Scheduled times fall exactly on bucket edges (i / rate): the epsilon keeps float
        # error from moving them into the bucket before.
        index = int((intended - start) / width + 1e-6)
        counts.setdefault(index, Counter())[code] += 1
        if code not in outcomes.RUNNER_SIDE:
            latencies.setdefault(index, array("f")).append(end - intended)
    buckets = []
    for index in range(min(counts), max(counts) + 1):
        codes = counts.get(index, Counter())
        ok = sum(n for code, n in codes.items() if outcomes.is_success(code))
        charged = sum(n for code, n in codes.items() if code not in outcomes.RUNNER_SIDE)
        buckets.append({
            "at": round(index * BUCKET, 3), "ok": ok, "errors": charged - ok,
            "outcomes": {outcomes.label(code): codes[code] for code in _in_report_order(codes)},
            "latency_ms": _percentiles_ms(latencies.get(index)),
        })
    return buckets


def _in_report_order(codes: Counter[int]) -> list[int]:
    """HTTP statuses first, in order, then transport failures."""
    return sorted(codes, key=lambda code: (code < 0, abs(code)))


def _percentiles_ms(seconds: array[float] | None) -> dict[str, float]:
    """Nearest-rank percentiles in ms (wall-clock, as every latency in the result)."""
    if not seconds:
        return {}
    ordered = sorted(seconds)
    return {name: round(ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000, 3)
            for name, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))} | {
        "max": round(ordered[-1] * 1000, 3)}


def _disruptions(timeline: Timeline, events: list[Event], uncertified: set[int],
                 ignore: frozenset[str], target_rate: float, recovered_after: int
                 ) -> list[Disruption]:
    actions = chaos_actions(events)
    if not actions:
        return []
    log = timeline.requests
    order = sorted(range(len(log)), key=log.intended.__getitem__)
    verdicts: list[bool | None] = []
    for i in order:
        code = log.outcome[i]
        if outcomes.is_success(code):
            verdicts.append(True)
        elif code in outcomes.RUNNER_SIDE or i in uncertified or outcomes.label(code) in ignore:
            verdicts.append(None)
        else:
            verdicts.append(False)
    return measure(actions, [timeline.offset(log.intended[i]) for i in order], verdicts,
                   [log.outcome[i] for i in order], timeline.clock.test(1 / target_rate),
                   recovered_after, events)


def summarize(timeline: Timeline, target_rate: float, *, ignore: Collection[str] = (),
              recovered_after: int = 10) -> LoadResult:
    """Turn a finished timeline into a result (the verdict is ``verdict.judge``'s).

    ``ignore`` and ``recovered_after`` are the SLO's: outcomes that disrupt nothing, and the
    consecutive successes that end a disruption. ``target_rate`` is per wall-clock second.

    One pass over the outcome column at C speed (Counter over arrays); percentiles come from the
    histograms the log filled as requests finished.
    """
    log = timeline.requests
    log.digest()
    codes = Counter(log.outcome)
    # HTTP statuses first, in order, then transport failures.
    by_outcome = {outcomes.label(code): codes[code] for code in _in_report_order(codes)}
    served = Counter(pod for code, pod in zip(log.outcome, log.pod, strict=True)
                     if pod >= 0 and outcomes.is_success(code))
    failed = [i for i, code in enumerate(log.outcome)
              if not outcomes.is_success(code) and code not in outcomes.RUNNER_SIDE]
    runner = sum(codes[code] for code in outcomes.RUNNER_SIDE)
    stalls = _merge_stalls(log.stalls)
    starts = [start for start, _ in stalls]
    doubtful = {i for i in failed if log.outcome[i] in _STALL_PRONE
                and _overlaps(stalls, starts, log.intended[i], log.end[i])}
    uncertified = Counter(outcomes.label(log.outcome[i]) for i in doubtful)
    # A generator, not a list: an hour at 1,000/s would hold 3.6 M floats just for max().
    last_success = max((t for t, code in zip(log.intended, log.outcome, strict=True)
                        if outcomes.is_success(code)), default=None)
    start, end = timeline.load_start, timeline.load_end
    real_duration = (end - start) if start is not None and end is not None else 0.0
    # Only what went out inside the window counts toward the rate: a generator that fell
    # behind and sent the rest afterwards did not achieve the rate.
    in_window = sum(1 for sent in log.sent if sent <= end) if end is not None else 0
    lag = summary_ms(log.send_lag)
    wait = summary_ms(log.connection_wait)
    events = timeline.events()
    return LoadResult(
        requests=len(log),
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
        error_windows=_error_windows(timeline, failed, last_success),
        events=events,
        per_pod=dict(sorted((log.pod_names[i], n) for i, n in served.items())),
        connection_wait={name: wait[name] for name in ("p50", "p90", "p99", "max")},
        waited_for_connection=log.waited,
        max_connections=log.max_connections,
        max_connections_reason=log.cap_reason,
        peak_connections=log.peak_connections,
        runner_errors=runner,
        uncertified=sum(uncertified.values()),
        uncertified_by_outcome=dict(uncertified.most_common()),
        stalls=[Stall(timeline.offset(a), timeline.offset(b)) for a, b in stalls],
        buckets=_buckets(timeline),
        disruptions=_disruptions(timeline, events, doubtful, frozenset(ignore), target_rate,
                                 recovered_after),
        latency_spectrum=spectrum(log.corrected),
        time_scale=timeline.time_scale,
    )
