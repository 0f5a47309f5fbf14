"""The newer chaos markers and simulator knobs, end to end through the plugin with pytester.

Covered: ``rollout_restart`` (marker and imperative), ``scale_deployment``, ``drain_node``,
``kill_pods(signal=...)``, the ``alb`` marker, and ``sample_service(readiness_delay=...,
external_traffic_policy=..., keepalive_timeout=...)``. Every story runs as a user runs it (a
test file, a pytest subprocess, the sim backend) and is judged by what the user sees: outcomes,
messages, the result (``error_windows``, ``by_outcome``, ``per_pod``, ``events``) and
``ingress_service.pods()``.

Simulated time is compressed (``--ingress-time-scale``); offsets below are test seconds. The
expected numbers come from the simulator's model (``backends/sim/timings.py``): kubelet 0.5 s
behind a deletion, kube-proxy 0.1 s behind the endpoints, a container restart 1 s after a crash,
health checks every 15 s with an unhealthy threshold of 2.
"""

from __future__ import annotations

import re
import textwrap

import pytest

FAST = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.2")
# Long stories (health checks 15 s apart) run ten times faster than real.
FASTER = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.1")

# Helpers shared by the generated test files: plain functions over the result's events.
HELPERS = """
import re

import pytest


def events(result, kind, subject=None):
    return [e for e in result.events
            if e.kind == kind and (subject is None or e.subject == subject)]


def one(result, kind, subject=None):
    found = events(result, kind, subject)
    assert len(found) == 1, f"expected one {kind} event, got {found}"
    return found[0]


def chaos_events(result):
    return [e for e in result.events if e.source == "chaos"]


def ready_counts(result):
    '''Ready endpoints after each change during the load window.'''
    return [int(re.match(r"endpoints: (\\d+) ready", e.message).group(1))
            for e in events(result, "endpoints.updated") if e.at >= 0]


def error_span(result):
    '''(first failure, last failure) over every error window, by scheduled send time.'''
    windows = result.error_windows
    return windows[0].start, windows[-1].end
"""


def _write(pytester: pytest.Pytester, source: str) -> None:
    pytester.makepyfile(HELPERS + textwrap.dedent(source))


# --- rollout_restart --------------------------------------------------------------------------


def test_rollout_restart_marker_replaces_every_pod_with_zero_errors_in_instance_mode(
        pytester: pytest.Pytester) -> None:
    _write(pytester, """
        def check_rollout(result, pods, surge, unavailable):
            started, done = one(result, "rollout.started"), one(result, "rollout.done")
            # N% is resolved as the Deployment controller does: surge up, unavailable down.
            assert f"(maxSurge {surge}, maxUnavailable {unavailable})" in started.message
            assert 1.0 <= started.at < done.at < result.duration
            original = {e.subject for e in events(result, "pod.created") if e.at < 0}
            assert len(original) == 3
            by_name = {pod.name: pod for pod in pods}
            # every original pod was deleted by the rollout and is on its way out or gone
            deleted = events(result, "pod.deleted")
            assert {e.subject for e in deleted} == original
            assert all("deleted by the rollout" in e.message for e in deleted)
            assert all(by_name[name].terminating for name in original if name in by_name)
            # three Running, Ready pods of the new revision
            running = [pod for pod in pods if pod.running]
            assert len(running) == 3 and all(pod.ready for pod in running)
            assert not original & {pod.name for pod in running}
            # never fewer than replicas - maxUnavailable Ready pods
            assert min(ready_counts(result)) >= 3 - unavailable
            assert result.errors == 0

        @pytest.mark.ingress_load(duration="10s")
        @pytest.mark.rollout_restart(at="1s")
        def test_defaults(ingress_load, ingress_service):
            check_rollout(ingress_load.run(), ingress_service.pods(), 1, 0)

        @pytest.mark.ingress_load(duration="10s")
        @pytest.mark.rollout_restart(at="1s", max_surge=0, max_unavailable=1)
        def test_ints(ingress_load, ingress_service):
            check_rollout(ingress_load.run(), ingress_service.pods(), 0, 1)

        @pytest.mark.ingress_load(duration="10s")
        @pytest.mark.rollout_restart(at="1s", max_surge="50%", max_unavailable="50%")
        def test_percentages(ingress_load, ingress_service):
            check_rollout(ingress_load.run(), ingress_service.pods(), 2, 1)
    """)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*ingress-chaos summary*",
                                 "ok       instance *       0  -  *::test_defaults"])


def test_imperative_rollout_restart_waits_and_is_on_the_timeline(
        pytester: pytest.Pytester) -> None:
    _write(pytester, """
        @pytest.mark.ingress_load(duration="10s")
        def test_rolling_restart(ingress_load, ingress_chaos, ingress_service):
            before = {pod.name for pod in ingress_service.pods()}
            ingress_load.start()
            ingress_load.sleep("3s")
            ingress_chaos.rollout_restart(wait=True)
            # wait=True: back only once every pod is replaced
            serving = {pod.name for pod in ingress_service.pods()
                       if pod.running and pod.ready}
            assert len(serving) == 3 and not serving & before
            result = ingress_load.run()
            [chaos] = chaos_events(result)
            assert chaos.kind == "rollout_restart" and "maxSurge 25%" in chaos.message
            assert 2.8 <= chaos.at <= 4.0
            started, done = one(result, "rollout.started"), one(result, "rollout.done")
            assert chaos.at <= started.at < done.at < result.duration
            assert result.errors == 0
    """)
    pytester.runpytest_subprocess(*FAST).assert_outcomes(passed=1)


def test_rollout_restart_with_zero_surge_and_zero_unavailable_is_a_setup_error(
        pytester: pytest.Pytester) -> None:
    _write(pytester, """
        @pytest.mark.ingress_load(duration="3s")
        @pytest.mark.rollout_restart(at="1s", max_surge=0, max_unavailable=0)
        def test_zero(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_zero*",
                                 "*marker rollout_restart on test_zero*max_surge*"
                                 "max_unavailable*"])


# --- scale_deployment -------------------------------------------------------------------------


def test_scale_deployment_down_and_up_in_instance_mode(pytester: pytest.Pytester) -> None:
    _write(pytester, """
        @pytest.mark.ingress_load(duration="8s")
        @pytest.mark.scale_deployment(at="2s", replicas=1)
        def test_down(ingress_load, ingress_service):
            result = ingress_load.run()  # the default SLO: not a single error
            assert "from 3 to 1 replicas" in one(result, "deployment.scaled").message
            deleted = events(result, "pod.deleted")
            assert len(deleted) == 2
            assert all("deleted by scale-down" in e.message for e in deleted)
            assert not [e for e in events(result, "pod.created") if e.at >= 0]
            pods = ingress_service.pods()
            [survivor] = [pod for pod in pods if pod.running]
            assert survivor.ready and survivor.name not in {e.subject for e in deleted}
            # the two deleted pods have exited: their deletion completed, they left the API
            assert [pod.name for pod in pods] == [survivor.name]
            # Why zero errors with an app that dies at once on SIGTERM: kube-proxy forwards
            # only to the survivor before the kubelet sends the first SIGTERM.
            signals = events(result, "pod.signal")
            assert len(signals) == 2 and all("SIGTERM" in e.message for e in signals)
            assert all("killed by SIGTERM" in e.message for e in events(result, "pod.exited"))
            synced = [e for e in events(result, "kube-proxy.synced")
                      if e.message.endswith("forwards to: " + survivor.name)]
            assert synced and synced[0].at < min(e.at for e in signals)
            assert result.errors == 0

        @pytest.mark.ingress_load(duration="8s")
        @pytest.mark.scale_deployment(at="2s", replicas=5)
        def test_up(ingress_load, ingress_service):
            result = ingress_load.run()
            assert "from 3 to 5 replicas" in one(result, "deployment.scaled").message
            created = [e for e in events(result, "pod.created") if e.at >= 0]
            assert len(created) == 2 and not events(result, "pod.deleted")
            pods = ingress_service.pods()
            assert len(pods) == 5
            assert all(pod.running and pod.ready for pod in pods)
            nodes = sorted(pod.node for pod in pods)
            assert set(nodes) == {"node-1", "node-2", "node-3"}
            assert max(nodes.count(node) for node in set(nodes)) == 2  # spread out
            # the new pods take traffic once Ready
            assert set(result.per_pod) == {pod.name for pod in pods}
            assert result.errors == 0
    """)
    pytester.runpytest_subprocess(*FAST).assert_outcomes(passed=2)


# --- drain_node -------------------------------------------------------------------------------


def test_drain_node_in_instance_mode_gives_502s_until_two_health_checks_fail(
        pytester: pytest.Pytester) -> None:
    _write(pytester, """
        @pytest.mark.ingress_slo(max_errors=None)
        @pytest.mark.ingress_load(duration="40s", rate=150)
        @pytest.mark.drain_node(at="2s", count=1)
        def test_drain(ingress_load, ingress_service):
            result = ingress_load.run()
            [chaos] = chaos_events(result)
            node = chaos.subject
            assert chaos.kind == "drain_node" and "evict 1 pods" in chaos.message
            cordoned = one(result, "node.cordoned", node)
            [evicted] = events(result, "pod.deleted")
            assert f"evicted from {node}" in evicted.message
            terminated = one(result, "node.terminated", node)
            unhealthy = one(result, "target.unhealthy")
            assert unhealthy.subject == node
            assert chaos.at <= cordoned.at <= evicted.at < terminated.at < unhealthy.at
            # the replacement lands on another node; the drained node runs nothing
            [replacement] = [e for e in events(result, "pod.created") if e.at >= 0]
            assert replacement.at >= cordoned.at and f"on {node}," not in replacement.message
            pods = {pod.name: pod for pod in ingress_service.pods()}
            assert evicted.subject not in pods  # exited, its deletion completed
            running = [pod for pod in pods.values() if pod.running]
            assert len(running) == 3 and all(pod.node != node for pod in running)
            # The node's NodePort refuses once it is gone: 502 from the ALB, for a third of
            # the requests (round robin over three healthy targets) ...
            assert set(result.by_outcome) == {"200", "502"}
            first, last = error_span(result)
            assert terminated.at - 0.5 <= first <= terminated.at + 1.0
            # ... until the second failed health check (15 s apart) marks it unhealthy ...
            assert 15.0 - 0.5 <= unhealthy.at - terminated.at <= 30.0 + 1.0
            assert unhealthy.at - 2.0 <= last <= unhealthy.at + 0.5
            sent = sum(b["ok"] + b["errors"] for b in result.buckets
                       if terminated.at <= b["at"] < unhealthy.at)
            assert 0.25 <= result.errors / sent <= 0.42
            # ... and then no error at all, while the load goes on.
            after = [b for b in result.buckets if b["at"] > unhealthy.at + 0.5]
            assert sum(b["ok"] for b in after) > 100 and sum(b["errors"] for b in after) == 0
    """)
    pytester.runpytest_subprocess(*FASTER).assert_outcomes(passed=1)


def test_drain_node_count_larger_than_the_nodes_with_pods_fails_clearly(
        pytester: pytest.Pytester) -> None:
    """Found at setup, before the window: only nodes that run pods are drained, and 3 pods run
    on at most 3 nodes. (Imperatively, the same is a ChaosError when called:
    tests/test_bad_input.py.)"""
    _write(pytester, """
        @pytest.mark.ingress_load(duration="3s")
        @pytest.mark.drain_node(at="1s", count=4)
        def test_drain_too_many(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_drain_too_many*",
        "marker drain_node on test_drain_too_many: count=4 at=1s, but sample_service has "
        "replicas=3: only nodes running pods are drained, at most 3 then; lower count or raise "
        "the replicas",
    ])
    # A refused chaos marker is reported as a message, without plugin frames.
    assert "pytest_ingress_chaos/" not in result.stdout.str()  # no frame of the package


# --- kill_pods(signal=...) --------------------------------------------------------------------


def test_kill_pods_with_a_signal_restarts_the_container_in_the_same_pod(
        pytester: pytest.Pytester) -> None:
    _write(pytester, """
        @pytest.mark.ingress_slo(max_errors=None)
        @pytest.mark.ingress_load(duration="8s")
        @pytest.mark.kill_pods(at="2s", signal="SIGKILL")
        def test_sigkill(ingress_load, ingress_service):
            result = ingress_load.run()
            [chaos] = chaos_events(result)
            victim = chaos.subject
            assert f"SIGKILL to the container of pod {victim}" in chaos.message
            # not deleted, not replaced: the same three pods, the victim restarted once
            assert not events(result, "pod.deleted")
            assert not [e for e in events(result, "pod.created") if e.at >= 0]
            pods = {pod.name: pod for pod in ingress_service.pods()}
            assert len(pods) == 3
            assert pods[victim].running and pods[victim].ready
            assert pods[victim].restarts == 1
            assert all(pod.restarts == 0 for name, pod in pods.items() if name != victim)
            crashed = one(result, "pod.crashed", victim)
            restarted = one(result, "pod.restarted", victim)
            ready = [e for e in events(result, "pod.ready", victim) if e.at >= 0]
            assert "killed by SIGKILL" in crashed.message
            assert chaos.at <= crashed.at < restarted.at < ready[0].at
            assert 0.9 <= restarted.at - crashed.at <= 2.0  # the kubelet's restart delay
            # At most a few 502s, while kube-proxy still forwards to the dead container.
            assert set(result.by_outcome) <= {"200", "502"}
            if result.errors:
                first, last = error_span(result)
                assert chaos.at - 0.2 <= first and last <= restarted.at + 0.2
    """)
    pytester.runpytest_subprocess(*FAST).assert_outcomes(passed=1)


def test_kill_pods_signal_with_force_or_grace_period_fails_naming_the_conflict(
        pytester: pytest.Pytester) -> None:
    _write(pytester, """
        @pytest.mark.ingress_load(duration="3s")
        @pytest.mark.kill_pods(at="1s", signal="SIGKILL", force=True)
        def test_with_force(ingress_load):
            ingress_load.run()

        @pytest.mark.ingress_load(duration="3s")
        @pytest.mark.kill_pods(at="1s", signal="SIGTERM", grace_period="5s")
        def test_with_grace(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 2
    assert "passed" not in outcomes
    result.stdout.fnmatch_lines(["*signal=*force=*"])
    result.stdout.fnmatch_lines(["*signal=*grace_period=*"])
    # signal= with force= is a setup error naming the marker and the test.
    assert outcomes.get("errors", 0) >= 1
    result.stdout.fnmatch_lines(["*ERROR at setup of test_with_force*",
                                 "marker kill_pods on test_with_force: *signal*force*"])


# --- the alb marker ---------------------------------------------------------------------------


def test_alb_marker_deregistration_lag_and_algorithm(pytester: pytest.Pytester) -> None:
    _write(pytester, """
        def kill_and_window(result):
            [kill] = chaos_events(result)
            draining = one(result, "target.draining")
            assert draining.subject == kill.subject
            first, last = error_span(result)
            assert kill.at < first and last <= draining.at + 0.2
            return kill, draining, first, last

        @pytest.mark.ingress_mode("ip")
        @pytest.mark.sim(deregistration_lag="3s", lag_jitter="0s")
        @pytest.mark.ingress_slo(max_errors=None)
        @pytest.mark.ingress_load(duration="10s")
        @pytest.mark.kill_pods(at="2s")
        def test_short_lag(ingress_load):
            result = ingress_load.run()
            kill, draining, first, last = kill_and_window(result)
            assert 2.9 <= draining.at - kill.at <= 3.4  # the lag, without jitter
            assert result.errors > 0
            assert last - kill.at <= 3.5 and last - first <= 3.5  # about 3 s of errors

        @pytest.mark.ingress_mode("ip")
        @pytest.mark.ingress_slo(max_errors=None)
        @pytest.mark.ingress_load(duration="14s")
        @pytest.mark.kill_pods(at="2s")
        def test_default_lag(ingress_load):
            result = ingress_load.run()
            kill, draining, first, last = kill_and_window(result)
            assert 7.9 <= draining.at - kill.at <= 12.4  # 10 s +- 2 s
            assert last - kill.at >= 7.5  # errors for about 10 s

        @pytest.mark.ingress_mode("instance")
        @pytest.mark.alb(algorithm="least_outstanding_requests")
        @pytest.mark.ingress_load(duration="6s")
        @pytest.mark.kill_pods(at="2s")
        def test_least_outstanding_requests(ingress_load):
            result = ingress_load.run()  # zero errors, as with round robin
            assert result.errors == 0 and len(result.per_pod) >= 3
    """)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*ingress-chaos summary*"])


def test_alb_marker_on_a_test_without_an_ingress_fixture_is_an_error(
        pytester: pytest.Pytester) -> None:
    _write(pytester, """
        @pytest.mark.alb(deregistration_delay="30s")
        def test_no_fixture():
            pass
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*marker alb on test_no_fixture has no effect: the test uses none of the fixtures "
        "ingress_chaos, ingress_load, ingress_service*",
    ])


# --- sample_service knobs ---------------------------------------------------------------------


def test_keepalive_timeout_shorter_than_the_alb_idle_timeout_fails_with_502s(
        pytester: pytest.Pytester) -> None:
    """One client connection, 20 req/s (a request every 50 ms of wall time), one pod whose
    keep-alive timeout (0.96 test s at time scale 0.05: 48 ms) makes every reuse of the ALB's
    connection race the app's close: the test fails on 502s and nothing else. The same load
    against an app that keeps connections longer than the ALB's idle timeout passes. (How
    many reuses lose the race depends on the machine's latency; tests/test_report.py checks
    how scattered errors are listed.)"""
    _write(pytester, """
        RACE = [pytest.mark.ingress_mode("ip"),
                pytest.mark.ingress_load(rate=20, duration="100s", connections=1)]

        @pytest.mark.sample_service(replicas=1, keepalive_timeout="0.96s")
        def test_mismatch(ingress_load):
            ingress_load.run()

        @pytest.mark.sample_service(replicas=1, keepalive_timeout="75s")
        def test_matched(ingress_load):
            ingress_load.run()

        for case in (test_mismatch, test_matched):
            for mark in RACE:
                mark(case)
    """)
    result = pytester.runpytest_subprocess("-p", "no:benchmark", "-p", "no:cacheprovider",
                                           "--ingress-time-scale", "0.05")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*_ test_mismatch[[]ip[]] _*",
        "*requests failed; ingress_slo allows max_errors=0*",
        "  Outcomes: 200 x*, 502 x*",
    ])
    result.stdout.re_match_lines([  # the summary table, sorted by test name
        r"ok +ip +100 +0 +- +test_\w+\.py::test_matched\[ip\]$",
        r"FAILED +ip +100 +\d+ .*test_\w+\.py::test_mismatch\[ip\]  \(502 x\d+\)$",
    ])


def test_readiness_delay_holds_a_new_pod_out_of_the_endpoints(
        pytester: pytest.Pytester) -> None:
    _write(pytester, """
        def replacement(result):
            [created] = [e for e in events(result, "pod.created") if e.at >= 0]
            [ready] = [e for e in events(result, "pod.ready", created.subject) if e.at >= 0]
            return created, ready

        @pytest.mark.sample_service(readiness_delay="5s")
        @pytest.mark.ingress_load(duration="10s")
        @pytest.mark.kill_pods(at="1s")
        def test_delayed(ingress_load, ingress_service):
            result = ingress_load.run()  # instance mode: zero errors
            created, ready = replacement(result)
            assert 5.0 <= ready.at - created.at <= 7.0
            # meanwhile the endpoints hold the two survivors only
            updates = [e for e in events(result, "endpoints.updated") if e.at >= 0]
            assert [e for e in updates if e.at < ready.at][-1].message.startswith(
                "endpoints: 2 ready")
            assert ready_counts(result)[-1] == 3
            # the steady state is not delayed: the original pods were Ready before the load
            originals = [e for e in events(result, "pod.ready") if e.subject != created.subject]
            assert len(originals) == 3 and all(e.at < 0 for e in originals)
            assert len([pod for pod in ingress_service.pods() if pod.ready]) == 3

        @pytest.mark.ingress_load(duration="6s")
        @pytest.mark.kill_pods(at="1s")
        def test_not_delayed(ingress_load):
            created, ready = replacement(ingress_load.run())
            assert ready.at - created.at < 3.0
    """)
    pytester.runpytest_subprocess(*FAST).assert_outcomes(passed=2)


# --- bad marker input: setup errors naming the marker, the test and what is accepted ----------


@pytest.mark.parametrize(("decorator", "message"), [
    ('@pytest.mark.rollout_restart(at="1s", max_surge="lots")',
     "marker rollout_restart on test_bad: max_surge='lots': expected a whole number from 0 to "
     "100 or a percentage from 0% to 100% like '25%', got 'lots'"),
    ('@pytest.mark.rollout_restart(at="1s", max_unavailable=-1)',
     "marker rollout_restart on test_bad: max_unavailable=-1: expected a whole number from 0 "
     "to 100 or a percentage from 0% to 100% like '25%', got -1"),
    ('@pytest.mark.rollout_restart(at="25s")',
     "marker rollout_restart on test_bad: at=25s is not inside the load window (duration=20s)"),
    ('@pytest.mark.scale_deployment(at="1s", replicas="many")',
     "marker scale_deployment on test_bad: replicas='many': expected a whole number from 0 to "
     "100, got 'many'"),
    ('@pytest.mark.drain_node(at="1s", count=0)',
     "marker drain_node on test_bad: count=0: expected a whole number from 1 to 100, got 0"),
    ('@pytest.mark.kill_pods(at="1s", signal="SIGFOO")',
     "marker kill_pods on test_bad: signal='SIGFOO': expected one of 'SIGTERM', 'SIGKILL', "
     "'SIGINT', 'SIGHUP', got 'SIGFOO'"),
    ('@pytest.mark.alb(deregistration_timeout="5s")',
     "marker alb on test_bad: unknown keyword deregistration_timeout; accepted: "
     "deregistration_delay, healthcheck_interval, healthcheck_timeout, healthy_threshold, "
     "unhealthy_threshold, idle_timeout, algorithm"),
    ('@pytest.mark.sim(registration_lag="soon")',
     "marker sim on test_bad: registration_lag='soon': expected a duration *"),
    ('@pytest.mark.alb(algorithm="random")',
     "marker alb on test_bad: algorithm='random': expected one of 'round_robin', "
     "'least_outstanding_requests', got 'random'"),
    ('@pytest.mark.alb(healthcheck_interval="0s")',
     "marker alb on test_bad: healthcheck_interval='0s': expected a duration from 5s to 300s, "
     "as AWS allows (*), got '0s'"),
    ('@pytest.mark.sample_service(external_traffic_policy="Nope")',
     "marker sample_service on test_bad: external_traffic_policy='Nope': expected one of "
     "'Cluster', 'Local', got 'Nope'"),
    ('@pytest.mark.sample_service(readiness_delay="soon")',
     "marker sample_service on test_bad: readiness_delay='soon': expected a duration from 0s "
     "to 24h (\"250ms\", \"5s\", \"1m\" or a number of seconds), got 'soon'"),
    ('@pytest.mark.sample_service(keepalive_timeout="0s")',
     "marker sample_service on test_bad: keepalive_timeout='0s': expected a duration > 0s *"),
])
def test_bad_chaos_and_knob_markers_are_setup_errors(pytester: pytest.Pytester, decorator: str,
                                                     message: str) -> None:
    _write(pytester, f"""
        {decorator}
        def test_bad(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_bad*", message])
    # The message alone: no traceback frame (pytest prints each frame's location as
    # "path/to/file.py:LINE: ..."), nothing from the plugin's package, no chained exception.
    output = result.stdout.str()
    assert not re.search(r"^\S+\.py:\d+: ", output, re.MULTILINE), output
    assert "pytest_ingress_chaos" not in output
    assert "During handling" not in output
