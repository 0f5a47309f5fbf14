"""The backends the contract suite runs against, and its fixtures.

The suite runs once per entry of :data:`BACKENDS`: a new backend joins it with one line there.
An entry gets the session's fixture request, so that it can reach what its backend runs on (a
session fixture such as :func:`local_cluster`), and returns the factory; a backend that needs
something the machine may lack (a cluster, binaries) skips there with the reason.

Time is compressed: every backend gets :data:`~.support.CLOCK` (one test second = 0.2 wall
seconds) in its :class:`BackendConfig`. One backend serves the session (per xdist worker); each
test provisions its own services through a :class:`~.support.Story`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator

import pytest

from pytest_ingress_chaos.backends import REGISTRY, BackendConfig
from pytest_ingress_chaos.base.backend import Backend
from pytest_ingress_chaos.base.specs import MODES
from pytest_ingress_chaos.localcluster.cluster import LocalCluster
from pytest_ingress_chaos.localcluster.controlplane import find_binaries

from .support import CLOCK, Story

BackendFactory = Callable[[BackendConfig], Backend]
# Given the session's fixture request: the factory of one backend (or pytest.skip(reason)).
BackendEntry = Callable[[pytest.FixtureRequest], BackendFactory]

# Consecutive 2xx through the ingress before a provision counts as steady: enough for three pods
# behind round robin (the plugin's --ingress-steady-requests default is 30).
STEADY_REQUESTS = 10
LOCAL_NODES = 3  # the sample Deployment's replicas, one per node


def _registered(name: str) -> BackendEntry:
    def entry(request: pytest.FixtureRequest) -> BackendFactory:
        return REGISTRY[name].create

    return entry


def _kubernetes_on_local_cluster(request: pytest.FixtureRequest) -> BackendFactory:
    """The kubernetes backend pointed at the session's :func:`local_cluster`."""
    cluster: LocalCluster = request.getfixturevalue("local_cluster")

    def create(config: BackendConfig) -> Backend:
        settings = dataclasses.replace(
            config.settings, backend="kubernetes", kubeconfig=cluster.kubeconfig,
            steady_requests=STEADY_REQUESTS, time_scale=config.clock.time_scale)
        return REGISTRY["kubernetes"].create(dataclasses.replace(config, settings=settings))

    return create


BACKENDS: dict[str, BackendEntry] = {
    "sim": _registered("sim"),
    "kubernetes": _kubernetes_on_local_cluster,
}

_RUN_ID = f"contract-{os.getpid()}-{int(time.time())}"


def _config() -> BackendConfig:
    return BackendConfig(run_id=_RUN_ID, worker=os.environ.get("PYTEST_XDIST_WORKER", "main"),
                         clock=CLOCK)


@pytest.fixture(scope="session", params=sorted(BACKENDS))
def backend_name(request: pytest.FixtureRequest) -> str:
    """The backend under test, as the registry (and ``--ingress-backend``) names it."""
    return str(request.param)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    """A local cluster for the session (per xdist worker: a drain cordons nodes, which tests
    running at the same time must not share), at the suite's time scale. Started only when a
    backend asks for it; skips with the reason when the control-plane binaries are missing."""
    found = find_binaries()
    if isinstance(found, str):
        pytest.skip(found)
    with LocalCluster(nodes=LOCAL_NODES, time_scale=CLOCK.time_scale, binaries=found,
                      stand_in_nodes=True) as running:
        yield running


@pytest.fixture(scope="session")
def backend_factory(backend_name: str, request: pytest.FixtureRequest
                    ) -> Callable[[], Backend]:
    """Creates a fresh backend of this kind; the caller closes it."""
    factory = BACKENDS[backend_name](request)
    return lambda: factory(_config())


@pytest.fixture(scope="session")
def backend(backend_factory: Callable[[], Backend]) -> Iterator[Backend]:
    """The session's backend of this kind."""
    created = backend_factory()
    try:
        yield created
    finally:
        created.close()


@pytest.fixture
def story(backend: Backend, request: pytest.FixtureRequest) -> Iterator[Story]:
    """This test's story: what it provisions is torn down afterwards, then every event it saw
    is checked against the contract (known kind, stamped inside the story)."""
    current = Story(backend, request.node.nodeid)
    yield current
    current.finish()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """The ingress target type: "ip" or "instance"."""
    return str(request.param)
