"""Disruption per chaos action, the buckets by outcome and what the terminal report says about
them, from hand-made request records and chaos events (no I/O)."""

from __future__ import annotations

import pytest

from pytest_ingress_chaos.base import outcomes
from pytest_ingress_chaos.base.clock import TestClock
from pytest_ingress_chaos.base.specs import FieldError, SLOSpec
from pytest_ingress_chaos.core.result import LoadResult, summarize
from pytest_ingress_chaos.core.timeline import Timeline
from pytest_ingress_chaos.core.verdict import FAIL, PASS, judge
from pytest_ingress_chaos.report import terminal
from pytest_ingress_chaos.report.context import ReportContext

START = 1000.0
CONTEXT = ReportContext(test="test_x.py::test_kill[ip]", mode="ip", backend="sim",
                        url="http://127.0.0.1:1/", seed=1, connections=10, timeout=2.0,
                        run="0123abcd")


def _timeline(outcome_at: dict[int, int], *, count: int = 200, rate: float = 10.0,
              chaos: tuple[tuple[float, str, str], ...] = (), time_scale: float = 1.0
              ) -> Timeline:
    """``count`` requests at ``rate`` per wall second, 200 unless ``outcome_at`` says otherwise;
    ``chaos`` events as (wall seconds from load start, kind, subject)."""
    timeline = Timeline(TestClock(time_scale))
    timeline.load_start = START
    for i in range(count):
        due = START + i / rate
        outcome = outcome_at.get(i, 200)
        latency = 2.0 if outcome == outcomes.TIMEOUT else 0.004
        pod = "kubia-a" if outcomes.is_success(outcome) else None
        timeline.requests.add(due, due + 0.001, due + 0.001, due + latency, outcome, pod)
    for at, kind, subject in chaos:
        timeline.record(START + at, "chaos", kind, subject, f"{kind}: {subject}")
    timeline.load_end = START + count / rate
    return timeline


def _judged(timeline: Timeline, slo: SLOSpec, rate: float = 10.0) -> LoadResult:
    result = summarize(timeline, rate, ignore=slo.ignore, recovered_after=slo.recovered_after)
    verdict = judge(result, slo)
    return LoadResult(**{**result.__dict__, "verdict": verdict.kind,
                         "violations": verdict.violations})


def test_a_kill_followed_by_errors_is_one_disruption_from_first_to_last_error() -> None:
    errors = {i: 502 for i in range(52, 71)}  # 5.2 .. 7.0 s
    result = summarize(_timeline(errors, chaos=((5.0, "kill_pods", "kubia-a"),)), 10.0)
    [d] = result.disruptions
    assert (d.action.kind, d.action.subject, d.action.at) == ("kill_pods", "kubia-a", 5.0)
    assert (d.start, d.end, d.errors, d.by_outcome) == (5.2, 7.0, 19, {"502": 19})
    assert d.length == pytest.approx(1.9)  # 5.2 .. 7.0 plus the last request's 0.1 s slot
    assert d.recovered and d.recovered_at == pytest.approx(8.0)  # the 10th success after 7.0


def test_a_dead_target_in_the_rotation_keeps_the_disruption_going() -> None:
    # Every third request fails from 5 s to 12 s (round robin over three pods, one dead): short
    # runs of successes in between do not end the disruption.
    errors = {i: 502 if (i // 3) % 2 else outcomes.TIMEOUT for i in range(50, 121, 3)}
    result = summarize(_timeline(errors, chaos=((4.9, "kill_pods", "kubia-b"),)), 10.0)
    [d] = result.disruptions
    assert (d.start, d.end, d.errors) == (5.0, 11.9, 24)
    assert d.by_outcome == {"timeout": 12, "502": 12}
    assert d.length == pytest.approx(7.0)


def test_each_action_gets_the_errors_that_followed_it() -> None:
    errors = {**{i: 502 for i in range(31, 35)}, **{i: 503 for i in range(121, 123)}}
    result = summarize(_timeline(errors, chaos=((3.0, "kill_pods", "kubia-a"),
                                                (8.0, "scale_deployment", "kubia"),
                                                (12.0, "rollout_restart", "kubia"))), 10.0)
    assert [(d.action.kind, d.start, d.errors) for d in result.disruptions] == [
        ("kill_pods", 3.1, 4), ("scale_deployment", None, 0), ("rollout_restart", 12.1, 2)]
    assert result.longest_disruption is result.disruptions[0]
    assert terminal.disruption_cell(result) == "0.40s"


def test_one_action_on_several_pods_is_one_disruption() -> None:
    result = summarize(_timeline({}, chaos=((5.0, "kill_pods", "kubia-a"),
                                            (5.01, "kill_pods", "kubia-b"),
                                            (9.0, "kill_pods", "kubia-c"))), 10.0)
    assert [d.action.subject for d in result.disruptions] == ["kubia-a, kubia-b", "kubia-c"]
    assert terminal.disruption_cell(result) == "0s"


def test_errors_still_going_at_the_end_are_not_recovered() -> None:
    errors = {i: 502 for i in range(150, 200, 2)}
    result = summarize(_timeline(errors, chaos=((14.5, "drain_node", "node-1"),)), 10.0)
    [d] = result.disruptions
    assert not d.recovered and d.recovered_at is None
    lines = terminal.render(result, CONTEXT).splitlines()
    assert "      14.50  drain_node node-1: 4.90 s (15.00 .. 19.80), 25 errors: 502 x25; not " \
           "recovered by the end of the window" in lines


def test_ignored_outcomes_and_runner_side_failures_disrupt_nothing() -> None:
    errors = {**{i: outcomes.TIMEOUT for i in range(51, 60)},
              **{i: outcomes.DNS_FAILURE for i in range(60, 70)}}
    timeline = _timeline(errors, chaos=((5.0, "kill_pods", "kubia-a"),))
    counted = summarize(timeline, 10.0)
    assert counted.disruptions[0].errors == 9
    ignored = summarize(timeline, 10.0, ignore=("timeout",))
    assert ignored.disruptions[0].start is None


def test_no_chaos_no_disruptions() -> None:
    result = summarize(_timeline({i: 502 for i in range(10, 20)}), 10.0)
    assert result.disruptions == [] and result.longest_disruption is None
    assert terminal.disruption_cell(result) == "-"
    assert not any("Disruption" in line for line in terminal.render(result, CONTEXT).splitlines())


def test_max_disruption_fails_a_long_disruption_and_passes_a_short_one() -> None:
    errors = {i: 502 for i in range(52, 71)}  # 1.9 s
    timeline = _timeline(errors, chaos=((5.0, "kill_pods", "kubia-a"),))
    long = _judged(timeline, SLOSpec(max_errors=None, max_disruption="1s"))
    assert long.verdict == FAIL
    assert long.violations == [
        "the disruption after kill_pods kubia-a at 5.00 s lasted 1.90 s (19 errors: 502 x19); "
        "ingress_slo allows max_disruption=1s"]
    assert _judged(timeline, SLOSpec(max_errors=None, max_disruption="2s")).verdict == PASS
    # max_errors still applies on its own: the SLO's default allows no error at all.
    assert _judged(timeline, SLOSpec(max_disruption="2s")).verdict == FAIL


def test_recovered_after_sets_how_many_successes_end_a_disruption() -> None:
    # Two bursts 1 s apart: with 10 successes to recover they are two disruptions of the
    # errors after the action... but only the first follows the action; with 20 they merge.
    errors = {**{i: 502 for i in range(50, 55)}, **{i: 502 for i in range(70, 75)}}
    timeline = _timeline(errors, chaos=((5.0, "kill_pods", "kubia-a"),))
    assert summarize(timeline, 10.0).disruptions[0].end == 5.4
    assert summarize(timeline, 10.0, recovered_after=20).disruptions[0].end == 7.4
    with pytest.raises(FieldError, match="recovered_after=0"):
        SLOSpec(recovered_after=0)
    with pytest.raises(FieldError, match="max_disruption='soon'"):
        SLOSpec(max_disruption="soon")


def test_disruptions_are_in_test_seconds_under_a_time_scale() -> None:
    # Time scale 0.1: 10 requests per wall second are one per test second.
    errors = {i: 502 for i in range(52, 71)}
    result = summarize(_timeline(errors, chaos=((5.0, "kill_pods", "kubia-a"),), time_scale=0.1),
                       10.0)
    [d] = result.disruptions
    assert (d.action.at, d.start, d.end) == pytest.approx((50.0, 52.0, 70.0))
    assert d.length == pytest.approx(19.0)


def test_buckets_count_every_outcome_and_carry_latency_percentiles() -> None:
    errors = {3: 502, 4: outcomes.TIMEOUT, 5: outcomes.NOT_SENT}
    buckets = summarize(_timeline(errors, count=20), 10.0).buckets
    assert [b["at"] for b in buckets[:6]] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert buckets[3] == {"at": 0.3, "ok": 0, "errors": 1, "outcomes": {"502": 1},
                          "latency_ms": {"p50": 4.0, "p90": 4.0, "p99": 4.0, "max": 4.0}}
    assert buckets[4]["outcomes"] == {"timeout": 1}
    assert buckets[4]["latency_ms"]["max"] == 2000.0
    # A request never sent is in the counts (runner side) but neither an error nor a latency.
    assert buckets[5] == {"at": 0.5, "ok": 0, "errors": 0, "outcomes": {"not sent": 1},
                          "latency_ms": {}}


def test_bucket_percentiles_are_nearest_rank() -> None:
    timeline = Timeline(TestClock())
    timeline.load_start = START
    for i, latency in enumerate([0.001 * n for n in range(1, 11)]):  # 1..10 ms, one bucket
        due = START + i / 1000
        timeline.requests.add(due, due, due, due + latency, 200, "kubia-a")
    timeline.load_end = START + 0.01
    [bucket] = summarize(timeline, 1000.0).buckets
    assert bucket["latency_ms"] == {"p50": 5.0, "p90": 9.0, "p99": 10.0, "max": 10.0}


def test_chaos_before_the_window_starts_is_on_the_timeline() -> None:
    timeline = _timeline({}, chaos=((-2.0, "kill_pods", "kubia-a"),))
    timeline.record(START - 5.0, "cluster", "pod.created", "kubia-z", "provisioning: kubia-z")
    timeline.record(START - 1.5, "cluster", "pod.gone", "kubia-a", "kubia-a is gone")
    lines = terminal.render(summarize(timeline, 10.0), CONTEXT).splitlines()
    assert "    -2.00  chaos      kill_pods: kubia-a" in lines
    assert "    -1.50  cluster    kubia-a is gone" in lines
    assert not any("provisioning" in line for line in lines)


def test_under_a_time_scale_the_header_gives_test_and_wall_seconds() -> None:
    result = summarize(_timeline({}, count=100, time_scale=0.2), 10.0)
    lines = terminal.render(result, CONTEXT).splitlines()
    assert lines[0].startswith("50.00s load @ http://127.0.0.1:1/")
    assert lines[1] == ("  time scale 0.2: 50.00 test s = 10.00 wall-clock s; rates are per "
                        "wall-clock second (10 req/s x 10.00 s = 100 requests scheduled); every "
                        "other time in this report is in test seconds, latencies in wall-clock ms")
    assert "  100 requests, 10.00 req/s achieved, 0 errors (0.00%)" in lines
    plain = terminal.render(summarize(_timeline({}, count=100), 10.0), CONTEXT).splitlines()
    assert not any("time scale" in line for line in plain)
