"""What the contract tests share: the compressed clock, an event log, stories (one provisioned
service each, its events checked when it ends) and ways of looking at a service from outside.

Everything here goes through the contract in ``base/backend.py`` and a plain HTTP client to
the service's URL, never through a backend's internals. Every wall-clock bound is generous,
because the machine may be shared with other test runs.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import pytest

from pytest_ingress_chaos.base.backend import (
    POD_PHASES,
    Backend,
    Capability,
    PodInfo,
    ProvisionRequest,
    Service,
)
from pytest_ingress_chaos.base.clock import TestClock
from pytest_ingress_chaos.base.events import EventKind
from pytest_ingress_chaos.base.specs import AlbSpec, ServiceSpec

T = TypeVar("T")

CLOCK = TestClock(0.2)  # one test second lasts 0.2 wall seconds
PROVISION_TIMEOUT = 60.0  # wall seconds a provision may take
SETTLE = 20.0  # wall seconds for the cluster to settle after a change (replacement Ready, ...)
WAIT_TIMEOUT = 60.0  # wall seconds given to rollout_restart/drain_node(wait=True)
HIT = re.compile(r"You've hit (\S+)")
_SEEDS = itertools.count(1)

# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    t: float
    source: str
    kind: str
    subject: str
    message: str


class EventLog:
    """An event sink that remembers everything, safe to feed from the backend's threads."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._changed = threading.Condition()

    def __call__(self, *, stamp: float, source: str, kind: str, subject: str,
                 message: str) -> None:
        with self._changed:
            self._events.append(Event(stamp, source, kind, subject, message))
            self._changed.notify_all()

    @property
    def events(self) -> list[Event]:
        with self._changed:
            return list(self._events)

    def of(self, kind: str, subject: str | None = None) -> list[Event]:
        return [e for e in self.events
                if e.kind == kind and (subject is None or e.subject == subject)]

    def wait_for(self, kind: str, subject: str | None = None, timeout: float = SETTLE) -> Event:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self._events:
                    if event.kind == kind and (subject is None or event.subject == subject):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = Counter(e.kind for e in self._events)
                    pytest.fail(f"no {kind} event{f' for {subject}' if subject else ''} within "
                                f"{timeout:g} s; events so far: {dict(kinds)}")
                self._changed.wait(left)


def reports_signals(backend: Backend) -> bool:
    """Whether ``backend`` reports ``pod.signal`` for every signal a pod's container gets (and
    must: the suite then checks them).

    Only a backend that signals containers itself, because it runs them, sees every signal:
    one with :attr:`Capability.CONTAINER_KILL` (the simulator). The Kubernetes API records no
    signals (at most a kubelet Event saying that it stops a container, which the kubernetes
    backend reports as such when it sees one), so for the others the suite checks what signals
    lead to, which every backend observes: when the pod's container exits (``pod.exited``) and
    when the pod leaves the API (``pod.gone``)."""
    return Capability.CONTAINER_KILL in backend.capabilities


# --- stories: one provisioned service each ----------------------------------------------------


class Story:
    """One service provisioned for a test, its events, and the span they must lie in."""

    def __init__(self, backend: Backend, test: str) -> None:
        self.backend = backend
        self.test = test
        self.log = EventLog()
        self.start = time.monotonic()
        self.end: float | None = None
        self.services: list[Service] = []
        self.provision_seconds = 0.0

    def provision(self, mode: str, service: ServiceSpec | None = None,
                  alb: AlbSpec | None = None, timeout: float = PROVISION_TIMEOUT) -> Service:
        request = ProvisionRequest(test=self.test, mode=mode, service=service or ServiceSpec(),
                                   alb=alb or AlbSpec(), extras={}, seed=next(_SEEDS),
                                   events=self.log, timeout=timeout)
        began = time.monotonic()
        provisioned = self.backend.provision(request)
        self.provision_seconds = time.monotonic() - began
        self.services.append(provisioned)
        return provisioned

    def finish(self) -> None:
        """Tear down what the story provisioned, then check every event it saw."""
        try:
            for provisioned in self.services:
                provisioned.teardown()
        finally:
            self.end = time.monotonic()
        check_events(self.log.events, self.start, self.end)


def check_events(events: list[Event], start: float, end: float) -> None:
    """The contract for every event: a known kind, strings, a time.monotonic() stamp inside the
    story that produced it."""
    unknown = sorted({e.kind for e in events} - set(EventKind))
    assert not unknown, f"event kinds outside EventKind: {unknown}"
    for event in events:
        assert all(isinstance(part, str) and part for part in
                   (event.source, event.kind, event.subject, event.message)), event
        assert start <= event.t <= end, (
            f"{event.kind} {event.subject} stamped {event.t:.3f}, outside the story's span "
            f"{start:.3f} .. {end:.3f} (time.monotonic())")


# --- looking at a service ---------------------------------------------------------------------


def eventually(check: Callable[[], T | None], what: str | Callable[[], str],
               timeout: float = SETTLE, interval: float = 0.05) -> T:
    """``check()`` until it returns something truthy; fail saying ``what`` (a string, or a
    function giving one, called only then to show the state at that moment)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:g} s: {what if isinstance(what, str) else what()}")
        time.sleep(interval)


def running(pods: list[PodInfo]) -> list[PodInfo]:
    """Pods that count toward the replicas: Running and not terminating."""
    return [pod for pod in pods if pod.running]


def steady(service: Service, replicas: int) -> list[PodInfo] | None:
    """The pods, if exactly ``replicas`` run, all Ready, and no other pod is listed."""
    pods = service.pods()
    if len(pods) == replicas and all(pod.running and pod.ready for pod in pods):
        return pods
    return None


def wait_steady(service: Service, replicas: int, timeout: float = SETTLE) -> list[PodInfo]:
    return eventually(lambda: steady(service, replicas),
                      lambda: f"{replicas} pods Running and Ready, none other listed "
                              f"(now: {describe(service.pods())})", timeout)


def wait_serving(service: Service, replicas: int, timeout: float = SETTLE) -> list[PodInfo]:
    """``replicas`` pods Running and Ready (terminating ones may still be listed)."""
    def check() -> list[PodInfo] | None:
        pods = running(service.pods())
        return pods if len(pods) == replicas and all(p.ready for p in pods) else None

    return eventually(check, lambda: f"{replicas} pods Running and Ready "
                                     f"(now: {describe(service.pods())})", timeout)


def describe(pods: list[PodInfo]) -> str:
    return ", ".join(f"{p.name}({p.phase}{' ready' if p.ready else ''}"
                     f"{' terminating' if p.terminating else ''} on {p.node})" for p in pods)


def check_pod(pod: PodInfo) -> None:
    """What every pod of a steady service shows: Running, Ready, conditions to match."""
    assert pod.phase in POD_PHASES
    assert pod.phase == "Running", pod
    assert pod.ready, pod
    assert not pod.terminating, pod
    assert pod.conditions.get("Ready") is True, pod.conditions
    assert pod.name and pod.node and pod.address, pod


def client(service: Service) -> httpx.Client:
    """A client for the service's ingress: every request carries the service's route
    headers, as the load generator's do. trust_env=False: a proxy configured in the
    environment must not stand between the test and a loopback URL."""
    return httpx.Client(timeout=5.0, trust_env=False, headers=dict(service.request_headers))


def hits(service: Service, want: set[str], attempts: int = 300) -> Counter[str]:
    """GET the service's URL until every pod in ``want`` has answered (or ``attempts`` run
    out); every answer must be a 200 from the sample app. Returns the answers per pod."""
    seen: Counter[str] = Counter()
    with client(service) as http:
        for _ in range(attempts):
            response = http.get(service.url + "/")
            assert response.status_code == 200, (response.status_code, response.text)
            match = HIT.search(response.text)
            assert match, f"not the sample app's answer: {response.text!r}"
            seen[match.group(1)] += 1
            if want <= set(seen):
                break
    return seen


def answers(service: Service) -> bool:
    """Whether the service's URL still serves the sample app."""
    try:
        with client(service) as http:
            response = http.get(service.url + "/", timeout=1.0)
    except httpx.TransportError:
        return False
    return response.status_code == 200 and HIT.search(response.text) is not None
