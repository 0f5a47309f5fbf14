"""Documented field cases (docs/alb-facts.md) as qualitative outcomes on the sim.

Copied into a pytester directory and run by tests/test_calibration.py with compressed time.
Each case states the source it reproduces; a case "with errors" asserts that there were some,
a case "without" lets the default SLO (zero errors) decide.
"""

import pytest

# Every case: 3 replicas (unless said), kubia that exits at once on SIGTERM, 60 req/s.
ERRORS_EXPECTED = pytest.mark.ingress_slo(max_errors=None)


def _assert_errors(result, *allowed):
    assert result.errors > 0, "the field saw errors here; the simulation saw none"
    assert set(result.by_outcome) - {"200"} <= set(allowed), result.by_outcome


# --- the field report: ip mode loses requests, instance mode does not --------------------------

@ERRORS_EXPECTED
@pytest.mark.ingress_mode("ip")
@pytest.mark.kill_pods(at="5s")
def test_field_report_ip(ingress_load):
    _assert_errors(ingress_load.run(), "502", "504", "timeout")


@pytest.mark.ingress_mode("instance")
@pytest.mark.kill_pods(at="5s")
def test_field_report_instance(ingress_load):
    ingress_load.run()


# --- [1064]: deregistration delay 30 s; preStop 5 s is not enough, 25 s is -----------------------

@ERRORS_EXPECTED
@pytest.mark.ingress_mode("ip")
@pytest.mark.alb(deregistration_delay="30s")
@pytest.mark.sample_service(prestop_sleep="5s", grace_period="60s")
@pytest.mark.kill_pods(at="3s")
def test_1064_prestop_5s_not_enough(ingress_load):
    _assert_errors(ingress_load.run(), "502", "504", "timeout")


@pytest.mark.ingress_mode("ip")
@pytest.mark.alb(deregistration_delay="30s")
@pytest.mark.sample_service(prestop_sleep="25s", grace_period="60s")
@pytest.mark.kill_pods(at="3s")
@pytest.mark.ingress_load(duration="35s")  # SIGTERM at 28.5 s: the window sees the pod go
def test_1064_prestop_25s_enough(ingress_load):
    ingress_load.run()


# --- readiness gates during a rollout (ip mode, preStop longer than the lag) ----------------------
# Without gates the rollout replaces every pod in a second; the old targets are deregistered
# while the new ones are still "initial" (first health check one interval after registration):
# with only initial and draining targets the ALB answers 502 ([1124]). With gates a new pod is
# Ready only once its target is healthy, so old pods go only when new targets serve.

ROLLOUT = [
    pytest.mark.ingress_mode("ip"),
    pytest.mark.sample_service(prestop_sleep="15s", grace_period="45s"),
    pytest.mark.rollout_restart(at="2s"),
]


@ERRORS_EXPECTED
@pytest.mark.ingress_load(duration="40s")
def test_rollout_without_readiness_gates(ingress_load):
    _assert_errors(ingress_load.run(), "502", "503")


@pytest.mark.sample_service(prestop_sleep="15s", grace_period="45s", readiness_gate=True)
@pytest.mark.ingress_load(duration="120s")
def test_rollout_with_readiness_gates(ingress_load):
    result = ingress_load.run()
    assert any(e.kind == "rollout.done" for e in result.events), "the rollout did not finish"


for case in (test_rollout_without_readiness_gates, test_rollout_with_readiness_gates):
    for mark in ROLLOUT:
        mark(case)


# --- externalTrafficPolicy: Local, the node's last pod dies (instance mode) ----------------------
# 3 pods on 4 nodes: the killed pod's replacement lands on the empty node, so the victim's node
# has no local endpoint; the ALB keeps sending to it until two health checks fail.

@ERRORS_EXPECTED
@pytest.mark.ingress_mode("instance")
@pytest.mark.sim(nodes=4)
@pytest.mark.sample_service(external_traffic_policy="Local")
@pytest.mark.kill_pods(at="3s")
@pytest.mark.ingress_load(duration="40s")
def test_local_traffic_policy_last_pod_on_node(ingress_load):
    result = ingress_load.run()
    _assert_errors(result, "504", "timeout")
    assert any(e.kind == "target.unhealthy" for e in result.events)


@pytest.mark.ingress_mode("instance")
@pytest.mark.sim(nodes=4)
@pytest.mark.sample_service(external_traffic_policy="Cluster")
@pytest.mark.kill_pods(at="3s")
@pytest.mark.ingress_load(duration="40s")
def test_cluster_traffic_policy_same_kill(ingress_load):
    ingress_load.run()


# --- instance mode is not immune: node termination [1112] -----------------------------------------

@ERRORS_EXPECTED
@pytest.mark.ingress_mode("instance")
@pytest.mark.sim(nodes=4)
@pytest.mark.sample_service(prestop_sleep="5s")
@pytest.mark.drain_node(at="3s")
@pytest.mark.ingress_load(duration="50s")
def test_1112_node_termination_in_instance_mode(ingress_load):
    result = ingress_load.run()
    _assert_errors(result, "502")
    assert any(e.kind == "node.terminated" for e in result.events)


# --- keep-alive mismatch: the app closes idle connections before the ALB does ---------------------
# AWS: an app whose keep-alive timeout is shorter than the ALB's idle timeout (60 s) makes the
# ALB reuse connections the app has just closed, and those requests get 502. Only a request that
# reaches the ALB within a network round trip of the app's close is hit, so in the field it is
# sporadic. Here one client connection sends 20 req/s (one request every 50 ms of wall time) to
# one pod whose keep-alive timeout, 0.48 test seconds at the harness's time scale of 0.1, is
# 48 ms of wall time: every reuse races the close. With the app's timeout above the ALB's idle
# timeout, as AWS advises, the same load sees no error.

KEEPALIVE_RACE = [
    pytest.mark.ingress_mode("ip"),
    pytest.mark.ingress_load(rate=20, duration="60s", connections=1),
]


@ERRORS_EXPECTED
@pytest.mark.sample_service(replicas=1, keepalive_timeout="0.48s")
def test_keepalive_timeout_shorter_than_the_alb_idle_timeout(ingress_load):
    _assert_errors(ingress_load.run(), "502")


@pytest.mark.sample_service(replicas=1, keepalive_timeout="75s")
def test_keepalive_timeout_longer_than_the_alb_idle_timeout(ingress_load):
    ingress_load.run()


for case in (test_keepalive_timeout_shorter_than_the_alb_idle_timeout,
             test_keepalive_timeout_longer_than_the_alb_idle_timeout):
    for mark in KEEPALIVE_RACE:
        mark(case)
