"""One test's plan: what its markers and the session's options ask for, checked as a whole.

Each marker is checked on its own when it is parsed (``settings.markers``); the rules here are
about the markers together and about what the session's backend can do:

- the load window itself (how many requests it sends at the session's time scale);
- every chaos action inside the load window, a drain's deregistration wait included;
- an explicit ``url`` (load sent to an existing endpoint) and the markers that need a
  provisioned service, which contradict each other;
- the chaos actions against the service (replicas, nodes: ``chaos.check_against_service``) and
  against the backend's capabilities.

pytest-free: the plugin reads the markers into :class:`MarkerSpecs`, this module decides, and a
refusal is a :class:`SettingsError` naming the marker and the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..base.backend import Capability
from ..base.clock import TestClock
from ..base.errors import SettingsError
from ..base.specs import (
    CHAOS_SPECS,
    AlbSpec,
    ChaosSpec,
    DrainNode,
    FieldError,
    KillPods,
    LoadSpec,
    ServiceSpec,
    SLOSpec,
    Spec,
)
from ..base.units import format_seconds
from .chaos import check_against_service
from .timeline import Timeline

# The markers that shape a provisioned service; with an explicit url none has anything to act on.
_PROVISIONING_MARKERS = (*CHAOS_SPECS, "sample_service", "alb", "ingress_mode")


@runtime_checkable
class FixesNodeCount(Protocol):
    """A backend marker's spec that fixes the size of that backend's cluster (the simulator's
    ``sim``: ``nodes``). A real cluster's size is not known in advance."""

    @property
    def nodes(self) -> int: ...


@dataclass(frozen=True)
class MarkerSpecs:
    """What one test's markers say, each parsed on its own (a marker not given: its spec's
    defaults, on top of the session's options for ``ingress_load``)."""

    load: LoadSpec
    slo: SLOSpec
    service: ServiceSpec
    alb: AlbSpec
    chaos: tuple[ChaosSpec, ...]
    extras: Mapping[str, Spec]  # every registered backend's own markers, by name
    given: frozenset[str]  # the names of the markers the test carries


@dataclass(frozen=True)
class BackendTraits:
    """What the plan needs to know of the session's backend."""

    name: str
    own_markers: frozenset[str]  # the markers this backend reads; the others' say nothing here
    # Asked only when the plan provisions a service: a plan whose load goes to an explicit url
    # never starts a backend.
    capabilities: Callable[[], frozenset[Capability]]


@dataclass(frozen=True)
class TestPlan:
    """Everything one test's markers and the session's options say, validated."""

    __test__ = False  # not a pytest test class, despite its name

    nodeid: str
    load: LoadSpec
    slo: SLOSpec
    service: ServiceSpec
    alb: AlbSpec
    extras: Mapping[str, Spec]
    chaos: tuple[ChaosSpec, ...]
    seed: int
    timeline: Timeline

    def check_provisioning(self, fixture: str) -> None:
        """``fixture`` provisions a service: refused when the load goes to an explicit url."""
        if self.load.url is not None:
            raise SettingsError(f"{fixture} provisions a service, but the load of {self.nodeid} "
                                f"goes to the explicit url={self.load.url!r}")


def plan_test(specs: MarkerSpecs, backend: BackendTraits, *, nodeid: str, name: str, seed: int,
              clock: TestClock, imperative_chaos: bool = False) -> TestPlan:
    """The plan of the test ``nodeid`` (``name`` in messages), or a SettingsError naming the
    marker that breaks a rule. ``imperative_chaos``: the test can act itself (it asks for the
    ``ingress_chaos`` fixture)."""
    _check_load_window(specs.load, clock.time_scale, name)
    _check_disruption_has_chaos(specs, imperative_chaos, name)
    _check_chaos_inside_window(specs.chaos, specs.load, name)
    if specs.load.url is not None:
        _refuse_provisioning_markers(specs, name)
    else:
        check_against_service(specs.chaos, specs.service, _node_count(specs.extras, backend),
                              name)
        _check_capabilities(specs.chaos, backend, name)
    return TestPlan(nodeid=nodeid, load=specs.load, slo=specs.slo, service=specs.service,
                    alb=specs.alb, extras=specs.extras, chaos=specs.chaos, seed=seed,
                    timeline=Timeline(clock))


def _check_load_window(load: LoadSpec, time_scale: float, name: str) -> None:
    # The session's defaults were checked at start: a failure here comes from the marker.
    try:
        load.check_window(time_scale)
    except FieldError as exc:
        raise SettingsError(f"marker ingress_load on {name}: {exc}") from None


def _check_chaos_inside_window(actions: Iterable[ChaosSpec], load: LoadSpec, name: str) -> None:
    window = f"the load window (duration={format_seconds(load.duration)})"
    for action in actions:
        if action.at >= load.duration:
            raise SettingsError(f"marker {action.kind} on {name}: at={format_seconds(action.at)} "
                                f"is not inside {window}")
        pause = action.wait_before_drain if isinstance(action, DrainNode) else None
        if pause is not None and action.at + pause >= load.duration:
            raise SettingsError(
                f"marker drain_node on {name}: the drain comes after at="
                f"{format_seconds(action.at)} and the deregistration_wait of "
                f"{format_seconds(pause)}, at {format_seconds(action.at + pause)}: not inside "
                f"{window}")


def _check_disruption_has_chaos(specs: MarkerSpecs, imperative_chaos: bool, name: str) -> None:
    # A disruption is measured from a chaos action: without one the check can never fail, and a
    # CI gate that reads "max_disruption" would pass on a check that was never made.
    if specs.slo.max_disruption is not None and not specs.chaos and not imperative_chaos:
        raise SettingsError(
            f"marker ingress_slo on {name}: max_disruption="
            f"{format_seconds(specs.slo.max_disruption)} has nothing to judge: the test has no "
            "chaos (no kill_pods, rollout_restart, scale_deployment or drain_node marker, no "
            "ingress_chaos fixture); add one, or drop max_disruption")


def _refuse_provisioning_markers(specs: MarkerSpecs, name: str) -> None:
    for marker in (*_PROVISIONING_MARKERS, *specs.extras):
        if marker in specs.given:
            raise SettingsError(
                f"marker {marker} on {name} needs a provisioned service, but the load goes to "
                f"the explicit url={specs.load.url!r} (from the ingress_load marker or "
                "--ingress-url); remove one of the two")


def _node_count(extras: Mapping[str, Spec], backend: BackendTraits) -> tuple[str, int] | None:
    """The cluster's node count when the session's backend takes it from one of its own
    markers, with that marker's name; else None."""
    for marker, spec in extras.items():
        if marker in backend.own_markers and isinstance(spec, FixesNodeCount):
            return marker, spec.nodes
    return None


def _check_capabilities(actions: Iterable[ChaosSpec], backend: BackendTraits, name: str) -> None:
    """Refuse, at setup, a marker action the backend cannot take; asks the backend only when
    some action needs a capability."""
    if any(isinstance(a, KillPods) and a.signal for a in actions) and \
            Capability.CONTAINER_KILL not in backend.capabilities():
        raise SettingsError(
            f"marker kill_pods on {name}: signal= kills a container only, which backend "
            f"{backend.name} cannot do; delete the pod instead (no signal=)")
