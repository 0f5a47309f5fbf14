"""pytest glue: options, markers, fixtures, report hooks and xdist wiring.

Everything that measures, simulates or decides lives in the pytest-free core; this module reads
the user's markers and options, builds core objects from them, and reports what they found. It
names no concrete backend: the registry (``backends/__init__.py``) does.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import uuid
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..backends import REGISTRY, BackendConfig
from ..base.backend import Backend, Capability, ProvisionRequest, Service
from ..base.clock import TestClock
from ..base.errors import IngressChaosError, IngressSLOViolation, IngressVerdictVoid, SettingsError
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
from ..base.units import describe, format_seconds, positive_age
from ..core.chaos import Chaos, ChaosSchedule, check_against_service
from ..core.loadwindow import IngressLoad
from ..core.result import LoadResult
from ..core.timeline import Timeline
from ..report import html, index, jsonreport, png, progress, recordscsv, terminal
from ..report.context import ReportContext
from ..settings.markers import MarkerDef, marker_help, modes_from_marker, spec_from_marker
from ..settings.options import OptionDef, SessionSettings, options, resolve_session

# How long (wall seconds) provisioning may take before the backend says what it saw.
PROVISION_TIMEOUT = 300.0

_LOAD_MARKERS = {"ingress_load", "ingress_slo", *CHAOS_SPECS}
_PROVISIONING_FIXTURES = {"ingress_service", "ingress_load", "ingress_chaos"}


def _backend_markers() -> list[MarkerDef]:
    """The markers of every registered backend, whichever one this run uses."""
    return [MarkerDef(name, spec, doc) for entry in REGISTRY.values()
            for name, (spec, doc) in entry.marker_specs().items()]


@dataclass
class TestPlan:
    """Everything one test's markers and the session's options say, validated."""

    __test__ = False

    nodeid: str
    load: LoadSpec
    slo: SLOSpec
    service: ServiceSpec
    alb: AlbSpec
    extras: Mapping[str, Spec]
    chaos: list[ChaosSpec]
    seed: int
    timeline: Timeline


@dataclass
class WindowEntry:
    window: IngressLoad
    context: ReportContext
    chaos: list[ChaosSpec]  # the markers' actions, for the live progress line
    published: bool = False
    # The test failure a verdict became, and the verdict's headline (its one-line summary).
    verdict_failure: tuple[BaseException, str] | None = None


@dataclass
class IngressSession:
    """Session state, kept in ``config.stash``: settings, run id, seed, the backend (started
    on first use) and the summary rows of every ingress test."""

    settings: SessionSettings
    run_id: str
    seed: int
    worker: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    extra_markers: list[MarkerDef] = field(default_factory=list)
    index: Path | None = None  # the run's HTML index, once written
    _backend: Backend | None = None

    @property
    def clock(self) -> TestClock:
        return TestClock(self.settings.time_scale)

    def backend(self) -> Backend:
        if self._backend is None:
            config = BackendConfig(run_id=self.run_id, worker=self.worker, clock=self.clock,
                                   settings=self.settings)
            self._backend = REGISTRY[self.settings.backend].create(config)
        return self._backend

    def capabilities(self) -> frozenset[Capability]:
        return self.backend().capabilities

    def close(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()


SESSION_KEY = pytest.StashKey[IngressSession]()
WINDOW_KEY = pytest.StashKey[WindowEntry]()
LIVE_KEY = pytest.StashKey[progress.LiveProgress]()  # the live progress line now shown
OPTIONS_KEY = pytest.StashKey[tuple[OptionDef, ...]]()


# --- options and configuration --------------------------------------------------------------


def _options() -> tuple[OptionDef, ...]:
    return options(tuple(REGISTRY))


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ingress-chaos", "ingress availability under chaos")
    group.addoption("--ingress-sweep", action="store_true", default=False,
                    help="run no test: delete what killed sessions of this plugin left on the "
                         "backend (kubernetes: its labelled namespaces older than "
                         "--ingress-sweep-ttl), then exit")
    group.addoption("--ingress-sweep-ttl", default="1h", metavar="DURATION",
                    help="with --ingress-sweep: only what is older than this (default 1h)")
    group.addoption("--ingress-sweep-dry-run", action="store_true", default=False,
                    help="with --ingress-sweep: list what would be deleted, delete nothing")
    for option in _options():
        group.addoption(option.cli, dest=f"ingress_{option.name}", **option.cli_arguments(),
                        help=f"{option.help}. Also ini {option.ini}, env {option.env}.")
        # Typed numbers need pytest 8.4's int/float ini types; older pytest reads strings.
        typed = option.ini_type if pytest.version_tuple >= (8, 4) else "string"
        parser.addini(option.ini, help=option.help, default=None,
                      type=typed)  # type: ignore[arg-type]


def _ini(config: pytest.Config, option: OptionDef) -> object:
    try:
        return config.getini(option.ini)
    except (ValueError, TypeError) as exc:  # not the int or float it must be (or empty)
        accepted = describe(option.parse)
        expected = f"; expected {accepted}" if accepted else ""
        raise pytest.UsageError(
            f"pytest-ingress-chaos: ini {option.ini}: {exc}{expected}") from None


def _settings(config: pytest.Config) -> SessionSettings:
    """The session's settings from the command line, the environment and the ini file."""
    definitions = _options()
    cli = {option.name: config.getoption(f"ingress_{option.name}") for option in definitions}
    ini = {option.name: _ini(config, option) for option in definitions}
    try:
        return resolve_session(definitions, cli, ini, os.environ)
    except SettingsError as exc:
        raise pytest.UsageError(f"pytest-ingress-chaos: {exc}") from None


def pytest_configure(config: pytest.Config) -> None:
    extra = _backend_markers()
    for line in marker_help(extra):
        config.addinivalue_line("markers", line)
    settings = _settings(config)
    if settings.report_dir is not None:  # at start, not after the first window
        try:
            settings.report_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise pytest.UsageError(
                f"pytest-ingress-chaos: --ingress-report-dir={str(settings.report_dir)!r}: "
                f"cannot create the directory: {exc.strerror}") from None
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: the controller chose run id and seed
        run_id, seed = workerinput["ingress_run_id"], workerinput["ingress_seed"]
        worker = workerinput.get("workerid", "gw?")
    else:
        run_id = uuid.uuid4().hex[:8]
        seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(
            1_000_000)
        worker = "main"
    session = IngressSession(settings, run_id, seed, worker, extra_markers=extra)
    config.stash[SESSION_KEY] = session
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(session), "ingress-chaos-xdist")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``pytest --ingress-sweep``: the backend's sweeper instead of a test run."""
    if not config.getoption("ingress_sweep"):
        return None
    settings = _settings(config)  # before pytest_configure: no session exists yet
    try:
        ttl = positive_age(config.getoption("ingress_sweep_ttl"))
    except ValueError as exc:
        raise pytest.UsageError(f"pytest-ingress-chaos: --ingress-sweep-ttl: {exc}") from None
    code = REGISTRY[settings.backend].sweep(
        settings, ttl, dry_run=config.getoption("ingress_sweep_dry_run"), out=sys.stdout)
    if code is None:
        print(f"pytest-ingress-chaos: backend {settings.backend} leaves nothing behind to sweep")
        return 0
    return code


def pytest_unconfigure(config: pytest.Config) -> None:
    # Also reached after Ctrl-C, when fixture finalizers may not have run.
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = config.stash[SESSION_KEY]
    s = session.settings
    target = f"url {s.url}" if s.url else f"backend {s.backend}, default mode {s.mode}"
    scale = f", time scale {s.time_scale:g}" if s.time_scale != 1 else ""
    lines = [f"ingress-chaos: {target}, seed {session.seed}, run {session.run_id}{scale}"]
    if not s.url and REGISTRY[s.backend].describe_in_header:
        try:
            lines += [f"ingress-chaos: {line}"
                      for line in session.backend().describe().splitlines()]
        except IngressChaosError as exc:
            raise pytest.UsageError(f"pytest-ingress-chaos: {exc}") from None
    return lines


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
        if error is None:
            return
        # The worker died (os._exit, a crash): its teardown never ran. Clear up after it.
        worker = node.workerinput.get("workerid", "gw?")
        settings = self.session.settings
        try:
            said = REGISTRY[settings.backend].reap(settings, self.session.run_id, worker)
        except IngressChaosError as exc:
            said = f"could not clear up after worker {worker}: {exc}"
        if said:
            node.config.pluginmanager.get_plugin("terminalreporter").write_line(
                f"ingress-chaos: {said}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["ingress_rows"] = state.rows
    elif state.settings.report_dir is not None:  # the controller, after every worker wrote
        state.index = index.write(state.settings.report_dir, state.run_id)


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
    provisioning = {"sample_service", "alb",
                    *(m.name for m in item.config.stash[SESSION_KEY].extra_markers)}
    for marker in item.iter_markers():
        needs = ({"ingress_load"} if marker.name in _LOAD_MARKERS
                 else _PROVISIONING_FIXTURES if marker.name in provisioning
                 else {*_PROVISIONING_FIXTURES, "ingress_mode"} if marker.name == "ingress_mode"
                 else None)
        if needs is not None and not fixtures & needs:
            pytest.fail(f"marker {marker.name} on {item.name} has no effect: the test uses "
                        f"none of the fixtures {', '.join(sorted(needs))}", pytrace=False)


def _marker_spec(item: pytest.Item, name: str, base: Spec) -> Any:
    marker = item.get_closest_marker(name)
    if marker is None:
        return base
    return spec_from_marker(type(base), name, marker.args, marker.kwargs, item.name, base)


def _plan(item: pytest.Item, session: IngressSession) -> TestPlan:
    load = _marker_spec(item, "ingress_load", session.settings.load_defaults())
    try:  # the defaults were checked at start: a failure here comes from the marker
        load.check_window(session.settings.time_scale)
    except FieldError as exc:
        raise SettingsError(f"marker ingress_load on {item.name}: {exc}") from None
    chaos: list[ChaosSpec] = [
        spec_from_marker(spec_type, name, marker.args, marker.kwargs, item.name)
        for name, spec_type in CHAOS_SPECS.items() for marker in item.iter_markers(name)
    ]
    for action in chaos:
        if action.at >= load.duration:
            raise SettingsError(
                f"marker {action.kind} on {item.name}: at={format_seconds(action.at)} is not "
                f"inside the load window (duration={format_seconds(load.duration)})")
        pause = action.wait_before_drain if isinstance(action, DrainNode) else None
        if pause is not None and action.at + pause >= load.duration:
            raise SettingsError(
                f"marker drain_node on {item.name}: the drain comes after at="
                f"{format_seconds(action.at)} and the deregistration_wait of "
                f"{format_seconds(pause)}, at {format_seconds(action.at + pause)}: not inside "
                f"the load window (duration={format_seconds(load.duration)})")
    extras = {marker.name: _marker_spec(item, marker.name, marker.spec())
              for marker in session.extra_markers}
    service = _marker_spec(item, "sample_service", ServiceSpec())
    if load.url is not None:
        for name in (*CHAOS_SPECS, "sample_service", "alb", "ingress_mode", *extras):
            if item.get_closest_marker(name) is not None:
                raise SettingsError(
                    f"marker {name} on {item.name} needs a provisioned service, but the load "
                    f"goes to the explicit url={load.url!r} (from the ingress_load marker or "
                    f"--ingress-url); remove one of the two")
    else:
        check_against_service(chaos, service, _node_count(session, extras), item.name)
        if any(isinstance(a, KillPods) and a.signal for a in chaos) and \
                Capability.CONTAINER_KILL not in session.capabilities():
            raise SettingsError(
                f"marker kill_pods on {item.name}: signal= kills a container only, which "
                f"backend {session.settings.backend} cannot do; delete the pod instead (no "
                "signal=)")
    return TestPlan(
        nodeid=item.nodeid,
        load=load,
        slo=_marker_spec(item, "ingress_slo", SLOSpec()),
        service=service,
        alb=_marker_spec(item, "alb", AlbSpec()),
        extras=extras,
        chaos=chaos,
        seed=session.seed,
        timeline=Timeline(session.clock),
    )


def _node_count(session: IngressSession, extras: Mapping[str, Spec]) -> tuple[str, int] | None:
    """The cluster's node count when the session's backend takes it from one of its markers
    (a ``nodes`` field: the simulator's ``sim``), with that marker's name; else None. Another
    backend's markers say nothing about this one's cluster."""
    own = REGISTRY[session.settings.backend].marker_specs()
    for name, spec in extras.items():
        nodes = getattr(spec, "nodes", None)
        if name in own and isinstance(nodes, int):
            return name, nodes
    return None


def _rng(plan: TestPlan, user: str) -> random.Random:
    """Victims depend on the seed, the test and who chooses (the marker schedule or the
    ingress_chaos fixture), not on which xdist worker runs the test or which thread acts
    first."""
    return random.Random(f"{plan.seed}:{plan.nodeid}:{user}")


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
def ingress_service(request: pytest.FixtureRequest, ingress_backend: Backend, ingress_mode: str,
                    _ingress_plan: TestPlan) -> Iterator[Service]:
    """The sample service behind an ingress of this test's target type: ``url``, ``mode``,
    ``pods()``. Torn down after the test."""
    plan = _ingress_plan
    if plan.load.url is not None:
        pytest.fail(f"ingress_service provisions a service, but the load of {plan.nodeid} goes "
                    f"to the explicit url={plan.load.url!r}", pytrace=False)
    service = ingress_backend.provision(ProvisionRequest(
        test=plan.nodeid, mode=ingress_mode, service=plan.service, alb=plan.alb,
        extras=plan.extras, seed=plan.seed, events=plan.timeline.record,
        timeout=PROVISION_TIMEOUT,
        customize=lambda manifests: request.config.hook.pytest_ingress_manifests(
            manifests=manifests, nodeid=plan.nodeid, mode=ingress_mode)))
    try:
        yield service
    finally:
        service.teardown()


@pytest.fixture
def ingress_chaos(ingress_service: Service, ingress_backend: Backend,
                  _ingress_plan: TestPlan) -> Chaos:
    """Imperative chaos on this test's service, recorded on the same timeline as the load."""
    return Chaos(ingress_service, _ingress_plan.timeline, _rng(_ingress_plan, "ingress_chaos"),
                 ingress_backend.capabilities)


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
    still_terminating = None
    headers: Mapping[str, str] = {}
    if plan.load.url is not None:
        url, mode, backend = plan.load.url, "url", "none"
    else:
        service: Service = request.getfixturevalue("ingress_service")
        url, mode, backend = service.url + plan.load.path, service.mode, session.settings.backend
        headers = service.request_headers
        if plan.chaos:
            chaos = Chaos(service, plan.timeline, _rng(plan, "markers"), session.capabilities())
            schedule = ChaosSchedule(chaos, plan.chaos)

        def still_terminating() -> list[str]:
            return [f"pod {pod.name}" for pod in service.pods() if pod.terminating]
    context = ReportContext(test=plan.nodeid, mode=mode, backend=backend, url=url,
                            seed=plan.seed, connections=plan.load.connections,
                            timeout=plan.load.timeout, run=session.run_id)
    window = IngressLoad(url, plan.load, plan.slo, plan.timeline, schedule,
                         render=lambda result: terminal.render(result, context),
                         still_terminating=still_terminating, headers=headers)
    request.node.stash[WINDOW_KEY] = WindowEntry(window, context,
                                                 plan.chaos if schedule is not None else [])
    try:
        yield window
    finally:
        window.close()


# --- verdict and reports -------------------------------------------------------------------


def _fail(item: pytest.Item, error: BaseException) -> BaseException:
    """A verdict or a failure of the plugin's machinery as a plain test failure: the message
    says what happened, with no traceback through the plugin. A verdict's message is the whole
    report; its headline is kept for the one-line summaries (see pytest_runtest_makereport)."""
    if isinstance(error, (IngressSLOViolation, IngressVerdictVoid)):
        failure = pytest.fail.Exception(str(error), pytrace=False)
        entry = item.stash.get(WINDOW_KEY, None)
        if entry is not None:
            entry.verdict_failure = (failure, terminal.headline(error.result, entry.context))
        return failure
    return pytest.fail.Exception(f"{type(error).__name__}: {error}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    try:
        outcome = yield
    except (IngressSLOViolation, IngressVerdictVoid, IngressChaosError) as error:
        raise _fail(item, error) from None
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
        except (IngressSLOViolation, IngressVerdictVoid, IngressChaosError) as error:
            raise _fail(item, error) from None
    return outcome


# trylast: the innermost wrapper, inside the capture plugin's, so the line is written while
# the test's output capture can be suspended, and gone before pytest writes the result.
@pytest.hookimpl(wrapper=True, trylast=True, specname="pytest_runtest_call")
def pytest_runtest_call_progress(item: pytest.Item) -> Generator[None, object, object]:
    """The live progress line of a load window on a terminal, while the test body runs."""
    entry = item.stash.get(WINDOW_KEY, None)
    live = _live_progress(item.config, entry) if entry is not None else None
    if live is None:
        return (yield)
    item.config.stash[LIVE_KEY] = live
    live.start()
    try:
        return (yield)
    finally:
        del item.config.stash[LIVE_KEY]
        live.stop()


def pytest_enter_pdb(config: pytest.Config) -> None:
    """A debugger inside the window (breakpoint()) gets the terminal to itself."""
    live = config.stash.get(LIVE_KEY, None)
    if live is not None:
        live.end()


def _live_progress(config: pytest.Config, entry: WindowEntry) -> progress.LiveProgress | None:
    """Like pytest's own rewritten "collecting ..." line: only on a terminal and not with -q.
    Not with -s either, where the test's own output would be cut by the rewritten line (pytest
    drops its progress percentage there too), nor with live logging, which writes during the
    test; never in an xdist worker, whose output goes to the controller."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if (reporter is None or not reporter.isatty or reporter.verbosity < 0
            or os.environ.get("TERM") == "dumb" or config.getoption("capture", "no") == "no"
            or _live_logging(config) or hasattr(config, "workerinput")):
        return None

    def write(text: str) -> None:
        # The thread writes during the test's call phase, while pytest captures its output.
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write(text, flush=True)

    writer = config.get_terminal_writer()
    window = entry.window
    return progress.LiveProgress(
        progress.WindowProgress(window.timeline, window.spec, entry.chaos), write,
        writer.fullwidth, fresh_line=writer.width_of_current_line == 0)


def _live_logging(config: pytest.Config) -> bool:
    try:
        return config.getoption("log_cli_level") is not None or bool(config.getini("log_cli"))
    except ValueError:  # -p no:logging
        return False


# tryfirst: the outermost wrapper, so the report it sees has been through pytest's xfail handling.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Publish a finished window's result, whatever the test did after ``run()``: its own
    assertion may fail the test, and the figures still belong in every report."""
    entry = item.stash.get(WINDOW_KEY, None)
    result = entry.window.result if entry is not None else None
    if entry is None or result is None or entry.published or call.when != "call":
        return (yield)
    entry.published = True
    _publish_before_report(item, entry, result)
    report = yield
    _shorten_crash_message(call, entry, report)
    _summary_row(item, entry, result, report)
    return report


def _shorten_crash_message(call: pytest.CallInfo[None], entry: WindowEntry,
                           report: pytest.TestReport) -> None:
    """A failed verdict's crash message becomes its headline. pytest prints the crash message
    in the short test summary, whole when it runs on CI (the CI environment variable), and
    JUnit XML puts it in the failure's message attribute: the report would be there twice.
    The failure's long form (the FAILURES section, the JUnit body) keeps the whole report."""
    if entry.verdict_failure is None or call.excinfo is None:
        return
    failure, headline = entry.verdict_failure
    crash = getattr(report.longrepr, "reprcrash", None)
    if call.excinfo.value is failure and crash is not None:
        crash.message = f"{type(failure).__name__}: {headline}"


def _publish_before_report(item: pytest.Item, entry: WindowEntry, result: LoadResult) -> None:
    """What goes into the test's report: section, JUnit properties, the JSON report."""
    session = item.config.stash[SESSION_KEY]
    if not result.violations:  # a failure's message is the report already
        item.add_report_section("call", "ingress", terminal.render(result, entry.context))
    for name, value in (("requests", result.requests), ("errors", result.errors),
                        ("achieved_rate", round(result.achieved_rate, 2)),
                        ("p99_ms", round(result.latency["p99"], 2)),
                        ("verdict", result.verdict),
                        ("mode", entry.context.mode), ("seed", entry.context.seed)):
        item.user_properties.append((f"ingress_{name}", value))
    if session.settings.report_dir is not None:
        data = item.config.hook.pytest_ingress_generate_json(result=result,
                                                             context=entry.context, item=item)
        item.config.hook.pytest_ingress_update_json(report=data, item=item)
        path = jsonreport.write(session.settings.report_dir, data)
        item.user_properties.append(("ingress_report", str(path)))
        page = html.write(path.with_suffix(".html"), data)
        item.user_properties.append(("ingress_html", str(page)))
        if png.available():  # the plot extra
            chart = png.write(path.with_suffix(".png"), data)
            item.user_properties.append(("ingress_png", str(chart)))
        if session.settings.records:
            records = recordscsv.write(session.settings.report_dir, entry.context.test,
                                       entry.window.timeline)
            item.user_properties.append(("ingress_records", str(records)))


@pytest.hookimpl(trylast=True)
def pytest_ingress_generate_json(result: LoadResult, context: ReportContext,
                                 item: pytest.Item) -> dict[str, Any]:
    """The default JSON report: everything in the result, with its context."""
    return jsonreport.to_json(result, context)


def _summary_row(item: pytest.Item, entry: WindowEntry, result: LoadResult,
                 report: pytest.TestReport) -> None:
    if hasattr(report, "wasxfail"):
        verdict = "xfail" if report.skipped else "XPASS"
    elif result.verdict == "void":
        verdict = "VOID"
    else:
        verdict = "ok" if report.passed else "FAILED"
    item.config.stash[SESSION_KEY].rows.append({
        "test": item.nodeid, "mode": entry.context.mode, "requests": result.requests,
        "errors": result.errors, "by_outcome": result.by_outcome,
        "windows": [(round(w.start, 2), round(w.end, 2)) for w in result.error_windows],
        "disruption": terminal.disruption_cell(result), "verdict": verdict,
        "dereg_lag": terminal.lag_cell(result),
    })


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash[SESSION_KEY]
    if not session.rows or getattr(config, "workerinput", None) is not None:
        return
    terminalreporter.write_sep("=", "ingress-chaos summary")
    for line in terminal.summary_table(session.rows):
        terminalreporter.write_line(line)
    if session.index is not None:
        terminalreporter.write_line(f"HTML reports: {session.index}")
