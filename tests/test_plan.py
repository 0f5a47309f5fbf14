"""The plan rules (``core.plan``), without pytest's machinery: markers given as parsed specs, a
backend as its traits. The plugin-level stories (the same refusals from a test file) are in
test_chaos_markers.py and test_bad_input.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest

from pytest_ingress_chaos.backends.sim.spec import SimSpec
from pytest_ingress_chaos.base.backend import Capability
from pytest_ingress_chaos.base.clock import TestClock
from pytest_ingress_chaos.base.errors import SettingsError
from pytest_ingress_chaos.base.specs import (
    AlbSpec,
    ChaosSpec,
    DrainNode,
    KillPods,
    LoadSpec,
    ScaleDeployment,
    ServiceSpec,
    SLOSpec,
    Spec,
)
from pytest_ingress_chaos.core.plan import BackendTraits, MarkerSpecs, TestPlan, plan_test

URL = "http://127.0.0.1:9/"


class Backend:
    """The traits of a backend, counting how often its capabilities are asked for (asking
    starts the real backend)."""

    def __init__(self, capabilities: frozenset[Capability] = frozenset(Capability),
                 own: frozenset[str] = frozenset({"sim"})) -> None:
        self.asked = 0
        self._capabilities = capabilities
        self.traits = BackendTraits("sim", own, self._ask)

    def _ask(self) -> frozenset[Capability]:
        self.asked += 1
        return self._capabilities


def specs(*chaos: ChaosSpec, load: LoadSpec | None = None, given: tuple[str, ...] = (),
          extras: Mapping[str, Spec] | None = None, replicas: int = 3) -> MarkerSpecs:
    return MarkerSpecs(load=load or LoadSpec(duration=10.0), slo=SLOSpec(),
                       service=ServiceSpec(replicas=replicas), alb=AlbSpec(),
                       chaos=tuple(chaos), extras={"sim": SimSpec()} if extras is None else extras,
                       given=frozenset((*given, *(action.kind for action in chaos))))


def plan(marker_specs: MarkerSpecs, backend: Backend | None = None,
         time_scale: float = 1.0) -> TestPlan:
    return plan_test(marker_specs, (backend or Backend()).traits, nodeid="t.py::test_x",
                     name="test_x", seed=7, clock=TestClock(time_scale))


def refusal(marker_specs: MarkerSpecs, backend: Backend | None = None) -> str:
    with pytest.raises(SettingsError) as info:
        plan(marker_specs, backend)
    return str(info.value)


def test_a_valid_plan_keeps_every_spec_and_a_timeline_on_the_session_clock() -> None:
    given = specs(KillPods(at=2.0), ScaleDeployment(at=1.0, replicas=4))
    made = plan(given, time_scale=0.5)
    assert (made.nodeid, made.seed, made.load, made.chaos) == (
        "t.py::test_x", 7, given.load, given.chaos)
    assert made.timeline.clock.time_scale == 0.5


def test_chaos_at_the_end_of_the_window_is_refused() -> None:
    assert refusal(specs(KillPods(at=10.0))) == (
        "marker kill_pods on test_x: at=10s is not inside the load window (duration=10s)")


def test_a_drain_after_its_deregistration_wait_must_fall_inside_the_window() -> None:
    drain = DrainNode(at=4.0, exclude_from_load_balancers=True, deregistration_wait=6.0)
    assert refusal(specs(drain)) == (
        "marker drain_node on test_x: the drain comes after at=4s and the deregistration_wait "
        "of 6s, at 10s: not inside the load window (duration=10s)")
    plan(specs(dataclasses.replace(drain, deregistration_wait=5.5)))  # at 9.5 s: inside


def test_a_load_window_of_too_many_requests_names_the_ingress_load_marker() -> None:
    message = refusal(specs(load=LoadSpec(rate=100_000.0, duration=200.0)))
    assert message.startswith("marker ingress_load on test_x: rate=100000.0: with "
                              "duration=200s at time scale 1, the window has 20,000,000 "
                              "requests; accepted: 1 to 10,000,000")


@pytest.mark.parametrize("marker", ["kill_pods", "sample_service", "alb", "ingress_mode", "sim"])
def test_markers_that_need_a_provisioned_service_contradict_an_explicit_url(marker: str
                                                                           ) -> None:
    chaos = (KillPods(at=1.0),) if marker == "kill_pods" else ()
    backend = Backend()
    message = refusal(specs(*chaos, load=LoadSpec(duration=10.0, url=URL), given=(marker,)),
                      backend)
    assert message == (f"marker {marker} on test_x needs a provisioned service, but the load "
                       f"goes to the explicit url={URL!r} (from the ingress_load marker or "
                       "--ingress-url); remove one of the two")
    assert backend.asked == 0  # a url plan never starts the backend


def test_a_url_plan_refuses_provisioning_fixtures_and_starts_no_backend() -> None:
    backend = Backend()
    made = plan(specs(load=LoadSpec(duration=10.0, url=URL)), backend)
    assert backend.asked == 0
    with pytest.raises(SettingsError, match=r"^ingress_service provisions a service, but the "
                       r"load of t.py::test_x goes to the explicit url="):
        made.check_provisioning("ingress_service")
    plan(specs()).check_provisioning("ingress_service")  # provisioned: nothing to refuse


def test_a_container_kill_on_a_backend_that_cannot_is_refused_asking_it_once() -> None:
    backend = Backend(capabilities=frozenset())
    signalled = KillPods(at=1.0, signal="SIGKILL")
    assert refusal(specs(signalled, dataclasses.replace(signalled, at=2.0)), backend) == (
        "marker kill_pods on test_x: signal= kills a container only, which backend sim cannot "
        "do; delete the pod instead (no signal=)")
    assert backend.asked == 1
    plan(specs(signalled))  # the default traits can
    untouched = Backend(capabilities=frozenset())
    plan(specs(KillPods(at=1.0)), untouched)  # deleting a pod needs no capability
    assert untouched.asked == 0


def test_drains_are_counted_against_the_own_backend_markers_nodes() -> None:
    two_nodes = {"sim": SimSpec(nodes=2)}
    assert refusal(specs(DrainNode(at=1.0), DrainNode(at=2.0), extras=two_nodes)) == (
        "marker drain_node on test_x: count=1 (with 1 drained before), but the sim marker has "
        "nodes=2 and at least one must stay to run the evicted pods; accepted: count <= 1 in "
        "all")
    # Another backend's marker says nothing about this backend's cluster.
    plan(specs(DrainNode(at=1.0), DrainNode(at=2.0), extras=two_nodes),
         Backend(own=frozenset()))


def test_kills_beyond_the_replicas_are_refused() -> None:
    assert "at most 2 pods can be killed then" in refusal(specs(KillPods(count=3), replicas=2))
