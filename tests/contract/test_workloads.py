"""scale(), rollout_restart() and drain_node(): the Deployment's verbs, as the API shows them."""

from __future__ import annotations

import time

import pytest

from pytest_ingress_chaos.base.backend import EXCLUDE_LABEL, Capability
from pytest_ingress_chaos.base.errors import BackendError, BackendTimeout
from pytest_ingress_chaos.base.specs import ServiceSpec

from .support import (
    WAIT_TIMEOUT,
    Story,
    check_pod,
    eventually,
    hits,
    running,
    wait_serving,
    wait_steady,
)

REPLICAS = 3


def test_scale_up_then_down(story: Story, mode: str) -> None:
    service = story.provision(mode)
    before = {pod.name for pod in service.pods()}

    service.scale(5)
    pods = wait_steady(service, 5)
    names = {pod.name for pod in pods}
    assert before < names, f"scaling up replaced pods: before {sorted(before)}, now {pods}"
    assert len({pod.address for pod in pods}) == 5, pods
    for pod in pods:
        check_pod(pod)

    service.scale(2)
    pods = wait_steady(service, 2)
    assert {pod.name for pod in pods} < names, pods
    assert len(story.log.of("deployment.scaled")) == 2
    # Scaling down deletes pods through the termination sequence: each one goes.
    for name in names - {pod.name for pod in pods}:
        story.log.wait_for("pod.deleted", name)
        story.log.wait_for("pod.gone", name)


def test_scale_to_a_negative_count_raises_backend_error(story: Story) -> None:
    """The API refuses spec.replicas < 0 (422 Invalid); nothing changes."""
    service = story.provision("instance")
    before = {pod.name for pod in service.pods()}
    with pytest.raises(BackendError, match="-1"):
        service.scale(-1)
    time.sleep(0.3)  # what a wrongly accepted scale-down would need to show
    assert {pod.name for pod in wait_steady(service, REPLICAS)} == before
    assert not story.log.of("pod.deleted"), story.log.of("pod.deleted")


def _revision_changed(story: Story, old: set[str]) -> None:
    """After a complete rollout: ``REPLICAS`` Running and Ready pods, none of them old."""
    service = story.services[0]
    current = running(service.pods())
    assert len(current) == REPLICAS, current
    assert not old & {pod.name for pod in current}, f"old pods still running: {current}"
    for pod in current:
        check_pod(pod)


def test_rollout_restart_waits_until_every_pod_is_new(story: Story, mode: str) -> None:
    service = story.provision(mode)
    old = {pod.name for pod in service.pods()}
    service.rollout_restart("25%", "25%", wait=True, timeout=WAIT_TIMEOUT)
    _revision_changed(story, old)
    story.log.wait_for("rollout.started")
    done = story.log.wait_for("rollout.done")
    assert done.t <= time.monotonic()
    # The old pods go, and nothing else is left behind.
    pods = wait_steady(service, REPLICAS)
    assert not old & {pod.name for pod in pods}, pods
    for name in old:
        story.log.wait_for("pod.gone", name)


def test_rollout_restart_past_its_timeout_raises_backend_timeout(story: Story) -> None:
    # Each new pod takes 10 test seconds (2 s wall) to become Ready: the rollout takes longer
    # than the wait allows.
    service = story.provision("instance", ServiceSpec(readiness_delay=10.0))
    old = {pod.name for pod in service.pods()}
    began = time.monotonic()
    with pytest.raises(BackendTimeout) as raised:
        service.rollout_restart(1, 0, wait=True, timeout=0.3)
    assert time.monotonic() - began < 3.0, "the wait did not keep its deadline"
    # The error says what the backend saw: the pods, which are still the old ones.
    assert any(name in str(raised.value) for name in old), str(raised.value)


def test_drain_node_past_its_timeout_raises_backend_timeout(story: Story) -> None:
    # The evicted pod ignores SIGTERM and has a minute's grace: the drain outlasts the wait.
    service = story.provision("ip", ServiceSpec(on_sigterm="ignore", grace_period=60.0))
    victim = service.pods()[0]
    began = time.monotonic()
    with pytest.raises(BackendTimeout) as raised:
        service.drain_node(victim.node, wait=True, timeout=0.3)
    assert time.monotonic() - began < 3.0, "the wait did not keep its deadline"
    assert victim.name in str(raised.value), str(raised.value)


def test_rollout_restart_without_wait_returns_at_once(story: Story) -> None:
    # Each new pod takes 4 test seconds (0.8 s wall) to become Ready: waiting takes 2.4 s.
    service = story.provision("ip", ServiceSpec(readiness_delay=4.0))
    old = {pod.name for pod in service.pods()}
    began = time.monotonic()
    service.rollout_restart(1, 0, wait=False, timeout=WAIT_TIMEOUT)
    assert time.monotonic() - began < 1.0, "rollout_restart(wait=False) waited"
    # It does happen, in the background.
    assert any(pod.running for pod in service.pods() if pod.name in old)
    story.log.wait_for("rollout.done", timeout=WAIT_TIMEOUT)
    wait_serving(service, REPLICAS)
    _revision_changed(story, old)


def test_drain_node_empties_the_node(story: Story, mode: str) -> None:
    service = story.provision(mode)
    victim = service.pods()[0]
    node = victim.node
    service.drain_node(node, wait=True, timeout=WAIT_TIMEOUT)
    on_node = [pod for pod in service.pods() if pod.node == node]
    assert not on_node, f"pods left on drained {node}: {on_node}"
    assert story.log.of("node.cordoned", node), "no node.cordoned event"
    story.log.wait_for("pod.deleted", victim.name)
    if Capability.NODE_TERMINATION in story.backend.capabilities:
        story.log.wait_for("node.terminated", node)
    # Replacements land elsewhere; the drained node stays unschedulable.
    pods = wait_steady(service, REPLICAS)
    assert node not in {pod.node for pod in pods}, pods


def test_drain_node_waits_for_a_pod_already_terminating_there(story: Story) -> None:
    """``kubectl drain`` waits for every pod on the node, those already terminating too."""
    # The victim ignores SIGTERM: it terminates for its whole grace period (1 s wall).
    service = story.provision("instance", ServiceSpec(on_sigterm="ignore", grace_period=5.0))
    victim = service.pods()[0]
    service.delete_pod(victim.name, grace_period=None, force=False)
    service.drain_node(victim.node, wait=True, timeout=WAIT_TIMEOUT)
    on_node = [pod for pod in service.pods() if pod.node == victim.node]
    assert not on_node, f"drain_node(wait=True) returned with pods on {victim.node}: {on_node}"
    story.log.wait_for("pod.gone", victim.name)
    pods = wait_steady(service, REPLICAS)
    assert victim.node not in {pod.node for pod in pods}, pods


def test_drain_node_right_after_a_deletion_there(story: Story, mode: str) -> None:
    """A replacement scheduled onto the node just before it was cordoned is bound to it:
    the drain evicts that one too."""
    service = story.provision(mode)
    drained: set[str] = set()
    for _ in range(2):
        # A running pod on a node not drained yet, chosen only now: this test is about the
        # drain, not about where the scheduler put the pods (a soft preference on Kubernetes;
        # test_provision checks the spread of a fresh service).
        victim = eventually(
            lambda: min((pod for pod in running(service.pods()) if pod.node not in drained),
                        key=lambda pod: (pod.node, pod.name), default=None),
            f"a running pod on a node other than {sorted(drained)}")
        drained.add(victim.node)
        service.delete_pod(victim.name, grace_period=None, force=False)
        service.drain_node(victim.node, wait=True, timeout=WAIT_TIMEOUT)
        on_node = [pod for pod in service.pods() if pod.node == victim.node]
        assert not on_node, f"pods on {victim.node} after drain_node(wait=True): {on_node}"
    pods = wait_steady(service, REPLICAS)
    assert len({pod.node for pod in pods}) == 1, f"pods outside the one undrained node: {pods}"


def test_exclude_from_load_balancers_labels_the_node_and_touches_nothing_else(
        story: Story, mode: str) -> None:
    """The label only: no cordon, no eviction, every pod keeps serving through the ingress. A
    backend that reports target states shows the controller deregistering the node (instance
    mode), a reconcile lag later."""
    service = story.provision(mode)
    pods = wait_steady(service, REPLICAS)
    node = pods[0].node
    service.exclude_from_load_balancers(node)
    labelled = story.log.wait_for("node.labelled", node)
    assert EXCLUDE_LABEL in labelled.message, labelled
    if Capability.TARGET_STATES in story.backend.capabilities and mode == "instance":
        draining = story.log.wait_for("target.draining", node, timeout=WAIT_TIMEOUT)
        assert EXCLUDE_LABEL in draining.message, draining
    assert not story.log.of("node.cordoned") and not story.log.of("pod.deleted")
    assert wait_steady(service, REPLICAS) == pods
    hits(service, {pod.name for pod in pods})  # every answer a 200, from every pod


def test_kill_container_restarts_it_in_place(story: Story, mode: str) -> None:
    if Capability.CONTAINER_KILL not in story.backend.capabilities:
        pytest.skip(f"backend {story.backend.name} lacks {Capability.CONTAINER_KILL.value}")
    service = story.provision(mode)
    before = service.pods()
    victim = before[0]
    service.kill_container(victim.name, "SIGKILL")

    def restarted() -> bool:
        pods = {pod.name: pod for pod in service.pods()}
        pod = pods.get(victim.name)
        return pod is not None and pod.restarts == 1 and pod.ready

    eventually(restarted, f"{victim.name} restarted and Ready again")
    pods = wait_steady(service, REPLICAS)
    # The same pods: the victim was not replaced, only its container restarted.
    assert {pod.name for pod in pods} == {pod.name for pod in before}, pods
    survivor = next(pod for pod in pods if pod.name == victim.name)
    assert survivor.restarts == 1 and survivor.node == victim.node, survivor
    assert survivor.address == victim.address, survivor
    assert not [pod for pod in pods if pod.name != victim.name and pod.restarts], pods
    assert not story.log.of("pod.deleted"), "killing a container deleted a pod"
    story.log.wait_for("pod.restarted", victim.name)
