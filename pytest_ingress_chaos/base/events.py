"""What happens on a test's timeline: the event kinds, an event, and the sink events go to.

:class:`EventKind` is the one list of the kinds of event a backend may report: the backends emit
its members, the verdict and the report's lanes key their tables on them, and the contract suite
checks that a backend reports nothing else. A kind's value is the string that crosses processes
and lands in the JSON report (``"pod.deleted"``); members compare equal to it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class EventKind(str, enum.Enum):
    """Every kind of event a backend may report; :attr:`description` says what it means."""

    # pods
    POD_CREATED = "pod.created"
    POD_READY = "pod.ready"
    POD_GATED = "pod.gated"
    POD_NOT_READY = "pod.not_ready"
    POD_DELETED = "pod.deleted"
    POD_PRESTOP = "pod.prestop"
    POD_SIGNAL = "pod.signal"
    POD_EXITED = "pod.exited"
    POD_CRASHED = "pod.crashed"
    POD_RESTARTED = "pod.restarted"
    POD_GONE = "pod.gone"
    ADDRESS_RELEASED = "address.released"
    ADDRESS_KEPT = "address.kept"
    # endpoints
    ENDPOINTS_UPDATED = "endpoints.updated"
    ENDPOINT_READY = "endpoint.ready"
    ENDPOINT_NOT_READY = "endpoint.not_ready"
    ENDPOINT_REMOVED = "endpoint.removed"
    # load balancer and its targets
    ALB_READY = "alb.ready"
    TARGET_REGISTERED = "target.registered"
    TARGET_HEALTHY = "target.healthy"
    TARGET_UNHEALTHY = "target.unhealthy"
    TARGET_DRAINING = "target.draining"
    TARGET_REMOVED = "target.removed"
    TARGET_UNREACHABLE = "target.unreachable"
    KUBE_PROXY_SYNCED = "kube-proxy.synced"
    # the load balancer as its cloud's API shows it (source "aws", docs/aws-evidence.md)
    AWS_NOTE = "aws.note"
    AWS_GAP = "aws.gap"
    # workloads and nodes
    ROLLOUT_STARTED = "rollout.started"
    ROLLOUT_DONE = "rollout.done"
    DEPLOYMENT_SCALED = "deployment.scaled"
    NODE_CORDONED = "node.cordoned"
    NODE_LABELLED = "node.labelled"
    NODE_TERMINATING = "node.terminating"
    NODE_TERMINATED = "node.terminated"
    NODE_NOT_READY = "node.not_ready"

    def __str__(self) -> str:  # f-strings and str() give the wire value, as str.__str__ would
        return self.value

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS: dict[EventKind, str] = {
    EventKind.POD_CREATED: "a pod of the sample Deployment was created (scheduled on a node)",
    EventKind.POD_READY: "a pod's Ready condition turned true",
    EventKind.POD_GATED: "a pod's containers are ready, its readiness gate is not yet true",
    EventKind.POD_NOT_READY: "a pod that was Ready is no longer Ready (it is still running)",
    EventKind.POD_DELETED: "a pod's deletion was requested (deletionTimestamp set): it is "
                           "terminating",
    EventKind.POD_PRESTOP: "the kubelet runs the pod's preStop hook",
    EventKind.POD_SIGNAL: "a signal was sent to a pod's container (SIGTERM, SIGKILL, ...)",
    EventKind.POD_EXITED: "a terminating pod's container process ended",
    EventKind.POD_CRASHED: "a running pod's container ended; the kubelet will restart it",
    EventKind.POD_RESTARTED: "a pod's container was restarted in place",
    EventKind.POD_GONE: "a pod left the API (its deletion completed)",
    EventKind.ADDRESS_RELEASED: "a dead pod's IP no longer answers at all (connects time out)",
    EventKind.ADDRESS_KEPT: "a dead pod's IP keeps refusing connections",
    EventKind.ENDPOINTS_UPDATED: "the Service's ready endpoints changed (the full list)",
    EventKind.ENDPOINT_READY: "an endpoint became ready",
    EventKind.ENDPOINT_NOT_READY: "an endpoint is no longer ready (terminating or failing its "
                                  "probe)",
    EventKind.ENDPOINT_REMOVED: "an endpoint left the Service",
    EventKind.ALB_READY: "the load balancer serves the service",
    EventKind.TARGET_REGISTERED: "a target joined the target group (initial, or a steady "
                                 "state)",
    EventKind.TARGET_HEALTHY: "a target passed its health checks",
    EventKind.TARGET_UNHEALTHY: "a target failed its health checks",
    EventKind.TARGET_DRAINING: "a target was deregistered and drains: no new requests",
    EventKind.TARGET_REMOVED: "a drained target left the target group",
    EventKind.TARGET_UNREACHABLE: "a target the load balancer still sends new requests to no "
                                  "longer answers (its node is gone): they fail until health "
                                  "checks mark it unhealthy or it is deregistered",
    EventKind.KUBE_PROXY_SYNCED: "kube-proxy on every node forwards to the current endpoints",
    EventKind.AWS_NOTE: "what the AWS API says about the test's load balancer (its target "
                        "group, attributes, where they differ from the markers), or why there "
                        "is no AWS view",
    EventKind.AWS_GAP: "the AWS API gave no target health from here (throttled, denied, no "
                       "answer), or gives it again",
    EventKind.ROLLOUT_STARTED: "a rollout began replacing the Deployment's pods",
    EventKind.ROLLOUT_DONE: "every pod of the Deployment is of the new revision and Ready",
    EventKind.DEPLOYMENT_SCALED: "the Deployment's replica count changed",
    EventKind.NODE_CORDONED: "a node was marked unschedulable",
    EventKind.NODE_LABELLED: "a node was labelled; node.kubernetes.io/exclude-from-external-"
                             "load-balancers makes load balancer controllers deregister it",
    EventKind.NODE_TERMINATING: "a drained node's instance is being terminated: it shuts down",
    EventKind.NODE_TERMINATED: "a node went away: its instance and network are gone",
    EventKind.NODE_NOT_READY: "a node's Ready condition is no longer true: the control plane "
                              "has not heard from its kubelet for the node-monitor grace period",
}


@dataclass(frozen=True)
class Event:
    """Something that happened during the test, ``at`` seconds (test time) from load start."""

    at: float
    source: str  # "chaos", "cluster", "alb", "kube-proxy", "load"
    kind: str  # machine-readable: an EventKind, or a chaos action's name ("kill_pods")
    subject: str  # the pod, target or node it is about
    message: str  # one human-readable line


def timeline_line(at: float, source: str, message: str) -> str:
    """One line of a timeline as people read it (the terminal report, ``ingress-sim``'s
    output): ``   12.34  cluster    pod kubia-x2x9k deleted``."""
    at = at if abs(at) >= 0.005 else 0.0  # no "-0.00"
    return f"{at:8.2f}  {source:<10} {message}"


class EventSink(Protocol):
    """Where a backend reports what it observes: called with named arguments, ``stamp`` being
    the ``time.monotonic()`` instant it happened at."""

    def __call__(self, *, stamp: float, source: str, kind: str, subject: str,
                 message: str) -> None:
        ...
