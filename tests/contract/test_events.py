"""Events: each verb is reported with the kinds EventKind defines, and nothing else.

Every story of the suite is checked when it ends (kinds, stamps inside the story: see
``Story.finish``); this story runs every verb on one service and checks, in the test itself,
that what each verb does shows up in the event stream.
"""

from __future__ import annotations

import time

from pytest_ingress_chaos.base.backend import Capability
from pytest_ingress_chaos.base.events import EventKind

from .support import WAIT_TIMEOUT, Story, check_events, wait_serving, wait_steady

REPLICAS = 3


def test_every_verb_reports_known_event_kinds(story: Story, mode: str) -> None:
    service = story.provision(mode)
    log = story.log
    first = service.pods()

    service.delete_pod(first[0].name, grace_period=None, force=False)
    if Capability.CONTAINER_KILL in story.backend.capabilities:
        service.kill_container(first[1].name, "SIGKILL")
        log.wait_for("pod.restarted", first[1].name)
    log.wait_for("pod.gone", first[0].name)
    wait_steady(service, REPLICAS)
    service.scale(4)
    wait_steady(service, 4)
    service.rollout_restart("25%", "25%", wait=True, timeout=WAIT_TIMEOUT)
    node = next(pod.node for pod in service.pods() if pod.running)
    service.drain_node(node, wait=True, timeout=WAIT_TIMEOUT)
    wait_serving(service, 4)

    kinds = {event.kind for event in log.events}
    expected = {"pod.created", "pod.ready", "pod.deleted", "pod.exited", "pod.gone",
                "endpoints.updated", "alb.ready", "deployment.scaled", "rollout.started",
                "rollout.done", "node.cordoned"}
    if Capability.CONTAINER_KILL in story.backend.capabilities:
        expected |= {"pod.crashed", "pod.restarted"}
    if Capability.NODE_TERMINATION in story.backend.capabilities:
        expected.add("node.terminated")
    if Capability.TARGET_STATES in story.backend.capabilities and mode == "ip":
        # The controller registers the replacements after its lag; waiting for one is enough.
        log.wait_for("target.registered", timeout=WAIT_TIMEOUT)
        kinds.add("target.registered")
    assert expected <= kinds, f"not reported: {sorted(expected - kinds)}"
    assert kinds & {"endpoint.removed", "endpoint.not_ready"}
    check_events(log.events, story.start, time.monotonic())
    assert set(kinds) <= set(EventKind)
