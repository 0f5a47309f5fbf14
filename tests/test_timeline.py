"""Summary and verdict of a timeline, from hand-made request records (no I/O)."""

from __future__ import annotations

import re

import pytest

from pytest_ingress_chaos.base import outcomes
from pytest_ingress_chaos.base.clock import TestClock
from pytest_ingress_chaos.base.specs import SLOSpec
from pytest_ingress_chaos.core.result import LoadResult
from pytest_ingress_chaos.core.result import summarize as _summarize
from pytest_ingress_chaos.core.timeline import Timeline
from pytest_ingress_chaos.core.verdict import FAIL, PASS, VOID, judge


def summarize(timeline: Timeline, rate: float, slo: SLOSpec | None = None) -> LoadResult:
    result = _summarize(timeline, rate)
    if slo is not None:
        result.violations.extend(judge(result, slo).violations)
    return result


def _timeline(records: list[tuple[float, int]], *, rate: float = 10.0, time_scale: float = 1.0,
              latency: float = 0.005, lag: float = 0.001, wait: float = 0.0) -> Timeline:
    """Records as (scheduled offset in wall seconds, outcome); window = [0, last + 1/rate).
    ``lag`` is the generator's own lag, ``wait`` a wait for a connection after it."""
    timeline = Timeline(TestClock(time_scale))
    timeline.load_start = 1000.0
    for offset, outcome in records:
        due = 1000.0 + offset
        pod = "kubia-a" if outcomes.is_success(outcome) else None
        timeline.requests.add(due, due + lag, due + lag + wait, due + lag + wait + latency,
                              outcome, pod)
    timeline.load_end = 1000.0 + (records[-1][0] + 1 / rate if records else 0)
    return timeline


def test_all_ok_passes_with_exact_figures() -> None:
    result = summarize(_timeline([(i / 10, 200) for i in range(100)]), 10.0, SLOSpec())
    assert (result.requests, result.errors, result.violations) == (100, 0, [])
    assert result.by_outcome == {"200": 100}
    assert result.achieved_rate == pytest.approx(10.0)
    assert result.duration == pytest.approx(10.0)
    # lag + latency, from the scheduled time (HdrHistogram: 3 significant digits)
    assert result.latency["p50"] == pytest.approx(6.0, rel=1e-3)
    assert result.latency_uncorrected["p50"] == pytest.approx(5.0, rel=1e-3)
    assert result.send_lag["p99"] == pytest.approx(1.0, rel=1e-3)
    assert result.latency_spectrum[-1]["percentile"] == 1.0
    assert [b["ok"] for b in result.buckets] == [1] * 100
    assert result.buckets[42]["at"] == pytest.approx(4.2)
    assert result.per_pod == {"kubia-a": 100}
    assert result.held_rate


def test_error_windows_split_on_gaps_and_count_by_kind() -> None:
    records = [(i / 10, 200) for i in range(200)]
    records[50:60] = [(i / 10, 502) for i in range(50, 55)] + [(i / 10, outcomes.TIMEOUT)
                                                              for i in range(55, 60)]
    records[150] = (15.0, 503)
    result = summarize(_timeline(records), 10.0, SLOSpec())
    assert result.errors == 11
    assert result.by_outcome == {"200": 189, "502": 5, "503": 1, "timeout": 5}
    first, second = result.error_windows
    assert (first.start, first.end, first.count) == (pytest.approx(5.0), pytest.approx(5.9), 10)
    assert first.by_outcome == {"502": 5, "timeout": 5}
    assert (second.start, second.count) == (pytest.approx(15.0), 1)
    assert result.violations == ["11 of 200 requests failed; ingress_slo allows max_errors=0"]


def test_time_scale_reports_test_seconds() -> None:
    records = [(i / 100, 200) for i in range(100)]
    records[50] = (0.5, 502)
    result = summarize(_timeline(records, rate=100, time_scale=0.1), 100.0)
    assert result.error_windows[0].start == pytest.approx(5.0)
    assert result.duration == pytest.approx(10.0)


def test_slo_thresholds_and_ignore() -> None:
    records = [(i / 10, 200) for i in range(98)] + [(9.8, 404), (9.9, outcomes.TIMEOUT)]
    result = summarize(_timeline(records), 10.0)
    assert judge(result, SLOSpec(max_errors=2)).kind == PASS
    assert judge(result, SLOSpec(max_errors=None)).kind == PASS
    assert judge(result, SLOSpec(max_errors=1, ignore=("404",))).kind == PASS
    [violation] = judge(result, SLOSpec(max_errors=0, ignore=("404",))).violations
    assert "1 of 100 requests failed (not counting 404)" in violation
    [violation] = judge(result, SLOSpec(max_errors=None, max_error_rate=0.01)).violations
    assert "error rate 2.00%" in violation and "max_error_rate=0.01" in violation
    assert judge(result, SLOSpec(max_errors=None, max_error_rate=0.02)).kind == PASS


def test_p99_check_uses_latency_from_the_scheduled_time() -> None:
    slow = summarize(_timeline([(i / 10, 200) for i in range(100)], latency=0.4), 10.0)
    [violation] = judge(slow, SLOSpec(p99=0.3)).violations
    assert re.search(r"p99 latency 401\.\d ms is above ingress_slo p99=300 ms", violation)
    assert judge(slow, SLOSpec(p99=0.5)).kind == PASS


def test_empty_window_is_void() -> None:
    verdict = judge(_summarize(_timeline([]), 10.0), SLOSpec(max_errors=None))
    assert verdict.kind == VOID
    assert verdict.violations == ["no request was sent: the load window was empty"]


def test_a_generator_that_fell_behind_voids_the_verdict() -> None:
    late = _summarize(_timeline([(i / 10, 200) for i in range(100)], lag=0.2), 10.0)
    assert late.late == 100 and not late.held_rate
    verdict = judge(late, SLOSpec())
    assert verdict.kind == VOID
    assert "100 handed out more than 50 ms late by the generator itself" in \
        verdict.violations[0]
    assert "the verdict on the ingress is void" in verdict.violations[-1]
    timeline = _timeline([(i / 10, 200) for i in range(100)])
    timeline.not_sent = 5
    verdict = judge(_summarize(timeline, 10.0), SLOSpec())
    assert verdict.kind == VOID and "5 never sent" in verdict.violations[0]


def test_waiting_at_the_connection_cap_is_the_generators_fault_not_its_lag() -> None:
    result = _summarize(_timeline([(i / 10, 200) for i in range(100)], wait=0.2), 10.0)
    assert (result.late, result.waited_for_connection) == (0, 100)
    verdict = judge(result, SLOSpec())
    assert verdict.kind == VOID and "100 waited more than 50 ms for a connection" in \
        verdict.violations[0]


def _stalled(records: list[tuple[float, int]], stall: tuple[float, float],
             latency: float = 0.005) -> LoadResult:
    """A generator on time but for one stall (wall offsets), during which its requests went
    out late."""
    timeline = _timeline(records, latency=latency)
    log = timeline.requests
    since, until = 1000.0 + stall[0], 1000.0 + stall[1]
    log.stalled(since, until)
    for i, due in enumerate(log.intended):
        if since <= due < until:  # handed out only when the loop ran again
            log.dispatched[i] = log.sent[i] = until
            log.late += 1
    return _summarize(timeline, 10.0)


def test_errors_where_the_generator_kept_its_schedule_fail_the_ingress_anyway() -> None:
    """Blame is local in time: 502s at 1-2 s count, whatever the generator did at 5-7 s."""
    records = [(i / 10, 502 if 10 <= i < 20 else 200) for i in range(100)]
    result = _stalled(records, (5.0, 7.0))
    assert not result.held_rate
    verdict = judge(result, SLOSpec())
    assert verdict.kind == FAIL
    assert verdict.violations[0].startswith("10 of 100 requests failed")
    assert verdict.violations[1].startswith("also: the load generator could not hold the rate")


def test_timeouts_inside_a_generator_stall_are_not_certified() -> None:
    """Timeouts whose requests lived through a stall of the generator may be its own doing:
    reported as not certified, and the run is void, not failed. A 502 in the same stretch is
    the ingress's answer and always counts."""
    records = [(i / 10, -1 if 50 <= i < 52 else 200) for i in range(1000)]
    result = _stalled(records, (4.95, 5.3), latency=2.0)
    assert result.held_rate  # a short stall: the rate was held overall
    assert (result.errors, result.uncertified) == (2, 2)
    assert result.uncertified_by_outcome == {"timeout": 2}
    verdict = judge(result, SLOSpec())
    assert verdict.kind == VOID
    assert "2 errors (timeout x2) fell in stretches where the load generator itself stalled" \
        in verdict.violations[0]
    assert judge(result, SLOSpec(max_errors=None)).kind == PASS  # nothing to certify
    records[50] = (5.0, 502)
    verdict = judge(_stalled(records, (4.95, 5.3), latency=2.0), SLOSpec())
    assert verdict.kind == FAIL and verdict.violations[0].startswith("1 of 1000 requests")


def test_runner_side_failures_are_never_the_ingresss() -> None:
    records = [(i / 10, outcomes.DNS_FAILURE if i < 1 else 200) for i in range(100)]
    result = _summarize(_timeline(records), 10.0)
    assert (result.errors, result.runner_errors) == (0, 1)
    assert result.by_outcome["dns failure"] == 1
    assert judge(result, SLOSpec()).kind == PASS  # within the generator's 1% tolerance


def test_a_window_in_which_no_request_reached_the_ingress_is_void() -> None:
    records = [(i / 10, outcomes.DNS_FAILURE) for i in range(30)]
    verdict = judge(_summarize(_timeline(records), 10.0), SLOSpec())
    assert verdict.kind == VOID
    assert verdict.violations == [
        "no request reached the ingress: all 30 failed on the machine running the tests "
        "(dns failure x30); the window proves nothing about the ingress"]


def test_too_few_answers_to_judge_is_void_but_ingress_errors_still_fail() -> None:
    records = [(i / 10, outcomes.DNS_FAILURE if i % 10 < 3 else 200) for i in range(100)]
    verdict = judge(_summarize(_timeline(records), 10.0), SLOSpec())
    assert verdict.kind == VOID
    assert verdict.violations[0].startswith(
        "30 of 100 scheduled requests never reached the ingress (dns failure x30)")
    assert "fix what failed on the machine running the tests" in verdict.violations[-1]
    records[5] = (0.5, 502)  # what the ingress answered still counts
    verdict = judge(_summarize(_timeline(records), 10.0), SLOSpec())
    assert verdict.kind == FAIL
    assert verdict.violations[0].startswith("1 of 100 requests failed")
    assert verdict.violations[1].startswith("also: 30 of 100 scheduled requests never reached")


def test_errors_still_going_at_the_end_are_not_recovered() -> None:
    records = [(i / 10, 502 if i >= 90 else 200) for i in range(100)]
    [window] = _summarize(_timeline(records), 10.0).error_windows
    assert not window.recovered
    records = [(i / 10, 502 if 80 <= i < 90 else 200) for i in range(100)]
    [window] = _summarize(_timeline(records), 10.0).error_windows
    assert window.recovered


def test_chaos_after_the_window_fails_the_test_and_says_how_long_would_do() -> None:
    timeline = _timeline([(i / 10, 200) for i in range(100)])  # a 10 s window
    timeline.record(1012.4, "chaos", "rollout_restart", "kubia", "rollout_restart")
    timeline.record(1012.5, "cluster", "pod.deleted", "kubia-a", "deleted")
    verdict = judge(_summarize(timeline, 10.0), SLOSpec(), ["pod kubia-b"])
    assert verdict.kind == FAIL
    [message] = verdict.violations
    assert message.startswith("the load window ended at 10.00 s before the chaos did: "
                              "rollout_restart kubia at 12.40 s, pod.deleted kubia-a at 12.50 s, "
                              "pod kubia-b still terminating; a window of at least 14 s would have "
                              "covered what happened so far, and the terminating pods need it "
                              "longer still, past the pods' termination")
    verdict = judge(_summarize(timeline, 10.0), SLOSpec())
    assert verdict.violations[0].endswith("; a window of at least 14 s would have covered it")
    verdict = judge(_summarize(_timeline([(i / 10, 200) for i in range(100)]), 10.0),
                    SLOSpec(), ["pod kubia-b"])
    assert verdict.violations[0].endswith("pod kubia-b still terminating; lengthen the window "
                                          "past the pods' termination (their preStop sleep "
                                          "and grace period)")


def test_events_are_sorted_and_relative_to_load_start() -> None:
    timeline = _timeline([(0.0, 200)], time_scale=0.5)
    timeline.record(1002.0, "alb", "target.draining", "p", "second")
    timeline.record(1001.0, "chaos", "kill_pods", "p", "first")
    first, second = timeline.events()
    assert (first.at, first.message, second.at) == (2.0, "first", 4.0)


def test_requests_sent_after_the_window_do_not_count_toward_the_rate() -> None:
    """A generator that fell behind and sent the rest after the window did not hold it."""
    timeline = _timeline([(i / 10, 200) for i in range(100)], lag=0.0)
    for i in range(50, 100):  # the second half went out 6 s late, after the window closed
        timeline.requests.sent[i] += 6.0
    result = summarize(timeline, 10.0)
    assert result.achieved_rate == pytest.approx(5.0)
