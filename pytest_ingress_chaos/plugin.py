"""pytest glue: options, markers, fixtures, report hooks and xdist wiring.

Everything that measures, simulates or decides lives in the pytest-free core; this module reads
the user's markers and options, builds core objects from them, and reports what they found.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .backends.base import Backend, Service
from .backends.sim.client import SimBackend, SimulatorError
from .chaos import Chaos, ChaosError, ChaosSchedule
from .load import LoadGeneratorError
from .report import jsonreport, terminal
from .report.context import ReportContext
from .settings import (
    CHAOS_MARKERS,
    OPTIONS,
    AlbSpec,
    ChaosSpec,
    KillPods,
    LoadSpec,
    RolloutRestart,
    ServiceSpec,
    SessionSettings,
    SettingsError,
    SLOSpec,
    modes_from_marker,
    resolve_session,
    spec_from_marker,
)
from .timeline import LoadResult, Timeline
from .units import format_seconds
from .window import IngressLoad, IngressSLOViolation

MARKERS = {
    "ingress_mode": "ingress_mode(*modes): target type(s), 'ip' and/or 'instance'; several "
                    "modes make one test per mode.",
    "ingress_load": "ingress_load(rate=60, duration='20s', connections=100, timeout='2s', "
                    "keepalive=True, path='/', url=None): the constant-rate load window.",
    "ingress_slo": "ingress_slo(max_errors=0, max_error_rate=None, p99=None, ignore=()): the "
                   "verdict; None switches a check off.",
    "sample_service": "sample_service(replicas=3, nodes=3, prestop_sleep='0s', "
                      "grace_period='30s', on_sigterm='exit', readiness_delay='0s', "
                      "readiness_gate=False, external_traffic_policy='Cluster', "
                      "keepalive_timeout=None): how the sample app is deployed.",
    "kill_pods": "kill_pods(at='0s', count=1, grace_period=None, force=False, signal=None): "
                 "delete pods (or, with signal, kill their container) at an offset from load "
                 "start.",
    "rollout_restart": "rollout_restart(at='0s', max_surge='25%', max_unavailable='25%'): "
                       "kubectl rollout restart at an offset from load start.",
    "scale_deployment": "scale_deployment(at='0s', replicas=1): scale the sample Deployment.",
    "drain_node": "drain_node(at='0s', count=1): cordon nodes running pods, evict the pods, "
                  "terminate the nodes.",
    "alb": "alb(deregistration_delay='300s', healthcheck_interval='15s', "
           "healthcheck_timeout='5s', healthy_threshold=2, unhealthy_threshold=2, "
           "registration_lag='10s', deregistration_lag='10s', lag_jitter='2s', "
           "idle_timeout='60s', algorithm='round_robin'): the simulated ALB and controller.",
}
_LOAD_MARKERS = {"ingress_load", "ingress_slo", *CHAOS_MARKERS}
_PROVISIONING_FIXTURES = {"ingress_service", "ingress_load", "ingress_chaos"}


@dataclass
class TestPlan:
    """Everything one test's markers and the session's options say, validated."""

    nodeid: str
    load: LoadSpec
    slo: SLOSpec
    service: ServiceSpec
    alb: AlbSpec
    chaos: list[ChaosSpec]
    seed: int
    timeline: Timeline
    rng: random.Random


@dataclass
class WindowEntry:
    window: IngressLoad
    context: ReportContext


class IngressSession:
    """Session state, kept in ``config.stash``: settings, run id, seed, the backend (started
    on first use) and the summary rows of every ingress test."""

    def __init__(self, settings: SessionSettings, run_id: str, seed: int, worker: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self.seed = seed
        self.worker = worker
        self.rows: list[dict[str, Any]] = []
        self._backend: Backend | None = None

    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = SimBackend(time_scale=self.settings.time_scale)
        return self._backend

    def close(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()


SESSION_KEY = pytest.StashKey[IngressSession]()
WINDOW_KEY = pytest.StashKey[WindowEntry]()


# --- options and configuration --------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ingress-chaos", "ingress availability under chaos")
    for option in OPTIONS:
        group.addoption(option.cli, dest=f"ingress_{option.name}", default=None,
                        metavar=option.metavar,
                        help=f"{option.help}. Also ini {option.ini}, env {option.env}.")
        parser.addini(option.ini, help=option.help, default=None)


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name.split('(')[0]}: {text}")
    cli = {option.name: config.getoption(f"ingress_{option.name}") for option in OPTIONS}
    ini = {option.name: config.getini(option.ini) for option in OPTIONS}
    try:
        settings = resolve_session(cli, ini, os.environ)
    except SettingsError as exc:
        raise pytest.UsageError(f"pytest-ingress-chaos: {exc}") from None
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: the controller chose run id and seed
        run_id, seed = workerinput["ingress_run_id"], workerinput["ingress_seed"]
        worker = workerinput.get("workerid", "gw?")
    else:
        run_id = uuid.uuid4().hex[:8]
        seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(
            1_000_000)
        worker = "main"
    session = IngressSession(settings, run_id, seed, worker)
    config.stash[SESSION_KEY] = session
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(session), "ingress-chaos-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    # Also reached after Ctrl-C, when fixture finalizers may not have run.
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def pytest_report_header(config: pytest.Config) -> str:
    session = config.stash[SESSION_KEY]
    s = session.settings
    target = f"url {s.url}" if s.url else f"backend {s.backend}, default mode {s.mode}"
    scale = f", time scale {s.time_scale:g}" if s.time_scale != 1 else ""
    return f"ingress-chaos: {target}, seed {session.seed}, run {session.run_id}{scale}"


class _XdistHooks:
    """Registered only when pytest-xdist is installed."""

    def __init__(self, session: IngressSession) -> None:
        self.session = session

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["ingress_run_id"] = self.session.run_id
        node.workerinput["ingress_seed"] = self.session.seed

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        self.session.rows.extend(getattr(node, "workeroutput", {}).get("ingress_rows", []))


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["ingress_rows"] = session.config.stash[SESSION_KEY].rows


# --- markers -> plan ----------------------------------------------------------------------


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
    for marker in item.iter_markers():
        needs = ({"ingress_load"} if marker.name in _LOAD_MARKERS
                 else _PROVISIONING_FIXTURES if marker.name in ("sample_service", "alb")
                 else {*_PROVISIONING_FIXTURES, "ingress_mode"} if marker.name == "ingress_mode"
                 else None)
        if needs is not None and not fixtures & needs:
            pytest.fail(f"marker {marker.name} on {item.name} has no effect: the test uses "
                        f"none of the fixtures {', '.join(sorted(needs))}", pytrace=False)


def _marker_spec(item: pytest.Item, name: str, base: Any) -> Any:
    marker = item.get_closest_marker(name)
    if marker is None:
        return base
    return spec_from_marker(type(base), name, marker.args, marker.kwargs, item.name, base)


def _plan(item: pytest.Item, session: IngressSession) -> TestPlan:
    load = _marker_spec(item, "ingress_load", session.settings.load_defaults())
    chaos: list[ChaosSpec] = [
        spec_from_marker(spec_type, name, marker.args, marker.kwargs, item.name)
        for name, spec_type in CHAOS_MARKERS.items() for marker in item.iter_markers(name)
    ]
    for action in chaos:
        if isinstance(action, KillPods) and action.signal and (
                action.force or action.grace_period is not None):
            raise SettingsError(
                f"marker kill_pods on {item.name}: signal={action.signal!r} kills the container "
                "only and does not go with force= or grace_period=, which delete the pod")
        if isinstance(action, RolloutRestart) and action.max_surge == 0 == \
                action.max_unavailable:
            raise SettingsError(
                f"marker rollout_restart on {item.name}: max_surge=0 and max_unavailable=0: "
                "the rollout could never make progress; allow one of them")
        if action.at >= load.duration:
            raise SettingsError(
                f"marker {action.kind} on {item.name}: at={format_seconds(action.at)} is not "
                f"inside the load window (duration={format_seconds(load.duration)})")
    if load.url is not None:
        for name in (*CHAOS_MARKERS, "sample_service", "alb", "ingress_mode"):
            if item.get_closest_marker(name) is not None:
                raise SettingsError(
                    f"marker {name} on {item.name} needs a provisioned service, but the load "
                    f"goes to the explicit url={load.url!r} (from the ingress_load marker or "
                    f"--ingress-url); remove one of the two")
    return TestPlan(
        nodeid=item.nodeid,
        load=load,
        slo=_marker_spec(item, "ingress_slo", SLOSpec()),
        service=_marker_spec(item, "sample_service", ServiceSpec()),
        alb=_marker_spec(item, "alb", AlbSpec()),
        chaos=chaos,
        seed=session.seed,
        timeline=Timeline(time_scale=session.settings.time_scale),
        # Victims depend on the seed and the test only, not on which xdist worker runs it.
        rng=random.Random(f"{session.seed}:{item.nodeid}"),
    )


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def _ingress_plan(request: pytest.FixtureRequest) -> TestPlan:
    session = request.config.stash[SESSION_KEY]
    try:
        plan = _plan(request.node, session)
    except SettingsError as exc:
        error = str(exc)  # failed outside the except block: no "during handling" chain
    else:
        return plan
    pytest.fail(error, pytrace=False)


@pytest.fixture(scope="session")
def ingress_backend(request: pytest.FixtureRequest) -> Backend:
    """The session's backend (the simulator, or a real cluster)."""
    return request.config.stash[SESSION_KEY].backend()


@pytest.fixture
def ingress_mode(request: pytest.FixtureRequest) -> str:
    """The target type of this test: its ``ingress_mode`` marker's, else ``--ingress-mode``."""
    marker = request.node.get_closest_marker("ingress_mode")
    if marker is None:
        return request.config.stash[SESSION_KEY].settings.mode
    try:
        modes = modes_from_marker(marker.args, marker.kwargs, request.node.name)
    except SettingsError as exc:
        error = str(exc)
    else:
        return str(getattr(request, "param", modes[0]))
    pytest.fail(error, pytrace=False)


@pytest.fixture
def ingress_service(ingress_backend: Backend, ingress_mode: str,
                    _ingress_plan: TestPlan) -> Iterator[Service]:
    """The sample service behind an ingress of this test's target type: ``url``, ``mode``,
    ``pods()``. Torn down after the test."""
    plan = _ingress_plan
    if plan.load.url is not None:
        pytest.fail(f"ingress_service provisions a service, but the load of {plan.nodeid} goes "
                    f"to the explicit url={plan.load.url!r}", pytrace=False)
    service = ingress_backend.provision(plan.service, plan.alb, ingress_mode, plan.timeline,
                                        plan.seed)
    try:
        yield service
    finally:
        service.teardown()


@pytest.fixture
def ingress_chaos(ingress_service: Service, _ingress_plan: TestPlan) -> Chaos:
    """Imperative chaos on this test's service, recorded on the same timeline as the load."""
    return Chaos(ingress_service, _ingress_plan.timeline, _ingress_plan.rng)


@pytest.fixture
def ingress_load(request: pytest.FixtureRequest, ingress_mode: str,
                 _ingress_plan: TestPlan) -> Iterator[IngressLoad]:
    """The load window of this test, with its chaos markers scheduled inside it.

    ``run()`` drives the whole window and fails the test if the SLO (``ingress_slo``) is
    broken; ``start()``, ``sleep()`` and then ``run()`` leave room for imperative chaos.
    """
    plan = _ingress_plan
    session = request.config.stash[SESSION_KEY]
    schedule = None
    if plan.load.url is not None:
        url, mode, backend = plan.load.url, "url", "none"
    else:
        service: Service = request.getfixturevalue("ingress_service")
        url, mode, backend = service.url + plan.load.path, service.mode, session.settings.backend
        if plan.chaos:
            chaos = Chaos(service, plan.timeline, plan.rng)
            schedule = ChaosSchedule(chaos, plan.chaos, plan.timeline.time_scale)
    context = ReportContext(test=plan.nodeid, mode=mode, backend=backend, url=url,
                            seed=plan.seed, connections=plan.load.connections,
                            timeout=plan.load.timeout)
    window = IngressLoad(url, plan.load, plan.slo, plan.timeline, schedule,
                         render=lambda result: terminal.render(result, context))
    request.node.stash[WINDOW_KEY] = WindowEntry(window, context)
    try:
        yield window
    finally:
        window.close()


# --- verdict and reports -------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    try:
        outcome = yield
    except IngressSLOViolation as violation:
        _publish(item, violation.result)
        raise pytest.fail.Exception(str(violation), pytrace=False) from None
    except (ChaosError, LoadGeneratorError, SimulatorError) as error:
        # The plugin's own machinery failed: say what, without a traceback through it.
        raise pytest.fail.Exception(f"{type(error).__name__}: {error}", pytrace=False) from None
    entry = item.stash.get(WINDOW_KEY, None)
    if entry is None:
        return outcome
    window = entry.window
    if not window.started:
        pytest.fail(f"{item.name} requested ingress_load but never started the load window; "
                    "call ingress_load.run()", pytrace=False)
    if not window.finished:  # started but not finished: the test body ended inside the window
        try:
            window.run()
        except IngressSLOViolation as violation:
            _publish(item, violation.result)
            raise pytest.fail.Exception(str(violation), pytrace=False) from None
    assert window.result is not None
    _publish(item, window.result)
    return outcome


def _publish(item: pytest.Item, result: LoadResult) -> None:
    """Report one finished window: report section, JUnit properties, JSON, summary row."""
    entry = item.stash[WINDOW_KEY]
    session = item.config.stash[SESSION_KEY]
    if not result.violations:  # a failure's message is the report already
        item.add_report_section("call", "ingress", terminal.render(result, entry.context))
    for name, value in (("requests", result.requests), ("errors", result.errors),
                        ("achieved_rate", round(result.achieved_rate, 2)),
                        ("p99_ms", round(result.latency["p99"], 2)),
                        ("mode", entry.context.mode), ("seed", entry.context.seed)):
        item.user_properties.append((f"ingress_{name}", value))
    if session.settings.report_dir is not None:
        path = jsonreport.write(session.settings.report_dir,
                                jsonreport.to_json(result, entry.context))
        item.user_properties.append(("ingress_report", str(path)))
    session.rows.append({
        "test": item.nodeid, "mode": entry.context.mode, "requests": result.requests,
        "errors": result.errors, "by_outcome": result.by_outcome,
        "windows": [(round(w.start, 2), round(w.end, 2)) for w in result.error_windows],
        "passed": not result.violations,
    })


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = config.stash[SESSION_KEY].rows
    if not rows or getattr(config, "workerinput", None) is not None:
        return
    terminalreporter.write_sep("=", "ingress-chaos summary")
    for line in terminal.summary_table(rows):
        terminalreporter.write_line(line)
