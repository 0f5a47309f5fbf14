"""The contract every backend implements, seen from the pytest process.

It speaks Kubernetes, not the simulator: a backend provisions the sample Deployment, its Service
and an Ingress of a target type (:class:`ProvisionRequest`), names them (:class:`ServiceIdentity`),
reports pods with real phases and conditions (:class:`PodInfo`), carries out chaos through the
same verbs ``kubectl`` has, and reports what it observes as events of an
:class:`~.events.EventKind`, stamped with ``time.monotonic()``, into the test's
:class:`~.events.EventSink`. What only some backends can do is declared in
:attr:`Backend.capabilities`; the plugin refuses, at setup, a test that needs a capability its
backend lacks.

Every wait has a deadline and ends with :class:`~..errors.BackendTimeout` saying what it saw;
every failure of a backend's client is raised as :class:`~..errors.BackendError`, chained.
``Service.teardown()`` is idempotent and ends the waits still in progress.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .events import EventSink
from .specs import AlbSpec, ServiceSpec

POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
# The well-known node label that load balancer controllers read as "deregister this node"
# (docs/alb-facts.md section 7): Service.exclude_from_load_balancers sets it.
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"

class Capability(enum.Enum):
    """What only some backends can do."""

    CONTAINER_KILL = "container-kill"  # signal a pod's container, the pod kept: kill_pods(signal=)
    NODE_TERMINATION = "node-termination"  # drain_node ends with the node's termination
    TARGET_STATES = "target-states"  # reports load balancer target states (target.* events)


@dataclass(frozen=True)
class ServiceIdentity:
    """Where the provisioned objects live and what they are called."""

    namespace: str
    deployment: str
    service: str
    ingress: str
    selector: Mapping[str, str]  # the labels of the Deployment's pods


@dataclass(frozen=True)
class PodInfo:
    """One pod of the sample service as the API shows it now."""

    name: str
    node: str
    address: str  # podIP:port, as the API reports it (a name only: nothing connects to it)
    phase: str  # one of POD_PHASES
    ready: bool  # the Ready condition
    terminating: bool = False  # deletion requested (deletionTimestamp set), not yet gone
    restarts: int = 0
    conditions: Mapping[str, bool] = field(default_factory=dict)  # Ready, ContainersReady, ...
    exited: bool = False  # every container reported terminated (the pod may linger in the API)

    @property
    def shutting_down(self) -> bool:
        """Deleted and a container still runs: its termination (preStop, SIGTERM, grace) is
        not over. A kubelet 1.20 leaves an exited pod in the API 5 to 15 s more, until its
        volumes and cgroups are cleaned up (docs/local-cluster-nodes.md); that wait is no part
        of the story a load window has to cover."""
        return self.terminating and not self.exited

    @property
    def running(self) -> bool:
        """Running and not terminating: a pod chaos may pick as a victim."""
        return self.phase == "Running" and not self.terminating


@dataclass(frozen=True)
class ProvisionRequest:
    """What to provision for one test: the sample Deployment, its Service and an Ingress of
    target type ``mode``, with the settings of the test's markers."""

    test: str  # the pytest node id, for names, labels and messages
    mode: str  # "ip" or "instance"
    service: ServiceSpec
    alb: AlbSpec
    extras: Mapping[str, object]  # backend-specific marker specs, by marker name ("sim": ...)
    seed: int  # makes whatever the backend chooses at random repeatable
    events: EventSink  # where to report what the backend observes, from now on
    timeout: float  # wall seconds to reach a steady state
    # Backends that apply manifests pass them here first (Deployment, Service, Ingress), to be
    # changed in place: the plugin's pytest_ingress_manifests hook.
    customize: Callable[[list[dict[str, Any]]], None] | None = None


class Service(Protocol):
    """The sample service behind an ingress, provisioned for one test."""

    identity: ServiceIdentity
    url: str  # the ingress, e.g. "http://127.0.0.1:41234"
    mode: str  # "ip" or "instance"
    # Headers every request to ``url`` must carry to reach this service's rule (an AWS ALB
    # shared by a run's tests tells their rules apart by one); empty when none is needed.
    request_headers: Mapping[str, str]

    def pods(self) -> list[PodInfo]:
        """The Deployment's pods in the API, terminating ones included."""
        ...

    def delete_pod(self, name: str, *, grace_period: float | None, force: bool) -> None:
        """Start a pod's deletion (returns once the API accepted it, not when it is gone)."""
        ...

    def kill_container(self, name: str, signal: str) -> None:
        """Send ``signal`` to the pod's container process only; the pod restarts it.
        Needs :attr:`Capability.CONTAINER_KILL`."""
        ...

    def rollout_restart(self, max_surge: int | str, max_unavailable: int | str, *,
                        wait: bool, timeout: float) -> None:
        """Restart the Deployment's pods as ``kubectl rollout restart`` does; with ``wait``,
        return once the rollout is complete, or raise BackendTimeout after ``timeout`` s."""
        ...

    def scale(self, replicas: int) -> None:
        """Scale the Deployment."""
        ...

    def drain_node(self, node: str, *, wait: bool, timeout: float) -> None:
        """Cordon ``node`` and evict its pods (then terminate it, with
        :attr:`Capability.NODE_TERMINATION`); with ``wait``, return once that is done."""
        ...

    def exclude_from_load_balancers(self, node: str) -> None:
        """Label ``node`` ``node.kubernetes.io/exclude-from-external-load-balancers``, which
        load balancer controllers read as "deregister this node" (docs/alb-facts.md section
        7), under the same rules as a drain: only a node the run may drain. A node that
        outlives the test loses the label at teardown."""
        ...

    def teardown(self) -> None:
        """Remove everything provisioned for this service; idempotent. Ends waits in progress."""
        ...


class Backend(Protocol):
    """Session-wide access to where services run (the simulator, a real cluster)."""

    name: str
    capabilities: frozenset[Capability]

    def provision(self, request: ProvisionRequest) -> Service:
        """Deploy the sample service behind an ingress, wait until it is in a steady state
        (raising BackendTimeout with what it saw after ``request.timeout``), and report what
        it observes from then on into ``request.events``."""
        ...

    def describe(self) -> str:
        """Lines for the pytest header: what this backend is pointed at (the first), and what
        else a user must know before reading the reports (one line each)."""
        ...

    def close(self) -> None:
        """Stop everything this backend started; idempotent."""
        ...
