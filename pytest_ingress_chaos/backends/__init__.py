"""The backend registry: name -> where its implementation lives, imported only when chosen.

The plugin names no concrete backend: ``--ingress-backend NAME`` looks the name up here. A
backend's markers (settings only it understands) are registered for every run, whichever
backend is chosen, so one test file serves every backend; a backend ignores the others' markers.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..base.backend import Backend
from ..base.clock import TestClock
from ..base.specs import Spec
from ..settings.options import SessionSettings


@dataclass(frozen=True)
class BackendConfig:
    """What every backend gets when the session creates it."""

    run_id: str  # one per pytest run, shared by its xdist workers
    worker: str  # "main", or the xdist worker id ("gw0")
    clock: TestClock
    settings: SessionSettings = field(default_factory=SessionSettings)  # the session's options


@dataclass(frozen=True)
class BackendEntry:
    name: str
    summary: str
    factory: str  # "module:callable", called with a BackendConfig
    markers: str | None = None  # "module:attribute", a {marker: (spec type, help)} mapping
    # Whether pytest's header names what the backend points at (a cluster's context and
    # server); it then connects at start. The simulator starts on first use instead.
    describe_in_header: bool = False
    # "module:function"(settings, ttl, dry_run=, out=) -> exit code: `pytest --ingress-sweep`.
    sweeper: str | None = None
    # "module:function"(settings, run_id, worker) -> message or None: what a dead xdist
    # worker left behind, removed by the controller (its own teardown never ran).
    reaper: str | None = None

    def create(self, config: BackendConfig) -> Backend:
        backend: Backend = _load(self.factory)(config)
        return backend

    def sweep(self, settings: SessionSettings, ttl: float, *, dry_run: bool,
              out: TextIO) -> int | None:
        """Run this backend's sweeper; None when it has none (nothing outlives a session)."""
        if self.sweeper is None:
            return None
        code: int = _load(self.sweeper)(settings, ttl, dry_run=dry_run, out=out)
        return code

    def reap(self, settings: SessionSettings, run_id: str, worker: str) -> str | None:
        """Remove what a dead worker left; None when there was nothing (or no reaper)."""
        if self.reaper is None:
            return None
        said: str | None = _load(self.reaper)(settings, run_id, worker)
        return said

    def marker_specs(self) -> Mapping[str, tuple[type[Spec], str]]:
        if self.markers is None:
            return {}
        specs: Mapping[str, tuple[type[Spec], str]] = _load(self.markers)
        return specs


REGISTRY: Mapping[str, BackendEntry] = {
    entry.name: entry for entry in (
        BackendEntry("sim", "the embedded simulator: a small cluster and an AWS ALB on loopback",
                     "pytest_ingress_chaos.backends.sim.client:SimBackend",
                     "pytest_ingress_chaos.backends.sim.spec:MARKERS"),
        BackendEntry("kubernetes", "a real cluster through the official kubernetes client",
                     "pytest_ingress_chaos.backends.kubernetes.backend:KubernetesBackend",
                     describe_in_header=True,
                     sweeper="pytest_ingress_chaos.backends.kubernetes.sweeper:"
                             "sweep_from_settings",
                     reaper="pytest_ingress_chaos.backends.kubernetes.sweeper:reap_worker"),
    )
}


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)
