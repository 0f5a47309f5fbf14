"""The field report (docs/alb-facts.md), as tests: 3 replicas of kubia behind an ALB,
60 requests/s, one pod killed 5 s into a 20 s window.

Run them: ``pytest examples/`` (add ``-n 2`` to run two at a time).
"""

import pytest

# 3 replicas, no preStop hook, kubia exits at once on SIGTERM: as in the field report.
pytestmark = [
    pytest.mark.ingress_load(rate=60, duration="20s"),
    pytest.mark.kill_pods(at="5s"),
]


@pytest.mark.ingress_mode("instance")
def test_instance_mode_pod_kill_is_invisible(ingress_load):
    """kube-proxy stops sending to the pod before it gets SIGTERM: zero errors."""
    result = ingress_load.run()
    # every request of the schedule (20 s at 60/s, or its share under --ingress-time-scale) was
    # sent and answered; run() has already failed the test on any error
    assert result.requests == result.scheduled > 0


@pytest.mark.ingress_mode("ip")
@pytest.mark.xfail(strict=True, reason=(
    "field report: in ip mode the ALB keeps sending to the dead pod's address until the "
    "controller deregisters it, about 10 s later: 502s, then timeouts"))
def test_ip_mode_pod_kill_costs_errors(ingress_load):
    ingress_load.run()


@pytest.mark.ingress_mode("ip")
@pytest.mark.ingress_slo(max_errors=None)  # inspect the errors instead of failing on them
def test_ip_mode_error_window_is_the_deregistration_lag(ingress_load):
    result = ingress_load.run()
    assert set(result.by_outcome) - {"200"} <= {"502", "504", "timeout"}
    assert result.errors > 0
    (window,) = result.error_windows
    assert 5.0 <= window.start <= 6.5  # from the kill (and its SIGTERM) ...
    # ... for about the controller's deregistration lag (10 s +- 2 s by default)
    assert 6.5 <= window.end - window.start <= 12.5


@pytest.mark.ingress_mode("ip")
@pytest.mark.sample_service(prestop_sleep="15s", grace_period="45s")
@pytest.mark.ingress_load(rate=60, duration="25s")  # the pod exits at 20.5 s: inside the window
def test_ip_mode_with_prestop_longer_than_the_lag_passes(ingress_load):
    """The report's fix: keep the pod serving until the ALB has stopped sending to it."""
    ingress_load.run()
