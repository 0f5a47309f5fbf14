"""The backends the contract suite runs against, and its fixtures.

The suite runs once per entry of :data:`BACKENDS`: a new backend joins it with one line there.
A backend that needs something the machine may lack (a cluster, binaries) calls
``pytest.skip(reason)`` in its factory.

Time is compressed: every backend gets :data:`~.support.CLOCK` (one test second = 0.2 wall
seconds) in its :class:`BackendConfig`. One backend serves the session (per xdist worker); each
test provisions its own services through a :class:`~.support.Story`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from pytest_ingress_chaos.backends import REGISTRY, BackendConfig
from pytest_ingress_chaos.backends.base import Backend
from pytest_ingress_chaos.specs import MODES

from .support import CLOCK, Story

BackendFactory = Callable[[BackendConfig], Backend]


def _registered(name: str) -> BackendFactory:
    def create(config: BackendConfig) -> Backend:
        return REGISTRY[name].create(config)

    return create


BACKENDS: dict[str, BackendFactory] = {
    "sim": _registered("sim"),
    # "kubernetes": _registered("kubernetes"),
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
def backend_factory(backend_name: str) -> Callable[[], Backend]:
    """Creates a fresh backend of this kind; the caller closes it."""
    factory = BACKENDS[backend_name]
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
