"""A test's markers read into its plan (the rules are ``core.plan``'s), the ``ingress_mode``
parametrisation, and markers on a test that uses none of the fixtures they act through."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from ..base.errors import SettingsError
from ..base.specs import CHAOS_SPECS, AlbSpec, ChaosSpec, ServiceSpec, SLOSpec, Spec
from ..core.plan import MarkerSpecs, TestPlan, plan_test
from ..settings.markers import merged_kwargs, modes_from_marker, spec_from_marker
from .session import IngressSession, session_of

_LOAD_MARKERS = {"ingress_load", "ingress_slo", *CHAOS_SPECS}
_PROVISIONING_FIXTURES = {"ingress_service", "ingress_load", "ingress_chaos"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("ingress_mode")
    if marker is None or "ingress_mode" not in metafunc.fixturenames:
        return
    try:
        modes = modes_from_marker(marker.args, marker.kwargs, metafunc.definition.name)
    except SettingsError:
        return  # the ingress_mode fixture reports it, naming the test, at setup
    metafunc.parametrize("ingress_mode", modes, ids=modes, indirect=True)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Ingress markers on a test that uses none of the fixtures would silently do nothing."""
    fixtures = set(getattr(item, "fixturenames", ()))
    provisioning = {"sample_service", "alb",
                    *(m.name for m in session_of(item.config).extra_markers)}
    for marker in item.iter_markers():
        needs = ({"ingress_load"} if marker.name in _LOAD_MARKERS
                 else _PROVISIONING_FIXTURES if marker.name in provisioning
                 else {*_PROVISIONING_FIXTURES, "ingress_mode"} if marker.name == "ingress_mode"
                 else None)
        if needs is not None and not fixtures & needs:
            pytest.fail(f"marker {marker.name} on {item.name} has no effect: the test uses "
                        f"none of the fixtures {', '.join(sorted(needs))}", pytrace=False)


def _marker_spec(item: pytest.Item, name: str, base: Spec) -> Any:
    """The spec of the test's ``name`` markers: function, class and module markers merged
    keyword by keyword, closest wins per keyword (``settings.markers.merged_kwargs``)."""
    by_node: dict[int, tuple[str, list[Mapping[str, object]]]] = {}
    for node, marker in item.iter_markers_with_node(name):  # closest first
        if marker.args:  # refused, naming the marker
            spec_from_marker(type(base), name, marker.args, marker.kwargs, item.name, base)
        by_node.setdefault(id(node), (node.name, []))[1].append(marker.kwargs)
    if not by_node:
        return base
    kwargs = merged_kwargs(name, list(by_node.values()), item.name)
    return spec_from_marker(type(base), name, (), kwargs, item.name, base)


def marker_specs(item: pytest.Item, session: IngressSession) -> MarkerSpecs:
    """Each of the test's markers parsed on its own; a SettingsError names the bad one."""
    load = _marker_spec(item, "ingress_load", session.settings.load_defaults())
    chaos: tuple[ChaosSpec, ...] = tuple(
        spec_from_marker(spec_type, name, marker.args, marker.kwargs, item.name)
        for name, spec_type in CHAOS_SPECS.items() for marker in item.iter_markers(name))
    extras = {marker.name: _marker_spec(item, marker.name, marker.spec())
              for marker in session.extra_markers}
    return MarkerSpecs(
        load=load, chaos=chaos, extras=extras,
        service=_marker_spec(item, "sample_service", ServiceSpec()),
        slo=_marker_spec(item, "ingress_slo", SLOSpec()),
        alb=_marker_spec(item, "alb", AlbSpec()),
        given=frozenset(marker.name for marker in item.iter_markers()),
    )


def plan_of(item: pytest.Item, session: IngressSession) -> TestPlan:
    return plan_test(marker_specs(item, session), session.traits(), nodeid=item.nodeid,
                     name=item.name, seed=session.seed, clock=session.clock,
                     imperative_chaos="ingress_chaos" in getattr(item, "fixturenames", ()))


def rng(plan: TestPlan, user: str) -> random.Random:
    """Victims depend on the seed, the test and who chooses (the marker schedule or the
    ingress_chaos fixture), not on which xdist worker runs the test or which thread acts
    first."""
    return random.Random(f"{plan.seed}:{plan.nodeid}:{user}")
