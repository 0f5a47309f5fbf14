"""provision(): a service that serves from every pod, with pods and names as the API shows them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from pytest_ingress_chaos.base.backend import Backend, Capability, Service
from pytest_ingress_chaos.base.errors import BackendTimeout
from pytest_ingress_chaos.base.specs import MODES

from .support import PROVISION_TIMEOUT, Story, check_pod, hits

REPLICAS = 3


@pytest.fixture(scope="module", params=MODES)
def provisioned(backend: Backend, request: pytest.FixtureRequest
                ) -> Iterator[tuple[Story, Service]]:
    """One service per target type, shared by the module's read-only tests."""
    story = Story(backend, f"{request.node.nodeid}[{request.param}]")
    try:
        service = story.provision(str(request.param))
        yield story, service
    finally:
        story.finish()


def test_provision_returns_within_its_timeout(provisioned: tuple[Story, Service]) -> None:
    story, service = provisioned
    assert story.provision_seconds < PROVISION_TIMEOUT
    assert service.mode in MODES
    assert service.url.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:"))


def test_identity_is_set(provisioned: tuple[Story, Service]) -> None:
    _, service = provisioned
    identity = service.identity
    for name in (identity.namespace, identity.deployment, identity.service, identity.ingress):
        assert isinstance(name, str) and name, identity
    assert identity.selector, identity
    assert all(isinstance(k, str) and k and isinstance(v, str) and v
               for k, v in identity.selector.items()), identity


def test_pods_are_the_replicas_running_and_ready(provisioned: tuple[Story, Service]) -> None:
    _, service = provisioned
    pods = service.pods()
    assert len(pods) == REPLICAS, pods
    for pod in pods:
        check_pod(pod)
        assert pod.restarts == 0, pod
    assert len({pod.name for pod in pods}) == REPLICAS, pods
    assert len({pod.address for pod in pods}) == REPLICAS, pods
    assert len({pod.node for pod in pods}) == REPLICAS, f"pods not spread over nodes: {pods}"


def test_every_ready_pod_answers_through_the_url(provisioned: tuple[Story, Service]) -> None:
    _, service = provisioned
    ready = {pod.name for pod in service.pods() if pod.ready}
    seen = hits(service, ready)
    assert set(seen) == ready, f"answered: {dict(seen)}, Ready pods: {sorted(ready)}"


def test_provisioning_reports_events(provisioned: tuple[Story, Service]) -> None:
    story, service = provisioned
    names = {pod.name for pod in service.pods()}
    created = {event.subject for event in story.log.of("pod.created")}
    ready = {event.subject for event in story.log.of("pod.ready")}
    assert names <= created, f"pod.created for {sorted(created)}, pods {sorted(names)}"
    assert names <= ready, f"pod.ready for {sorted(ready)}, pods {sorted(names)}"
    assert story.log.of("alb.ready"), "no alb.ready event"
    for event in story.log.events:
        assert story.start <= event.t <= time.monotonic(), event


def test_backend_describes_itself(backend: Backend, backend_name: str) -> None:
    assert backend.name == backend_name
    assert all(isinstance(capability, Capability) for capability in backend.capabilities)
    described = backend.describe()  # header lines: what it is pointed at first, then notes
    assert isinstance(described, str) and described.strip(), repr(described)
    assert all(line.strip() for line in described.splitlines()), repr(described)


def test_services_are_independent(backend: Backend, request: pytest.FixtureRequest) -> None:
    """Two services at once: their own pods, URLs and event streams; chaos on one leaves the
    other alone."""
    first, second = (Story(backend, f"{request.node.nodeid}#{n}") for n in (1, 2))
    try:
        a = first.provision("ip")
        b = second.provision("instance")
        pods_a, pods_b = {p.name for p in a.pods()}, {p.name for p in b.pods()}
        assert a.url != b.url
        assert not pods_a & pods_b, (pods_a, pods_b)
        assert set(hits(a, pods_a)) == pods_a
        assert set(hits(b, pods_b)) == pods_b
        victim = sorted(pods_a)[0]
        a.delete_pod(victim, grace_period=None, force=False)
        first.log.wait_for("pod.gone", victim)
        assert {p.name for p in b.pods()} == pods_b
        assert not [e for e in second.log.events if e.subject in pods_a | {victim}]
        assert not second.log.of("pod.deleted"), second.log.of("pod.deleted")
        a.teardown()
        assert set(hits(b, pods_b)) == pods_b, "tearing down one service hurt the other"
    finally:
        first.finish()
        second.finish()


def test_provision_past_its_timeout_raises_backend_timeout(
        backend_factory: Callable[[], Backend], request: pytest.FixtureRequest) -> None:
    """A fresh backend, so that whatever the failed provision leaves running goes with it."""
    backend = backend_factory()
    try:
        story = Story(backend, request.node.nodeid)
        began = time.monotonic()
        with pytest.raises(BackendTimeout):
            story.provision("ip", timeout=0.01)
        assert time.monotonic() - began < 3.0, "the provision did not keep its deadline"
    finally:
        backend.close()
