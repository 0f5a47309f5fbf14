"""The fixtures a test asks for: the backend, the target type, the provisioned service, the
imperative chaos and the load window, each built from the test's plan."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import pytest

from ..base import units
from ..base.backend import Backend, ProvisionRequest, Service
from ..base.errors import BackendError, SettingsError
from ..core.chaos import Chaos, ChaosSchedule
from ..core.load.probe import check_reachable
from ..core.loadwindow import IngressLoad
from ..core.plan import TestPlan
from ..report import terminal
from ..report.context import ReportContext
from ..settings.markers import modes_from_marker
from .planning import plan_of, rng
from .session import session_of
from .window import WINDOW_KEY, WindowEntry

T = TypeVar("T")


def _or_fail(make: Callable[[], T]) -> T:
    """``make()``; a SettingsError or BackendError it raises (a bad marker, a cluster that
    cannot be reached, a service that did not come up) fails the test's setup with its message
    alone: the message is the whole story, a traceback through the plugin would bury it."""
    try:
        return make()
    except (SettingsError, BackendError) as exc:
        error = str(exc)  # failed outside the except block: no "during handling" chain
    pytest.fail(error, pytrace=False)


@pytest.fixture
def _ingress_plan(request: pytest.FixtureRequest) -> TestPlan:
    return _or_fail(lambda: plan_of(request.node, session_of(request.config)))


@pytest.fixture(scope="session")
def ingress_backend(request: pytest.FixtureRequest) -> Backend:
    """The session's backend (the simulator, or a real cluster)."""
    return _or_fail(session_of(request.config).backend)


@pytest.fixture
def ingress_mode(request: pytest.FixtureRequest) -> str:
    """The target type of this test: its ``ingress_mode`` marker's, else ``--ingress-mode``."""
    marker = request.node.get_closest_marker("ingress_mode")
    if marker is None:
        return session_of(request.config).settings.mode
    modes = _or_fail(lambda: modes_from_marker(marker.args, marker.kwargs, request.node.name))
    return str(getattr(request, "param", modes[0]))


@pytest.fixture
def ingress_service(request: pytest.FixtureRequest, ingress_backend: Backend, ingress_mode: str,
                    _ingress_plan: TestPlan) -> Iterator[Service]:
    """The sample service behind an ingress of this test's target type: ``url``, ``mode``,
    ``pods()``. Torn down after the test."""
    plan = _ingress_plan
    _or_fail(lambda: plan.check_provisioning("ingress_service"))
    service = _or_fail(lambda: ingress_backend.provision(ProvisionRequest(
        test=plan.nodeid, mode=ingress_mode, service=plan.service, alb=plan.alb,
        extras=plan.extras, seed=plan.seed, events=plan.timeline.record,
        timeout=session_of(request.config).settings.provision_timeout,
        customize=lambda manifests: request.config.hook.pytest_ingress_manifests(
            manifests=manifests, nodeid=plan.nodeid, mode=ingress_mode))))
    try:
        yield service
    finally:
        service.teardown()


@pytest.fixture
def ingress_chaos(ingress_service: Service, ingress_backend: Backend,
                  _ingress_plan: TestPlan) -> Chaos:
    """Imperative chaos on this test's service, recorded on the same timeline as the load."""
    return Chaos(ingress_service, _ingress_plan.timeline, rng(_ingress_plan, "ingress_chaos"),
                 ingress_backend.capabilities)


def _check_explicit_url(request: pytest.FixtureRequest, plan: TestPlan) -> None:
    """Something answers at the test's explicit url, or a setup error names where it came
    from: the ingress_load marker, else the session's option, env var or ini key."""
    url, load, clock = plan.load.url, plan.load, plan.timeline.clock
    assert url is not None
    marker = request.node.get_closest_marker("ingress_load")
    origin = f"marker ingress_load url={units.shown(url)}" if marker is not None and \
        "url" in marker.kwargs else session_of(request.config).settings.origin("url")
    check_reachable(url, origin=origin, timeout=clock.wall(load.timeout),
                    dns_timeout=clock.wall(load.dns_timeout), ca_bundle=load.ca_bundle)


@pytest.fixture
def ingress_load(request: pytest.FixtureRequest, ingress_mode: str,
                 _ingress_plan: TestPlan) -> Iterator[IngressLoad]:
    """The load window of this test, with its chaos markers scheduled inside it.

    ``run()`` drives the whole window and fails the test if the SLO (``ingress_slo``) is
    broken; ``start()``, ``sleep()`` and then ``run()`` leave room for imperative chaos.
    """
    plan = _ingress_plan
    session = session_of(request.config)
    schedule = None
    still_terminating = None
    headers: Mapping[str, str] = {}
    if plan.load.url is not None:
        url, mode, backend = plan.load.url, "url", "none"
        _or_fail(lambda: _check_explicit_url(request, plan))
    else:
        service: Service = request.getfixturevalue("ingress_service")
        url, mode, backend = service.url + plan.load.path, service.mode, session.settings.backend
        headers = service.request_headers
        if plan.chaos:
            chaos = Chaos(service, plan.timeline, rng(plan, "markers"), session.capabilities())
            schedule = ChaosSchedule(chaos, plan.chaos)

        def still_terminating() -> list[str]:
            return [f"pod {pod.name}" for pod in service.pods() if pod.shutting_down]
    context = ReportContext(test=plan.nodeid, mode=mode, backend=backend, url=url,
                            seed=plan.seed, connections=plan.load.connections,
                            timeout=plan.load.timeout, run=session.run_id)
    window = IngressLoad(url, plan.load, plan.slo, plan.timeline, schedule,
                         render=lambda result: terminal.render(result, context),
                         still_terminating=still_terminating, headers=headers)
    request.node.stash[WINDOW_KEY] = WindowEntry(window, context,
                                                 list(plan.chaos) if schedule is not None else [])
    try:
        yield window
    finally:
        window.close()
