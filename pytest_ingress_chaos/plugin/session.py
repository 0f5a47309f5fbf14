"""The session plugin: one object per pytest process holding the session's state, with the
hooks that read or write it (the header, xdist's node hooks, the summary table).

Registered at configure time under :data:`SESSION_NAME`, as pytest-xdist registers its
``DSession`` and pytest-benchmark its ``BenchmarkSession``: a session's state and the hooks
that use it are one object, never module globals. Fixtures find it in ``config.stash``.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from ..backends import REGISTRY, BackendConfig
from ..base.backend import Backend, Capability
from ..base.clock import TestClock
from ..base.errors import BackendError, IngressChaosError
from ..core.plan import BackendTraits
from ..report import index, terminal
from ..report.summary import SummaryRow
from ..settings.markers import MarkerDef
from ..settings.options import SessionSettings

SESSION_NAME = "ingress-chaos-session"
# The summary row of a test's call report, as an attribute of the report: pytest-xdist sends
# a report's attributes to the controller with the report, right after the test.
ROW_ATTRIBUTE = "ingress_summary_row"


def backend_markers() -> list[MarkerDef]:
    """The markers of every registered backend, whichever one this run uses."""
    return [MarkerDef(name, spec, doc) for entry in REGISTRY.values()
            for name, (spec, doc) in entry.marker_specs().items()]


class IngressSession:
    """Settings, run id, seed, the backend (started on first use) and the summary rows of
    every ingress test of this process (of every worker, on the xdist controller)."""

    def __init__(self, settings: SessionSettings, run_id: str, seed: int, worker: str,
                 extra_markers: list[MarkerDef]) -> None:
        self.settings = settings
        self.run_id = run_id  # one per pytest run, shared by its xdist workers
        self.seed = seed
        self.worker = worker  # "main", or the xdist worker id ("gw0")
        self.extra_markers = extra_markers
        self.rows: list[SummaryRow] = []
        self.index: Path | None = None  # the run's HTML index, once written
        self.index_lost: str | None = None  # why the index could not be written, if so
        self._backend: Backend | None = None
        self._backend_error: BackendError | None = None  # why the backend could not start

    @classmethod
    def start(cls, config: pytest.Config, settings: SessionSettings) -> IngressSession:
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        if workerinput is not None:  # an xdist worker: the controller chose run id and seed
            run_id, seed = workerinput["ingress_run_id"], workerinput["ingress_seed"]
            worker = workerinput.get("workerid", "gw?")
        else:
            run_id = uuid.uuid4().hex[:8]
            seed = settings.seed if settings.seed is not None else \
                random.SystemRandom().randrange(1_000_000)
            worker = "main"
        session = cls(settings, run_id, seed, worker, backend_markers())
        config.stash[SESSION_KEY] = session
        config.pluginmanager.register(session, SESSION_NAME)
        return session

    @property
    def clock(self) -> TestClock:
        return TestClock(self.settings.time_scale)

    def backend(self) -> Backend:
        """The session's backend, started on first use. One that cannot start (a kubeconfig
        that cannot be used, an API server that is not there) is tried once: every later use
        gets the same error at once, not another deadline per test."""
        if self._backend_error is not None:
            raise self._backend_error.with_traceback(None)
        if self._backend is None:
            config = BackendConfig(run_id=self.run_id, worker=self.worker, clock=self.clock,
                                   settings=self.settings)
            try:
                self._backend = REGISTRY[self.settings.backend].create(config)
            except BackendError as exc:
                self._backend_error = exc
                raise
        return self._backend

    def started_backend(self) -> Backend:
        """:meth:`backend` for the session's start: an error is a usage error, one line."""
        try:
            return self.backend()
        except IngressChaosError as exc:
            raise pytest.UsageError(f"pytest-ingress-chaos: {exc}") from None

    def capabilities(self) -> frozenset[Capability]:
        return self.backend().capabilities

    def traits(self) -> BackendTraits:
        """What a test's plan needs of the backend; its capabilities start it when asked."""
        own = frozenset(REGISTRY[self.settings.backend].marker_specs())
        return BackendTraits(self.settings.backend, own, self.capabilities)

    def close(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    # --- hooks ------------------------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        s = self.settings
        target = f"url {s.url}" if s.url else f"backend {s.backend}, default mode {s.mode}"
        scale = f", time scale {s.time_scale:g}" if s.time_scale != 1 else ""
        lines = [f"ingress-chaos: {target}, seed {self.seed}, run {self.run_id}{scale}"]
        if self._connects_at_start():
            lines += [f"ingress-chaos: {line}"
                      for line in self.started_backend().describe().splitlines()]
        return lines

    def _connects_at_start(self) -> bool:
        """A backend that names its cluster in the header starts with the session (unless the
        load goes to --ingress-url): a cluster that cannot be used is then one usage error
        before any test, whatever the verbosity."""
        return not self.settings.url and REGISTRY[self.settings.backend].describe_in_header

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # First, so that xdist starts no worker for a cluster that is not there; the workers
        # themselves start their backend on first use (the controller checked the cluster,
        # and a worker that fails anyway fails each test with one line, see fixtures.py).
        if self._connects_at_start() and getattr(session.config, "workerinput", None) is None:
            self.started_backend()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist controller: every worker gets this run's id and seed."""
        node.workerinput["ingress_run_id"] = self.run_id
        node.workerinput["ingress_seed"] = self.seed

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """xdist controller: a dead worker is cleared up after."""
        if error is None:
            return
        # The worker died (os._exit, a crash): its teardown never ran. Clear up after it.
        worker = node.workerinput.get("workerid", "gw?")
        try:
            said = REGISTRY[self.settings.backend].reap(self.settings, self.run_id, worker)
        except IngressChaosError as exc:
            said = f"could not clear up after worker {worker}: {exc}"
        if said:
            node.config.pluginmanager.get_plugin("terminalreporter").write_line(
                f"ingress-chaos: {said}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Every test's row, from this process or (on the xdist controller) a worker."""
        row = getattr(report, ROW_ATTRIBUTE, None)
        if row is not None:
            self.rows.append(SummaryRow.from_json(row))

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport,
                               sched: Any) -> None:
        """xdist controller: the worker died in ``crashitem``; its row says so."""
        worker = getattr(getattr(report, "node", None), "gateway", None)
        self.rows.append(SummaryRow.crashed(crashitem, getattr(worker, "id", "gw?")))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if getattr(session.config, "workeroutput", None) is not None:
            return  # an xdist worker: the controller writes the index
        if self.settings.report_dir is not None:  # the controller, after every worker wrote
            try:
                self.index = index.write(self.settings.report_dir, self.run_id)
            except OSError as exc:  # the directory changed during the run: said, not raised
                self.index_lost = (
                    f"ingress-chaos: the run's index could not be written to "
                    f"{self.settings.report_dir / index.NAME}: {exc.strerror or exc}")

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if getattr(config, "workerinput", None) is not None:
            return
        if self.index_lost is not None:
            terminalreporter.write_line(self.index_lost, yellow=True)
        if not self.rows:
            return
        terminalreporter.write_sep("=", "ingress-chaos summary")
        for line in terminal.summary_table(self.rows):
            terminalreporter.write_line(line)
        if self.index is not None:
            terminalreporter.write_line(f"HTML reports: {self.index}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # Also reached after Ctrl-C, when fixture finalizers may not have run.
        self.close()


SESSION_KEY = pytest.StashKey[IngressSession]()


def session_of(config: pytest.Config) -> IngressSession:
    return config.stash[SESSION_KEY]
