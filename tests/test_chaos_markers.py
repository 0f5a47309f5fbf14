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
                                 "ok       instance *       0         0s  -  *::test_defaults"])


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


# The timeline of the rendered report: (seconds, source, message) per line.
_TIMELINE_LINE = re.compile(r"^\s+(-?\d+\.\d\d)  (\S+)\s+(.*)$")


def _timeline(output: list[str]) -> list[tuple[float, str, str]]:
    start = output.index("Timeline (seconds from load start):") + 1
    rows = []
    for line in output[start:]:
        match = _TIMELINE_LINE.match(line)
        if match is None:
            break
        rows.append((float(match.group(1)), match.group(2), match.group(3)))
    return rows


def _first(rows: list[tuple[float, str, str]], pattern: str) -> tuple[int, float, str]:
    """(index, seconds, message) of the first timeline row whose message matches."""
    for index, (at, _, message) in enumerate(rows):
        if re.search(pattern, message):
            return index, at, message
    raise AssertionError(f"no timeline row matches {pattern!r}:\n" +
                         "\n".join(f"{at:7.2f} {m}" for at, _, m in rows))


def test_drain_node_report_explains_every_502_next_to_its_cause(
        pytester: pytest.Pytester) -> None:
    """Instance mode, the controller's newest behaviour, a plain drain: the report a user reads
    names the node's termination before the 502s begin, says at their start why the ALB still
    sends requests to the node (and how to avoid it), and ends them with the failed health
    checks; the controller deregisters the node once it is NotReady."""
    _write(pytester, """
        @pytest.mark.ingress_mode("instance")
        @pytest.mark.ingress_load(duration="60s")
        @pytest.mark.drain_node(at="2s")
        def test_drain(ingress_load):
            ingress_load.run()
    """)
    outcome = pytester.runpytest_subprocess(*FASTER)
    outcome.assert_outcomes(failed=1)
    output = outcome.stdout.lines
    windows = [line for line in output if re.match(r"^\s+\d+\.\d\d \.\.\s+\d", line)]
    assert len(windows) == 1, windows  # one stretch of errors, explained below
    rows = _timeline(output)
    node = r"node-\d"
    i_down, t_down, down = _first(rows, rf"^{node} drained \(1 pods evicted\): its instance is "
                                        r"terminated and shuts down$")
    name = down.split()[0]
    i_gone, t_gone, _ = _first(rows, rf"^{name} is gone: its instance and network are down")
    i_why, t_why, why = _first(rows, rf"\({name}\) refuses connections, but the ALB still "
                                     r"counts it healthy")
    assert why.endswith(
        "requests sent to it get 502 until 2 failed health checks (15s apart) mark it "
        "unhealthy. It is still registered: controller v3.5 keeps a cordoned node registered "
        "(to avoid this: drain_node(exclude_from_load_balancers=True), which labels the node "
        "node.kubernetes.io/exclude-from-external-load-balancers and waits for its "
        "deregistration before the drain)"), why
    i_begin, t_begin, _ = _first(rows, r"^>>> errors begin: 502 x\d+$")
    i_end, t_end, _ = _first(rows, r"^<<< errors end")
    i_sick, t_sick, _ = _first(rows, rf"\({name}\) is unhealthy \(failed 2 health checks "
                                      r"in a row\)$")
    i_gone_nr, t_not_ready, _ = _first(rows, rf"^{name} is NotReady: no word from its kubelet "
                                             r"for 40s")
    i_dereg, t_dereg, _ = _first(rows, rf"\({name}\) deregistered \({name} is NotReady\): "
                                       r"draining for 300s")
    # The cause comes first: the termination a second ahead of the first error, and the
    # explanation at it. "At": errors are stamped with their requests' scheduled send times,
    # and the first one was sent after the node had gone, late by at most the generator's own
    # lag (the report's "Send lag ... max"), a few milliseconds of wall time more for the
    # ALB's side; time runs ten times faster here.
    [lag] = [float(m.group(1)) for line in output
             if (m := re.match(r"^\s+Send lag .* max (\d+\.\d+)ms", line))]
    at_once = (lag + 5.0) / 1000 / 0.1 + 0.01
    assert i_down < i_begin and t_down + 1.0 - at_once <= t_begin  # the OS's 1 s shutdown
    assert i_gone < i_why and t_gone <= t_why <= t_begin + at_once, (t_why, t_begin, lag)
    # The errors end with the health checks, and the deregistration comes later still.
    assert i_begin < i_end and t_sick - 2.0 <= t_end <= t_sick + 0.5
    assert i_sick < i_gone_nr < i_dereg
    assert 39.0 <= t_not_ready - t_down <= 41.5
    assert 7.5 <= t_dereg - t_not_ready <= 12.5


def test_drain_node_excluded_from_load_balancers_first_has_zero_errors(
        pytester: pytest.Pytester) -> None:
    """docs/alb-facts.md section 7: label the node excluded from load balancers, wait out the
    deregistration, then drain. As a marker (the default 30 s wait) and imperatively (a wait
    of our own, and ``wait=True``): the ALB has stopped sending to the node before it goes."""
    _write(pytester, """
        from pytest_ingress_chaos import SettingsError

        EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"


        def check_story(result, node, wait):
            chaos = [e for e in chaos_events(result) if e.subject == node]
            assert len(chaos) == 2, chaos
            assert chaos[0].message == (
                f"drain_node: excluding {node} from load balancers ({EXCLUDE}), then waiting "
                f"{wait} for its deregistration before the drain")
            labelled = one(result, "node.labelled", node)
            assert labelled.message == f"{node} labelled {EXCLUDE}=true"
            deregistered = one(result, "target.draining", node)
            assert f"deregistered ({node} is labelled {EXCLUDE})" in deregistered.message
            cordoned = one(result, "node.cordoned", node)
            down = one(result, "node.terminating", node)
            gone = one(result, "node.terminated", node)
            assert chaos[0].at <= labelled.at < deregistered.at < chaos[1].at <= cordoned.at
            assert cordoned.at < down.at < gone.at < result.duration
            assert 7.5 <= deregistered.at - labelled.at <= 12.5  # the controller's lag
            # One action, one row of the disruption table: from the exclusion, drain included.
            [disruption] = [d for d in result.disruptions if node in d.action.subject]
            assert (disruption.action.at, disruption.action.kind) == (chaos[0].at, "drain_node")
            assert len(result.disruptions) == 1, result.disruptions
            assert not events(result, "target.unreachable")
            assert not events(result, "target.unhealthy")
            assert result.errors == 0 and result.requests > 0


        @pytest.mark.ingress_mode("instance")
        @pytest.mark.ingress_load(duration="45s", rate=150)
        @pytest.mark.drain_node(at="2s", exclude_from_load_balancers=True)
        def test_marker(ingress_load):
            result = ingress_load.run()
            [first, _] = chaos_events(result)
            check_story(result, first.subject, "30s")


        @pytest.mark.ingress_mode("instance")
        @pytest.mark.ingress_load(duration="30s", rate=150)
        def test_imperative(ingress_load, ingress_chaos, ingress_service):
            # Bad values are refused with the marker's messages, before anything happens.
            with pytest.raises(SettingsError, match=re.escape(
                    "ingress_chaos.drain_node: deregistration_wait=5.0: goes with "
                    "exclude_from_load_balancers=True")):
                ingress_chaos.drain_node(deregistration_wait="5s")
            ingress_load.start()
            ingress_load.sleep("2s")
            [node] = ingress_chaos.drain_node(exclude_from_load_balancers=True,
                                              deregistration_wait="15s", wait=True)
            assert all(pod.node != node for pod in ingress_service.pods())
            check_story(ingress_load.run(), node, "15s")
    """)
    outcome = pytester.runpytest_subprocess(*FASTER)
    outcome.assert_outcomes(passed=2)
    outcome.stdout.fnmatch_lines(["ok * instance * 0 * 0s  -  *test_imperative*",
                                  "ok * instance * 0 * 0s  -  *test_marker*"])


def test_drain_node_outcome_follows_the_controller_version(pytester: pytest.Pytester) -> None:
    """docs/alb-facts.md section 7, one row each. The drain outlasts the controller's lag
    (a 15 s preStop): v1.1.9 deregisters the cordoned node before it goes (no error), the
    newest keeps it (502s). v1.1.5 ignores the exclusion label, so even the mitigation fails."""
    _write(pytester, """
        SLOW_DRAIN = [pytest.mark.ingress_mode("instance"),
                      pytest.mark.ingress_load(duration="30s"),
                      pytest.mark.sample_service(prestop_sleep="15s")]


        def slow(test):
            for mark in SLOW_DRAIN:
                test = mark(test)
            return test


        @slow
        @pytest.mark.sim(controller_version="v1.1.9")
        @pytest.mark.drain_node(at="2s")
        def test_v1_1_9_deregisters_the_cordoned_node(ingress_load):
            result = ingress_load.run()
            [chaos] = chaos_events(result)
            deregistered = one(result, "target.draining", chaos.subject)
            assert f"({chaos.subject} is cordoned, which controller v1.1.9 drops)" in \
                deregistered.message
            assert deregistered.at < one(result, "node.terminating", chaos.subject).at
            assert result.errors == 0


        @slow
        @pytest.mark.ingress_slo(max_errors=None)
        @pytest.mark.drain_node(at="2s")
        def test_newest_keeps_the_cordoned_node(ingress_load):
            result = ingress_load.run()
            [chaos] = chaos_events(result)
            why = one(result, "target.unreachable", chaos.subject)
            assert "controller v3.5 keeps a cordoned node registered" in why.message
            assert not [e for e in events(result, "target.draining", chaos.subject)
                        if e.at < why.at]
            assert set(result.by_outcome) == {"200", "502"}
            assert why.at - 0.05 <= error_span(result)[0]


        @pytest.mark.ingress_mode("instance")
        @pytest.mark.ingress_load(duration="30s")
        @pytest.mark.ingress_slo(max_errors=None)
        @pytest.mark.sim(controller_version="v1.1.5")
        @pytest.mark.drain_node(at="2s", exclude_from_load_balancers=True,
                                deregistration_wait="15s")
        def test_v1_1_5_ignores_the_exclusion_label(ingress_load):
            result = ingress_load.run()
            node = chaos_events(result)[0].subject
            one(result, "node.labelled", node)
            why = one(result, "target.unreachable", node)
            assert ("controller v1.1.5 ignores the "
                    "node.kubernetes.io/exclude-from-external-load-balancers label") in \
                why.message
            assert set(result.by_outcome) == {"200", "502"}
    """)
    pytester.runpytest_subprocess(*FASTER).assert_outcomes(passed=3)


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
        r"ok +ip +100 +0 +- +- +- +test_\w+\.py::test_matched\[ip\]$",
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
    ('@pytest.mark.drain_node(at="1s", exclude_from_load_balancers="maybe")',
     "marker drain_node on test_bad: exclude_from_load_balancers='maybe': expected true or "
     "false, got 'maybe'"),
    ('@pytest.mark.drain_node(at="1s", deregistration_wait="10s")',
     "marker drain_node on test_bad: deregistration_wait=10.0: goes with "
     "exclude_from_load_balancers=True: without the exclusion no deregistration comes before "
     "the drain"),
    ('@pytest.mark.drain_node(at="1s", exclude_from_load_balancers=True, '
     'deregistration_wait="0s")',
     "marker drain_node on test_bad: deregistration_wait='0s': expected a duration > 0s *"),
    ('@pytest.mark.drain_node(at="5s", exclude_from_load_balancers=True)',
     "marker drain_node on test_bad: the drain comes after at=5s and the deregistration_wait "
     "of 30s, at 35s: not inside the load window (duration=20s)"),
    ('@pytest.mark.sim(controller_version="latest")',
     "marker sim on test_bad: controller_version='latest': expected a controller version "
     "like 'v3.5', 'v2.13' or 'v1.1.9' (v1.0.0 or later), got 'latest'"),
    ('@pytest.mark.sim(controller_version="v1.1")',
     "marker sim on test_bad: controller_version='v1.1': 'v1.1' is ambiguous: v1.1.0 - v1.1.5 "
     "keep a cordoned node registered, v1.1.6 - v1.1.9 deregister it; give the patch "
     "version, e.g. 'v1.1.5' or 'v1.1.9'"),
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
