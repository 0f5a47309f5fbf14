"""Tests without an ingress_mode marker run in the session's mode (``--ingress-mode``, ini
``ingress_mode`` or ``PYTEST_INGRESS_MODE``; default ``instance``), so one file serves a tox
matrix over target types: ``tox -e mode-ip,mode-instance``.
"""

import pytest

# A preStop sleep longer than the ALB controller's ~10 s deregistration lag keeps the pod
# serving until no load balancer sends to it any more: safe under either target type.
pytestmark = pytest.mark.sample_service(prestop_sleep="15s", grace_period="45s")


@pytest.mark.kill_pods(at="3s", count=2)
@pytest.mark.ingress_load(duration="20s")
def test_two_pods_killed_with_prestop(ingress_load):
    ingress_load.run()


@pytest.mark.ingress_load(duration="20s")  # the victim's preStop ends at 18.5 s: inside
def test_imperative_chaos(ingress_load, ingress_chaos):
    ingress_load.start()
    ingress_load.sleep("3s")
    killed = ingress_chaos.kill_pods(count=1)
    result = ingress_load.run()
    assert any(event.subject == killed[0] for event in result.events)
