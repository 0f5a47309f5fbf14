"""The embedded simulator, driven through ``SimBackend`` as the plugin drives it, and judged by
what a user would see: HTTP answers from the ALB, connection errors on pod addresses, and the
events on the timeline.

No load generator of the plugin is used here: traffic comes from plain ``httpx`` clients and
raw sockets in the test, so these tests would catch a simulator that only looks right to the
plugin's own code. Timings run five times faster than real (``TIME_SCALE``); offsets below are
test seconds (wall seconds / ``TIME_SCALE``), with tolerances wide enough for a loaded
two-core machine.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from pytest_ingress_chaos.backends.sim.client import SimBackend, SimService
from pytest_ingress_chaos.backends.sim.spec import SimSpec
from pytest_ingress_chaos.base.backend import PodInfo, ProvisionRequest
from pytest_ingress_chaos.base.clock import TestClock
from pytest_ingress_chaos.base.errors import SimulatorError
from pytest_ingress_chaos.base.events import Event
from pytest_ingress_chaos.base.specs import AlbSpec, ServiceSpec
from pytest_ingress_chaos.core.timeline import Timeline

TIME_SCALE = 0.2
DEREGISTRATION_LAG = 10.0  # test seconds, SimTimings' default
REGISTRATION_LAG = 10.0
KUBELET_LAG = 0.5
WAIT = 20.0  # wall seconds: the longest any wait for an event may take before the test fails

MODES = ["ip", "instance"]


def wall(test_seconds: float) -> float:
    return test_seconds * TIME_SCALE


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend() -> Iterator[SimBackend]:
    sim = SimBackend(time_scale=TIME_SCALE)
    try:
        yield sim
    finally:
        sim.close()


@dataclass
class Deployed:
    """A provisioned service and its timeline, whose zero (``load_start``) the test sets."""

    service: SimService
    timeline: Timeline

    def running(self) -> list[PodInfo]:
        return [pod for pod in self.service.pods() if pod.running]

    def start_clock(self) -> float:
        """Make now test second 0 of the timeline."""
        self.timeline.load_start = time.monotonic()
        return self.timeline.load_start

    def kill(self, name: str, *, grace_period: float | None = None,
             force: bool = False) -> float:
        """Delete a pod at test second 0 of the timeline; returns that monotonic time."""
        start = self.start_clock()
        self.service.delete_pod(name, grace_period=grace_period, force=force)
        return start

    def wait_for(self, kind: str, subject: str, *, contains: str = "",
                 timeout: float = WAIT) -> Event:
        """The first event of ``kind`` about ``subject``, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.timeline.events():
                if event.kind == kind and event.subject == subject and contains in event.message:
                    return event
            if time.monotonic() > deadline:
                seen = "\n".join(f"  {e.at:7.2f} {e.kind} {e.subject}: {e.message}"
                                 for e in self.timeline.events())
                pytest.fail(f"no {kind} event for {subject} within {timeout:g} s; "
                            f"events:\n{seen}")
            time.sleep(0.01)

    def first(self, kind: str, *, timeout: float = WAIT) -> Event:
        """The first event of ``kind`` at or after test second 0, whatever it is about."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.timeline.events():
                if event.kind == kind and event.at >= 0:
                    return event
            if time.monotonic() > deadline:
                pytest.fail(f"no {kind} event within {timeout:g} s")
            time.sleep(0.01)

    def about(self, subject: str) -> list[Event]:
        return [event for event in self.timeline.events() if event.subject == subject]

    def sleep_until(self, test_second: float) -> None:
        assert self.timeline.load_start is not None
        time.sleep(max(0.0, self.timeline.load_start + wall(test_second) - time.monotonic()))


Deploy = Callable[..., Deployed]
# The controller's lags without their jitter, so the figures below can be exact.
EXACT_LAGS = SimSpec(lag_jitter=0)


def request(timeline: Timeline, mode: str, seed: int, sim: SimSpec = EXACT_LAGS,
            **spec: Any) -> ProvisionRequest:
    return ProvisionRequest(test="test_sim", mode=mode, service=ServiceSpec(**spec),
                            alb=AlbSpec(), extras={"sim": sim}, seed=seed,
                            events=timeline.record, timeout=120.0)


@pytest.fixture
def deploy(backend: SimBackend) -> Iterator[Deploy]:
    """Provision sample services in the module's simulator; all are torn down afterwards."""
    services: list[SimService] = []

    def provision(mode: str = "ip", *, seed: int = 1, sim: SimSpec = EXACT_LAGS,
                  **spec: Any) -> Deployed:
        timeline = Timeline(TestClock(TIME_SCALE))
        service = backend.provision(request(timeline, mode, seed, sim, **spec))
        services.append(service)
        timeline.load_start = time.monotonic()
        return Deployed(service, timeline)

    yield provision
    for service in services:
        service.teardown()


# --- an HTTP client independent of the plugin ----------------------------------------------------


@dataclass(frozen=True)
class Shot:
    """One request of :class:`SteadyLoad`: when it was sent, how it ended, who answered."""

    sent: float  # monotonic
    outcome: str  # "200", "502", "timeout", or the exception's class name
    pod: str | None


def _pod_of(body: bytes) -> str | None:
    match = re.fullmatch(rb"You've hit (\S+)\n", body)
    return match.group(1).decode() if match else None


@dataclass
class SteadyLoad:
    """``rate`` GETs per second to ``url`` from a thread pool, each with its own deadline, sent
    on schedule whatever earlier requests are doing (so a dead target cannot slow it down)."""

    url: str
    rate: float = 50.0
    timeout: float = 1.0  # wall seconds, like wrk2's request timeout
    shots: list[Shot] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SteadyLoad:
        self._thread = threading.Thread(target=self._run, name="test-load", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=self.timeout + 30)
        assert not self._thread.is_alive(), "the test's load thread did not stop"

    def _run(self) -> None:
        lock = threading.Lock()
        with httpx.Client(timeout=self.timeout) as client, \
                ThreadPoolExecutor(max_workers=64) as pool:

            def one() -> None:
                sent = time.monotonic()
                pod = None
                try:
                    response = client.get(self.url)
                    outcome, pod = str(response.status_code), _pod_of(response.content)
                except httpx.TimeoutException:
                    outcome = "timeout"
                except Exception as exc:  # any other failure counts too, by its name
                    outcome = type(exc).__name__
                with lock:
                    self.shots.append(Shot(sent, outcome, pod))

            start = time.monotonic()
            i = 0
            while not self._stop.is_set():
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                    continue
                pool.submit(one)
                i += 1

    def offsets(self, zero: float, *, errors: bool) -> list[float]:
        """Send times, in test seconds from ``zero``, of the failed (or successful) requests."""
        return sorted((shot.sent - zero) / TIME_SCALE for shot in self.shots
                      if (shot.outcome != "200") == errors)


def alb_get(url: str, timeout: float = 2.0) -> httpx.Response:
    with httpx.Client(timeout=timeout) as client:
        return client.get(url)


def pod_port(pod: PodInfo) -> int:
    return int(pod.address.rsplit(":", 1)[1])


# --- provisioning -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_provisioned_service_serves_from_three_pods_on_three_nodes(deploy: Deploy,
                                                                   mode: str) -> None:
    """``provision`` returns a service whose URL answers ``You've hit kubia-...`` from every one
    of 3 Running, ready pods, each on its own node and address."""
    deployed = deploy(mode)
    assert deployed.service.mode == mode
    pods = deployed.service.pods()
    assert len(pods) == 3
    assert all(pod.phase == "Running" and pod.ready for pod in pods)
    assert len({pod.node for pod in pods}) == 3
    assert len({pod.address for pod in pods}) == 3
    names = {pod.name for pod in pods}
    assert all(re.fullmatch(r"kubia-[a-z0-9]{5}", name) for name in names)

    served = set()
    with httpx.Client(timeout=5.0) as client:
        for _ in range(30):
            response = client.get(deployed.service.url)
            assert response.status_code == 200
            pod = _pod_of(response.content)
            assert pod in names, response.text
            served.add(pod)
    assert served == names
    for pod in pods:  # and each pod answers on its own address with its own name
        assert alb_get(f"http://{pod.address}/").text == f"You've hit {pod.name}\n"


def test_same_seed_same_pod_names(deploy: Deploy) -> None:
    """Pod names come from the seed: the same seed gives the same names, another seed others."""
    first = [pod.name for pod in deploy("ip", seed=7).service.pods()]
    again = [pod.name for pod in deploy("ip", seed=7).service.pods()]
    other = [pod.name for pod in deploy("ip", seed=8).service.pods()]
    assert first == again
    assert set(first).isdisjoint(other)


# --- deleting a pod ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_deleted_pod_is_replaced_and_terminated_in_order(deploy: Deploy, mode: str) -> None:
    """Deleting a pod: the ReplicaSet brings the service back to 3 Running pods with a new
    one, the victim is terminating at once and then leaves the API, and the timeline tells the
    termination sequence in order: deleted, endpoints updated without it, SIGTERM, exited,
    address released."""
    deployed = deploy(mode)
    before = {pod.name for pod in deployed.service.pods()}
    victim = deployed.running()[0]
    deployed.kill(victim.name)

    victim_now = {pod.name: pod for pod in deployed.service.pods()}[victim.name]
    assert victim_now.terminating and victim_now.phase == "Running"
    assert not victim_now.ready and not victim_now.running

    deployed.wait_for("address.released", victim.name)
    pods = {pod.name: pod for pod in deployed.service.pods()}
    assert len(pods) == 3
    # The replacement's process may still be starting on a busy machine: wait for its Ready.
    [new_pod] = set(pods) - before
    deployed.wait_for("pod.ready", new_pod)
    pods = {pod.name: pod for pod in deployed.service.pods()}
    assert victim.name not in pods  # its deletion completed: gone from the API
    running = [pod for pod in pods.values() if pod.running]
    assert len(running) == 3
    assert all(pod.ready for pod in running)
    assert victim.name not in {pod.name for pod in running}
    (replacement,) = [pod for pod in running if pod.name not in before]
    assert replacement.address != victim.address
    assert alb_get(f"http://{replacement.address}/").status_code == 200

    events = deployed.timeline.events()
    deleted = deployed.wait_for("pod.deleted", victim.name)
    steps = [
        next(i for i, e in enumerate(events) if e.kind == "pod.deleted"
             and e.subject == victim.name),
        next(i for i, e in enumerate(events) if e.kind == "endpoints.updated"
             and e.at >= deleted.at and victim.name not in e.message),
        next(i for i, e in enumerate(events) if e.kind == "pod.signal"
             and e.subject == victim.name and "SIGTERM" in e.message),
        next(i for i, e in enumerate(events) if e.kind == "pod.exited"
             and e.subject == victim.name),
        next(i for i, e in enumerate(events) if e.kind == "address.released"
             and e.subject == victim.name),
    ]
    assert steps == sorted(steps), [events[i].kind for i in steps]
    sigterm = events[steps[2]]
    # The kubelet notices the deletion a moment later: SIGTERM comes kubelet_lag after it.
    assert KUBELET_LAG * 0.9 <= sigterm.at - deleted.at <= KUBELET_LAG + 3.0
    assert "killed by SIGTERM" in events[steps[3]].message
    assert not any(e.kind == "pod.signal" and "SIGKILL" in e.message
                   for e in deployed.about(victim.name))


def test_ip_mode_target_drains_a_deregistration_lag_after_the_deletion(deploy: Deploy) -> None:
    """ip mode: the controller deregisters the dead pod's target about ``deregistration_lag``
    (10 s) after the deletion, and registers the replacement one reconcile later."""
    deployed = deploy("ip")
    victim = deployed.running()[0]
    deployed.kill(victim.name)
    deleted = deployed.wait_for("pod.deleted", victim.name)
    draining = deployed.wait_for("target.draining", victim.name)
    assert DEREGISTRATION_LAG * 0.95 <= draining.at - deleted.at <= DEREGISTRATION_LAG + 3.0

    created = deployed.first("pod.created")
    ready = deployed.wait_for("pod.ready", created.subject)
    registered = deployed.wait_for("target.registered", created.subject)
    # The reconcile that the deletion triggered already sees the replacement Ready: it is
    # registered a lag after the deletion, and at most a lag after it became ready.
    assert registered.at - deleted.at >= REGISTRATION_LAG * 0.95
    assert registered.at - ready.at <= REGISTRATION_LAG + 3.0
    deployed.wait_for("target.healthy", created.subject)


def test_instance_mode_kube_proxy_drops_the_pod_before_it_dies(deploy: Deploy) -> None:
    """instance mode: kube-proxy stops forwarding to the deleted pod before its SIGTERM, and no
    target changes in the target group (the nodes stay registered)."""
    deployed = deploy("instance")
    victim = deployed.running()[0]
    deployed.kill(victim.name)
    sigterm = deployed.wait_for("pod.signal", victim.name, contains="SIGTERM")
    synced = deployed.first("kube-proxy.synced")
    assert victim.name not in synced.message
    assert synced.at < sigterm.at
    deployed.wait_for("address.released", victim.name)
    assert not [e for e in deployed.timeline.events()
                if e.source == "alb" and e.at >= 0 and e.kind != "target.healthy"]


def test_delete_unknown_pod_raises_naming_it(deploy: Deploy) -> None:
    """Deleting a pod that does not exist, or one already terminating, raises SimulatorError
    naming the pod."""
    deployed = deploy("instance")
    with pytest.raises(SimulatorError, match=r"kubia-nope.*unknown"):
        deployed.service.delete_pod("kubia-nope", grace_period=None, force=False)
    victim = deployed.running()[0]
    deployed.kill(victim.name)
    with pytest.raises(SimulatorError, match=rf"{victim.name}.*already terminating"):
        deployed.service.delete_pod(victim.name, grace_period=None, force=False)


# --- the released address -------------------------------------------------------------------


def probe(port: int, timeout: float = 0.25) -> str:
    """One connect to a pod address: ``C`` connected, ``R`` refused (or reset: a connect that
    races the process's exit on a loaded machine), ``T`` timed out."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
    except (ConnectionRefusedError, ConnectionResetError):
        return "R"
    except TimeoutError:
        return "T"
    return "C"


def test_released_address_refuses_then_blackholes(deploy: Deploy) -> None:
    """After the pod's process exits its address first refuses connections, then (once
    released) accepts exactly one connect, which nobody serves, and lets every later connect
    time out, like a released pod IP. instance mode: the ALB never touches pod addresses."""
    deployed = deploy("instance")
    victim = deployed.running()[0]
    port = pod_port(victim)
    deployed.kill(victim.name)
    seen = ""
    deadline = time.monotonic() + WAIT
    while not seen.endswith("TTT") and time.monotonic() < deadline:
        seen += probe(port)
        time.sleep(0.003)
    assert re.fullmatch(r"C*R+CT+", seen), f"connect outcomes in order: {seen}"
    released = deployed.wait_for("address.released", victim.name)
    exited = deployed.wait_for("pod.exited", victim.name)
    assert released.at - exited.at >= 0.9  # address_refuse: 1 s of refusals


# --- what a client of the ALB sees: THE key check ------------------------------------------------


def test_ip_mode_pod_kill_gives_errors_for_about_the_deregistration_lag(deploy: Deploy) -> None:
    """The field report, ip mode: a client sending 50 req/s through the ALB sees failures
    (502 from the refusing address, then timeouts on the blackholed one) from the moment the
    pod dies until the ALB deregisters its target about 10 s later, and none before or after."""
    deployed = deploy("ip")
    victim = deployed.running()[0]
    with SteadyLoad(deployed.service.url) as load:
        time.sleep(wall(2.0))
        zero = deployed.kill(victim.name)
        time.sleep(wall(DEREGISTRATION_LAG + 5.0))
    draining = deployed.wait_for("target.draining", victim.name)
    exited = deployed.wait_for("pod.exited", victim.name)

    failures = load.offsets(zero, errors=True)
    kinds = {shot.outcome for shot in load.shots if shot.outcome != "200"}
    summary = f"{len(failures)} failures {sorted(kinds)} sent at {failures}"
    assert len(load.shots) >= 0.7 * 50 * wall(DEREGISTRATION_LAG + 7.0)
    assert len(failures) >= 10, summary
    assert kinds <= {"502", "504", "timeout"}, summary
    assert "timeout" in kinds, summary  # the blackhole: connects go unanswered
    # The window opens when the pod dies (not before) and closes when its target drains.
    assert 0.0 <= failures[0] <= exited.at + 2.5, summary
    assert draining.at - 3.0 <= failures[-1] <= draining.at + 1.0, summary
    assert DEREGISTRATION_LAG - 4.0 <= failures[-1] - failures[0] <= DEREGISTRATION_LAG + 3.0
    # And the failures are the dead pod's share: the others kept answering meanwhile.
    during = [s for s in load.shots if 0 <= (s.sent - zero) / TIME_SCALE <= draining.at]
    assert sum(s.outcome == "200" for s in during) >= len(during) / 2


def test_instance_mode_pod_kill_gives_zero_errors(deploy: Deploy) -> None:
    """The field report, instance mode: the same client through the same pod kill sees no
    failure at all, the victim answers until it is dropped and the replacement takes over."""
    deployed = deploy("instance")
    victim = deployed.running()[0]
    with SteadyLoad(deployed.service.url) as load:
        time.sleep(wall(2.0))
        zero = deployed.kill(victim.name)
        time.sleep(wall(DEREGISTRATION_LAG + 5.0))
    exited = deployed.wait_for("pod.exited", victim.name)
    created = deployed.first("pod.created")

    failures = [s for s in load.shots if s.outcome != "200"]
    assert not failures, failures[:10]
    assert len(load.shots) >= 0.7 * 50 * wall(DEREGISTRATION_LAG + 7.0)
    served_at = [((s.sent - zero) / TIME_SCALE, s.pod) for s in load.shots]
    assert any(at < 0 and pod == victim.name for at, pod in served_at)
    assert not any(at > exited.at and pod == victim.name for at, pod in served_at)
    assert any(pod == created.subject for _, pod in served_at)


def test_ip_mode_prestop_longer_than_the_lag_gives_zero_errors(deploy: Deploy) -> None:
    """The report's fix for ip mode: a preStop sleep longer than the deregistration lag keeps
    the pod serving until the ALB stops sending to it, so the client sees no failure."""
    deployed = deploy("ip", prestop_sleep=DEREGISTRATION_LAG + 2.0)
    victim = deployed.running()[0]
    with SteadyLoad(deployed.service.url) as load:
        time.sleep(wall(1.0))
        zero = deployed.kill(victim.name)
        deployed.wait_for("pod.exited", victim.name)
        time.sleep(wall(1.5))
    draining = deployed.wait_for("target.draining", victim.name)
    sigterm = deployed.wait_for("pod.signal", victim.name, contains="SIGTERM")
    assert draining.at < sigterm.at

    failures = [s for s in load.shots if s.outcome != "200"]
    assert not failures, failures[:10]
    served_at = [((s.sent - zero) / TIME_SCALE, s.pod) for s in load.shots]
    assert any(5.0 < at < draining.at and pod == victim.name for at, pod in served_at)


# --- the ALB's own answers ----------------------------------------------------------------------


def assert_alb_error(response: httpx.Response, status: int, reason: str) -> None:
    assert response.status_code == status
    assert response.headers["server"] == "awselb/2.0"
    assert response.headers["content-type"] == "text/html"
    assert f"<title>{status} {reason}</title>" in response.text
    assert f"<h1>{status} {reason}</h1>" in response.text
    assert "You've hit" not in response.text


def test_refused_target_gives_alb_502(deploy: Deploy) -> None:
    """ip mode, while the dead pod's address refuses: the ALB answers the requests it sends
    there with its own HTML 502 Bad Gateway, ``server: awselb/2.0``."""
    deployed = deploy("ip")
    victim = deployed.running()[0]
    deployed.kill(victim.name)
    deployed.wait_for("pod.exited", victim.name)
    answers: list[httpx.Response] = []
    deadline = time.monotonic() + wall(5.0)
    with httpx.Client(timeout=wall(5.0)) as client:
        while time.monotonic() < deadline and not any(e.kind == "address.released"
                                                      for e in deployed.about(victim.name)):
            with contextlib.suppress(httpx.TimeoutException):
                answers.append(client.get(deployed.service.url))
    bad = [r for r in answers if r.status_code != 200]
    assert bad, f"no failure among {len(answers)} requests while {victim.name} refused"
    for response in bad:
        assert_alb_error(response, 502, "Bad Gateway")


def test_empty_then_initial_target_group_gives_alb_503_then_502(deploy: Deploy) -> None:
    """ip mode, one replica with a long preStop, registration slower than deregistration: after
    the old pod's target is deregistered and before the replacement's is registered, the
    target group is empty and the ALB answers 503; then the replacement is registered but
    still ``initial`` until its first health check (one interval later), and with only
    initial and draining targets the ALB answers 502 ([1124]); once it is healthy, it serves.
    Nothing else fails."""
    # The controller registers 2 s later than it deregisters: an empty target group between.
    slow_registration = SimSpec(lag_jitter=0, registration_lag=DEREGISTRATION_LAG + 2.0)
    deployed = deploy("ip", replicas=1, prestop_sleep=DEREGISTRATION_LAG + 5.0,
                      sim=slow_registration)
    (victim,) = deployed.running()
    deployed.kill(victim.name)
    time.sleep(wall(DEREGISTRATION_LAG - 2.0))
    created = deployed.first("pod.created")
    answers: list[tuple[float, httpx.Response]] = []
    deadline = time.monotonic() + wall(30.0)
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline and not any(e.kind == "target.healthy"
                                                      for e in deployed.about(created.subject)):
            answers.append((deployed.timeline.offset(time.monotonic()),
                            client.get(deployed.service.url)))
        for _ in range(10):  # and once healthy, the replacement serves
            answers.append((deployed.timeline.offset(time.monotonic()),
                            client.get(deployed.service.url)))
    statuses = {response.status_code for _, response in answers}
    assert statuses == {200, 502, 503}, statuses
    for _, response in answers:
        if response.status_code in (502, 503):
            reason = "Bad Gateway" if response.status_code == 502 else \
                "Service Temporarily Unavailable"
            assert_alb_error(response, response.status_code, reason)
    draining = deployed.wait_for("target.draining", victim.name)
    registered = deployed.wait_for("target.registered", created.subject)
    healthy = deployed.wait_for("target.healthy", created.subject)
    unavailable = [at for at, response in answers if response.status_code == 503]
    bad_gateway = [at for at, response in answers if response.status_code == 502]
    assert draining.at - 1.0 <= min(unavailable) and max(unavailable) <= registered.at + 1.0
    assert registered.at - 1.0 <= min(bad_gateway) and max(bad_gateway) <= healthy.at + 1.0
    assert answers[-1][1].text == f"You've hit {created.subject}\n"


# --- termination: grace period, SIGKILL, preStop ------------------------------------------------


def test_sigterm_ignored_gets_sigkill_after_the_grace_period(deploy: Deploy) -> None:
    """``on_sigterm="ignore"``: the pod keeps serving after SIGTERM; the kubelet sends SIGKILL
    when the grace period (5 s here) is over and the process dies of it."""
    deployed = deploy("ip", on_sigterm="ignore", grace_period=5.0)
    victim = deployed.running()[0]
    deployed.kill(victim.name)
    sigterm = deployed.wait_for("pod.signal", victim.name, contains="SIGTERM")
    assert alb_get(f"http://{victim.address}/").text == f"You've hit {victim.name}\n"
    sigkill = deployed.wait_for("pod.signal", victim.name, contains="SIGKILL")
    exited = deployed.wait_for("pod.exited", victim.name)
    assert 5.0 * 0.95 <= sigkill.at - sigterm.at <= 5.0 + 3.0
    assert "killed by SIGKILL" in exited.message
    assert exited.at >= sigkill.at


@pytest.mark.parametrize(("force", "grace_period"), [(True, None), (False, 0.0)],
                         ids=["force", "grace-0"])
def test_forced_deletion_sends_sigkill_at_once(deploy: Deploy, force: bool,
                                               grace_period: float | None) -> None:
    """``force=True`` (or a grace period of 0): SIGKILL at once, before the kubelet lag could
    even pass, no SIGTERM and no preStop."""
    deployed = deploy("instance", prestop_sleep=5.0)
    victim = deployed.running()[0]
    deployed.kill(victim.name, grace_period=grace_period, force=force)
    deleted = deployed.wait_for("pod.deleted", victim.name)
    assert "force" in deleted.message
    sigkill = deployed.wait_for("pod.signal", victim.name, contains="SIGKILL")
    exited = deployed.wait_for("pod.exited", victim.name)
    assert sigkill.at - deleted.at < KUBELET_LAG
    assert "killed by SIGKILL" in exited.message
    kinds = [(e.kind, e.message) for e in deployed.about(victim.name)]
    assert not [k for k in kinds if "SIGTERM" in k[1] or k[0] == "pod.prestop"], kinds


def test_prestop_delays_sigterm_and_the_pod_serves_meanwhile(deploy: Deploy) -> None:
    """``prestop_sleep=3s``: the kubelet runs the preStop sleep first (a ``pod.prestop``
    event), the pod keeps answering during it, and SIGTERM comes only when it is over."""
    deployed = deploy("instance", prestop_sleep=3.0)
    victim = deployed.running()[0]
    deployed.kill(victim.name)
    deleted = deployed.wait_for("pod.deleted", victim.name)
    prestop = deployed.wait_for("pod.prestop", victim.name)
    assert alb_get(f"http://{victim.address}/").text == f"You've hit {victim.name}\n"
    sigterm = deployed.wait_for("pod.signal", victim.name, contains="SIGTERM")
    assert KUBELET_LAG * 0.9 <= prestop.at - deleted.at <= KUBELET_LAG + 3.0
    assert 3.0 * 0.95 <= sigterm.at - prestop.at <= 3.0 + 3.0
    assert "killed by SIGTERM" in deployed.wait_for("pod.exited", victim.name).message


def test_prestop_longer_than_grace_is_cut_and_gets_2s_more(deploy: Deploy) -> None:
    """preStop 5 s with a 2 s grace period: preStop is cut to the grace period, then SIGTERM,
    then Kubernetes' one-off 2 s extension, then SIGKILL."""
    deployed = deploy("instance", prestop_sleep=5.0, grace_period=2.0, on_sigterm="ignore")
    victim = deployed.running()[0]
    deployed.kill(victim.name)
    prestop = deployed.wait_for("pod.prestop", victim.name)
    assert "2s" in prestop.message
    sigterm = deployed.wait_for("pod.signal", victim.name, contains="SIGTERM")
    sigkill = deployed.wait_for("pod.signal", victim.name, contains="SIGKILL")
    assert 2.0 * 0.95 <= sigterm.at - prestop.at <= 2.0 + 3.0
    assert 2.0 * 0.95 <= sigkill.at - sigterm.at <= 2.0 + 3.0


# --- teardown ------------------------------------------------------------------------------------


def sampleapp_pids(names: set[str]) -> set[int]:
    """Live sampleapp processes serving as one of the pods ``names``."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if (any(arg.endswith("sampleapp.py") for arg in argv) and "--name" in argv
                and argv[argv.index("--name") + 1] in names):
            pids.add(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_teardown_and_close_leave_nothing_behind() -> None:
    """``teardown()`` stops a service's pods (the released address too) and its ALB;
    ``close()`` stops the simulator and every service still provisioned in it."""
    sim = SimBackend(time_scale=TIME_SCALE)
    try:
        seed = random.SystemRandom().randrange(1 << 30)  # pod names of our own
        timeline = Timeline(TestClock(TIME_SCALE))
        first = sim.provision(request(timeline, "instance", seed))
        deployed = Deployed(first, timeline)
        victim = deployed.running()[0]
        deployed.kill(victim.name)
        deployed.wait_for("address.released", victim.name)
        pods = first.pods()
        names = {pod.name for pod in pods}
        assert len(sampleapp_pids(names)) == 3  # the victim is gone already
        ports = [pod_port(pod) for pod in [*pods, victim]]
        alb_port = int(first.url.rsplit(":", 1)[1])

        second = sim.provision(request(Timeline(TestClock(TIME_SCALE)), "ip", seed + 1))
        second_names = {pod.name for pod in second.pods()}
        assert len(sampleapp_pids(second_names)) == 3

        first.teardown()
        assert not sampleapp_pids(names)
        for port in [*ports, alb_port]:
            assert probe(port) == "R", f"port {port} of the torn-down service still answers"
        assert alb_get(second.url).status_code == 200  # the other service is untouched

        sim_pid = int(re.search(r"pid (\d+)", sim.describe()).group(1))  # type: ignore[union-attr]
    finally:
        sim.close()
    assert not sampleapp_pids(second_names)
    with pytest.raises(ProcessLookupError):
        os.kill(sim_pid, 0)
    assert probe(int(second.url.rsplit(":", 1)[1])) == "R"


# --- regressions: bugs found while writing these tests --------------------------------------------


def test_pod_deleted_before_its_registration_never_stays_registered(deploy: Deploy) -> None:
    """ip mode: a replacement pod deleted before the controller registered it must not end up
    registered in the target group (or, if registered, must be deregistered again)."""
    deployed = deploy("ip")
    victim = deployed.running()[0]
    deployed.kill(victim.name)
    created = deployed.first("pod.created")
    ready = deployed.wait_for("pod.ready", created.subject)
    deployed.service.delete_pod(created.subject, grace_period=None, force=False)
    deleted = deployed.wait_for("pod.deleted", created.subject)
    # The story needs the deletion inside the registration lag: the registration is pending.
    assert deleted.at < ready.at + REGISTRATION_LAG
    deployed.wait_for("address.released", created.subject)
    # Long enough for the pending registration and, after it, a deregistration.
    deployed.sleep_until(ready.at + REGISTRATION_LAG + DEREGISTRATION_LAG + 3.0)
    # The controller did register in that time (the next replacement): a target group that
    # never registers anything would pass the check below without it.
    registered = [e.subject for e in deployed.timeline.events()
                  if e.kind == "target.registered" and e.at > deleted.at]
    assert set(registered) - {created.subject}, "no replacement was registered"
    kinds = [e.kind for e in deployed.about(created.subject) if e.source == "alb"]
    assert "target.registered" not in kinds or "target.draining" in kinds, kinds


def test_torn_down_ip_service_stops_health_checking(deploy: Deploy) -> None:
    """After teardown nothing of the service may touch the network: a listener put on a
    former pod address gets no health check from the torn-down ALB."""
    deployed = deploy("ip")
    victim = deployed.running()[0]
    deployed.kill(victim.name)
    created = deployed.first("pod.created")
    deployed.wait_for("pod.ready", created.subject)
    address = {pod.name: pod for pod in deployed.service.pods()}[created.subject].address
    deployed.service.teardown()
    host, port = address.rsplit(":", 1)
    with socket.create_server((host, int(port))) as listener:
        listener.settimeout(wall(REGISTRATION_LAG + 5.0))
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            return
        with connection:
            connection.settimeout(5.0)
            first_line = connection.recv(4096).split(b"\r\n", 1)[0]
    raise AssertionError(f"the torn-down ALB still connects to {address}: {first_line!r}")
