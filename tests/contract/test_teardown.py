"""teardown() and close(): idempotent, and they end what is in progress instead of hanging."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from pytest_ingress_chaos.base.backend import Backend, Service
from pytest_ingress_chaos.base.errors import BackendError
from pytest_ingress_chaos.base.specs import ServiceSpec

from .support import WAIT_TIMEOUT, Story, answers, eventually, hits


def test_teardown_is_idempotent_and_stops_the_url(story: Story, mode: str) -> None:
    service = story.provision(mode)
    hits(service, {pod.name for pod in service.pods()})
    service.teardown()
    service.teardown()
    eventually(lambda: not answers(service), f"{service.url} stopped answering", 10.0)
    # It stays down.
    time.sleep(0.3)
    assert not answers(service)


# New pods take 20 test seconds (4 s wall) to become Ready, and the app ignores SIGTERM with a
# long grace period: a rollout or a drain in progress lasts long enough to be torn down under.
SLOW = ServiceSpec(readiness_delay=20.0, on_sigterm="ignore", grace_period=120.0)


def _rollout(service: Service) -> None:
    service.rollout_restart(1, 0, wait=True, timeout=WAIT_TIMEOUT)


def _drain(service: Service) -> None:
    service.drain_node(service.pods()[0].node, wait=True, timeout=WAIT_TIMEOUT)


def _in_thread(call: Callable[[], None]) -> tuple[threading.Thread, list[BaseException | None]]:
    """Run ``call`` in a thread; its outcome (the exception, or None) lands in the list."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize(("wait", "started"), [(_rollout, "rollout.started"),
                                               (_drain, "node.cordoned")],
                         ids=["rollout_restart", "drain_node"])
def test_teardown_ends_a_wait_in_progress(story: Story, mode: str,
                                          wait: Callable[[Service], None],
                                          started: str) -> None:
    service = story.provision(mode, SLOW)
    thread, outcome = _in_thread(lambda: wait(service))
    story.log.wait_for(started)  # the wait is in progress
    time.sleep(0.2)
    assert thread.is_alive(), f"the wait ended before the teardown: {outcome}"
    began = time.monotonic()
    service.teardown()
    thread.join(10.0)
    assert not thread.is_alive(), "the wait still hangs 10 s after teardown()"
    assert time.monotonic() - began < 5.0, "teardown() took long to end the wait"
    assert outcome and isinstance(outcome[0], BackendError), outcome
    service.teardown()


def test_close_is_idempotent(backend_factory: Callable[[], Backend],
                             request: pytest.FixtureRequest) -> None:
    backend = backend_factory()
    story = Story(backend, request.node.nodeid)
    try:
        service = story.provision("instance")
        assert answers(service)
    finally:
        backend.close()
    backend.close()
    # Closing the backend stops what it started.
    eventually(lambda: not answers(service), f"{service.url} stopped answering", 10.0)


def test_close_ends_a_wait_in_progress(backend_factory: Callable[[], Backend],
                                       request: pytest.FixtureRequest) -> None:
    backend = backend_factory()
    story = Story(backend, request.node.nodeid)
    try:
        service = story.provision("instance", SLOW)
        waiter, outcome = _in_thread(lambda: _rollout(service))
        story.log.wait_for("rollout.started")
        time.sleep(0.2)
        assert waiter.is_alive(), f"the wait ended before close(): {outcome}"
    finally:
        backend.close()
    waiter.join(10.0)
    assert not waiter.is_alive(), "the wait still hangs 10 s after close()"
    assert outcome and isinstance(outcome[0], BackendError), outcome


def test_a_closed_backend_raises_backend_error(backend_factory: Callable[[], Backend],
                                               request: pytest.FixtureRequest) -> None:
    backend = backend_factory()
    story = Story(backend, request.node.nodeid)
    try:
        service = story.provision("ip")
    finally:
        backend.close()
    with pytest.raises(BackendError):
        service.pods()
    with pytest.raises(BackendError):
        story.provision("ip")
