"""delete_pod(): the termination sequence, as the API and the event stream show it."""

from __future__ import annotations

import time

import pytest

from pytest_ingress_chaos.base.errors import BackendError
from pytest_ingress_chaos.base.specs import ServiceSpec

from .support import CLOCK, Story, eventually, reports_signals, wait_serving, wait_steady

REPLICAS = 3


def test_delete_pod_replaces_the_victim(story: Story, mode: str) -> None:
    # A preStop sleep keeps the victim terminating long enough to be seen doing so.
    service = story.provision(mode, ServiceSpec(prestop_sleep=2.0))
    before = service.pods()
    victim = before[0]
    service.delete_pod(victim.name, grace_period=None, force=False)

    # The API shows the deletion at once: the victim is terminating, no longer Ready.
    listed = {pod.name: pod for pod in service.pods()}
    assert victim.name in listed, f"{victim.name} left the API before its preStop sleep ended"
    assert listed[victim.name].terminating and not listed[victim.name].ready, listed[victim.name]
    assert not listed[victim.name].running

    # The ReplicaSet replaces it; the victim leaves the API.
    pods = wait_steady(service, REPLICAS)
    names = {pod.name for pod in pods}
    assert victim.name not in names
    assert len({pod.address for pod in pods}) == REPLICAS, pods
    replacement = names - {pod.name for pod in before}
    assert len(replacement) == 1, f"before: {before}, after: {pods}"

    # The events, in the order the termination sequence runs.
    log = story.log
    deleted = log.wait_for("pod.deleted", victim.name)
    left = [e for e in log.events if e.subject == victim.name
            and e.kind in ("endpoint.removed", "endpoint.not_ready")]
    assert left, f"no endpoint.removed/not_ready for {victim.name}"
    exited = log.wait_for("pod.exited", victim.name)
    gone = log.wait_for("pod.gone", victim.name)
    assert deleted.t <= left[0].t <= exited.t <= gone.t, (deleted, left[0], exited, gone)
    assert exited.t - deleted.t >= CLOCK.wall(2.0), "the pod exited before its preStop sleep"
    assert len(log.of("pod.deleted", victim.name)) == 1
    assert len(log.of("pod.gone", victim.name)) == 1

    # The replacement was created after the deletion.
    created = log.wait_for("pod.created", next(iter(replacement)))
    assert created.t >= deleted.t


# A pod whose app ignores SIGTERM and whose grace period is long: without the SIGKILL path it
# would stay for a minute (12 s wall).
STUBBORN = ServiceSpec(on_sigterm="ignore", grace_period=60.0)


def _wait_gone(story: Story, name: str, timeout: float) -> float:
    service = story.services[0]
    eventually(lambda: name not in {pod.name for pod in service.pods()},
               f"{name} left the API", timeout)
    return time.monotonic()


def test_force_delete_kills_at_once(story: Story, mode: str) -> None:
    service = story.provision(mode, STUBBORN)
    victim = service.pods()[0]
    began = time.monotonic()
    service.delete_pod(victim.name, grace_period=None, force=True)
    gone_at = _wait_gone(story, victim.name, timeout=CLOCK.wall(STUBBORN.grace_period) / 2)
    # The app ignores SIGTERM: only a SIGKILL, at once, ends it this soon.
    assert gone_at - began < CLOCK.wall(STUBBORN.grace_period) / 2
    if reports_signals(story.backend):
        signals = story.log.of("pod.signal", victim.name)
        assert signals and all("SIGKILL" in e.message for e in signals), signals
    gone = story.log.wait_for("pod.gone", victim.name)
    assert gone.t - began < CLOCK.wall(STUBBORN.grace_period) / 2, gone
    wait_serving(service, REPLICAS)


def test_short_grace_period_ends_in_sigkill(story: Story, mode: str) -> None:
    service = story.provision(mode, STUBBORN)
    victim = service.pods()[0]
    grace = 2.0  # test seconds
    began = time.monotonic()
    service.delete_pod(victim.name, grace_period=grace, force=False)
    gone_at = _wait_gone(story, victim.name, timeout=CLOCK.wall(STUBBORN.grace_period) / 2)
    # SIGTERM is ignored: the pod lives out its grace period, then SIGKILL ends it (and not
    # the end of the pod's own grace period of a minute, which _wait_gone would not wait for).
    assert gone_at - began >= CLOCK.wall(grace), "the pod went before its grace period ended"
    if reports_signals(story.backend):
        signals = [e.message for e in story.log.of("pod.signal", victim.name)]
        assert len(signals) == 2 and "SIGTERM" in signals[0] and "SIGKILL" in signals[1], \
            signals
    exited = story.log.wait_for("pod.exited", victim.name)
    assert exited.t - story.log.wait_for("pod.deleted", victim.name).t >= CLOCK.wall(grace)
    assert exited.t <= story.log.wait_for("pod.gone", victim.name).t
    wait_serving(service, REPLICAS)


def test_deleting_an_unknown_pod_raises_backend_error(story: Story) -> None:
    service = story.provision("instance")
    with pytest.raises(BackendError, match="kubia-nosuchpod"):
        service.delete_pod("kubia-nosuchpod", grace_period=None, force=False)
    # Nothing else changed.
    assert len(wait_steady(service, REPLICAS)) == REPLICAS
    assert not story.log.of("pod.deleted")
