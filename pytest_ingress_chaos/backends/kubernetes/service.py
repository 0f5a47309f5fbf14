"""One provisioned sample service on a real cluster: the contract's ``Service``.

Chaos goes through the verbs ``kubectl`` has (delete, rollout restart, scale, cordon, label and
evict), each checked by the :class:`~.guard.Guard` against the API right before it acts. The
watches started at provisioning report what the cluster does in response; this class reports
only what it does itself and the API confirmed (a cordon, a label). ``teardown()`` ends
everything the service started: waits in progress (through the shared cancel event), the
watches, the objects, the cordons and the labels.
"""

from __future__ import annotations

import datetime
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from ...base.backend import EXCLUDE_LABEL, PodInfo, ServiceIdentity
from ...base.errors import BackendError
from ...base.events import EventKind, EventSink
from . import pods
from .apis import ApiError, JsonDict, KubeApi
from .deadline import Deadline
from .diagnosis import describe_pods
from .guard import Guard
from .observers import (
    DeploymentObserver,
    EndpointSliceObserver,
    PodEventObserver,
    PodObserver,
)
from .profiles import whole_seconds
from .waits import REQUEST_CAP, rollout_complete
from .watches import Observer, ResourceWatch

log = logging.getLogger(__name__)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
SOURCE = "cluster"
# Pods that kubectl drain leaves alone: a DaemonSet recreates them at once on the same node, and
# a mirror pod is the kubelet's own (the API cannot delete it).
_MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


class KubernetesService:
    """The Deployment, Service and Ingress called ``identity.deployment`` in the session's
    namespace."""

    def __init__(self, api: KubeApi, identity: ServiceIdentity, mode: str, guard: Guard,
                 events: EventSink, *, prestop: bool,
                 forget: Callable[[KubernetesService], None],
                 cancel: threading.Event | None = None,
                 request_headers: Mapping[str, str] | None = None) -> None:
        self.api = api
        self.identity = identity
        self.mode = mode
        self.url = ""  # set once the provision reached a steady state
        self.request_headers: Mapping[str, str] = MappingProxyType(dict(request_headers or {}))
        self.guard = guard
        self._events = events
        self._prestop = prestop
        self._forget = forget
        # Set by teardown: ends every wait in progress (the provision's too, when given).
        self.cancel = cancel if cancel is not None else threading.Event()
        self._quiet = threading.Event()  # set by teardown: no event after it
        self._lock = threading.Lock()
        self._torn_down = False
        self._watches: list[ResourceWatch] = []
        self._cordoned: list[str] = []
        self._excluded: list[str] = []  # nodes this service labelled EXCLUDE_LABEL
        self.on_teardown: list[Callable[[], None]] = []  # e.g. the AWS target health poller

    @property
    def namespace(self) -> str:
        return self.identity.namespace

    @property
    def name(self) -> str:
        return self.identity.deployment

    @property
    def selector(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self.identity.selector.items())

    def emit(self, kind: EventKind, subject: str, message: str, *, source: str = SOURCE,
             at: float | None = None) -> None:
        """Report an event, unless the service is being torn down (the contract stamps every
        event inside the test that provisioned the service)."""
        if not self._quiet.is_set():
            self._events(stamp=time.monotonic() if at is None else at, source=source, kind=kind,
                         subject=subject, message=message)

    def _emit_observed(self, at: float, kind: EventKind, subject: str, message: str) -> None:
        self.emit(kind, subject, message, at=at)

    # --- watches --------------------------------------------------------------------------

    def start_watches(self) -> None:
        """Watch the pods, the EndpointSlices, the Deployment and the pods' Events. Started
        before the objects are created, so that every pod's whole life is reported."""
        api, namespace, name, emit = self.api, self.namespace, self.name, self._emit_observed
        partial = functools.partial
        pod_observer = PodObserver(emit, self._read_pod_if_any)
        catch_up = pod_observer.catch_up
        watched: list[tuple[str, Callable[..., object], Observer]] = [
            (f"pods of {name}",
             partial(api.core.list_namespaced_pod, namespace, label_selector=self.selector),
             pod_observer),
            (f"EndpointSlices of Service {name}", api.endpoint_slice_lister(namespace, name),
             EndpointSliceObserver(emit, name, catch_up)),
            (f"Deployment {name}",
             partial(api.apps.list_namespaced_deployment, namespace,
                     field_selector=f"metadata.name={name}"),
             DeploymentObserver(emit, name)),
            (f"Events of the pods of {name}",
             partial(api.core.list_namespaced_event, namespace,
                     field_selector="involvedObject.kind=Pod"),
             PodEventObserver(emit, f"{name}-", self._prestop, catch_up)),
        ]
        for what, lister, observer in watched:
            watch = ResourceWatch(f"{what} in namespace {namespace}", api, lister, observer)
            self._watches.append(watch)
            watch.start()

    # --- reading --------------------------------------------------------------------------

    def _list_pods(self, timeout: float = REQUEST_CAP) -> list[JsonDict]:
        return self.api.items(f"list pods of {self.name} in namespace {self.namespace}",
                              self.api.core.list_namespaced_pod, self.namespace,
                              label_selector=self.selector, timeout=timeout)

    def pods(self) -> list[PodInfo]:
        """The Deployment's pods in the API, terminating ones included, in the API's order."""
        self._check_alive()
        return [pods.info(pod) for pod in self._list_pods()]

    def _read_pod(self, name: str) -> JsonDict:
        return self.api.call(f"read pod {name} in namespace {self.namespace}",
                             self.api.core.read_namespaced_pod, name, self.namespace)

    def _read_pod_if_any(self, name: str) -> JsonDict | None:
        """A fresh read for the watches' catch-up: None when the pod is gone."""
        try:
            return self.api.call(f"read pod {name} in namespace {self.namespace}",
                                 self.api.core.read_namespaced_pod, name, self.namespace,
                                 timeout=5.0)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    # --- chaos ----------------------------------------------------------------------------

    def delete_pod(self, name: str, *, grace_period: float | None, force: bool) -> None:
        """``kubectl delete pod`` (``--force --grace-period=0`` with ``force``), of a pod this
        run created; returns once the API accepted the deletion."""
        self._check_alive()
        pod = self._read_pod(name)
        self.guard.check_pod(pod, "delete")
        # The UID precondition: the pod just checked, not one given its name since. Everything
        # goes in the body: the API server ignores the query parameters of a DELETE that has
        # one, so a gracePeriodSeconds query parameter would be silently dropped.
        options: JsonDict = {"preconditions": {"uid": pods.uid(pod)}}
        if force:
            options["gracePeriodSeconds"] = 0  # kubectl --force --grace-period=0: at once
        elif grace_period is not None:
            options["gracePeriodSeconds"] = whole_seconds(grace_period)
        self.api.call(f"delete pod {name} in namespace {self.namespace}",
                      self.api.core.delete_namespaced_pod, name, self.namespace, body=options)

    def kill_container(self, name: str, signal: str) -> None:
        raise BackendError(
            f"the kubernetes backend cannot send {signal} to the container of pod {name}: the "
            "Kubernetes API has no verb for signalling a container, so this backend lacks the "
            "container-kill capability; delete the pod instead (kill_pods without signal=)")

    def rollout_restart(self, max_surge: int | str, max_unavailable: int | str, *,
                        wait: bool, timeout: float) -> None:
        """``kubectl rollout restart``, with the rolling-update bounds set first; with
        ``wait``, ``kubectl rollout status``."""
        self._check_alive()
        # Microseconds, unlike kubectl's whole seconds: two restarts within one second must
        # still be two template changes, or the second would do nothing.
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
        patch = {"spec": {
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": max_surge,
                                           "maxUnavailable": max_unavailable}},
            "template": {"metadata": {"annotations": {RESTARTED_AT: now}}},
        }}
        deployment = self.api.call(
            f"restart Deployment {self.name} in namespace {self.namespace}",
            self.api.apps.patch_namespaced_deployment, self.name, self.namespace, patch)
        if wait:
            generation = int((deployment.get("metadata") or {}).get("generation") or 0)
            rollout_complete(self.api, self.namespace, self.name, generation,
                             Deadline(timeout, f"rollout_restart of {self.name}", self.cancel))

    def scale(self, replicas: int) -> None:
        """``kubectl scale --replicas`` through the scale subresource."""
        self._check_alive()
        self.api.call(f"scale Deployment {self.name} in namespace {self.namespace} to "
                      f"{replicas} replicas", self.api.apps.patch_namespaced_deployment_scale,
                      self.name, self.namespace, {"spec": {"replicas": replicas}})

    def drain_node(self, node: str, *, wait: bool, timeout: float) -> None:
        """``kubectl drain``, narrowed to this service: cordon ``node`` (only while it runs one
        of our pods), evict our pods there; with ``wait``, until none is left on it (those
        already terminating included). Pods of other owners stay, unless opted in."""
        self._check_alive()
        deadline = Deadline(timeout, f"drain_node {node}", self.cancel)
        ours = [pod for pod in self._list_pods()
                if pods.node(pod) == node and self.guard.may_touch(pod)]
        self.guard.check_node(node, len(ours), self.name)
        self._cordon(node)
        evicted: dict[str, str | None] = {}
        remaining = self._evict_round(node, evicted, retry_refusals=wait)
        if not wait:
            return
        seen = [remaining]

        def probe() -> bool | None:
            seen[0] = self._evict_round(node, evicted, retry_refusals=True)
            return True if not seen[0] else None

        deadline.poll(probe, lambda: f"still on {node}: {describe_pods(seen[0])}")

    def exclude_from_load_balancers(self, node: str) -> None:
        """``kubectl label node NODE node.kubernetes.io/exclude-from-external-load-balancers=
        true``, on a node the run may drain (it runs one of our pods, or foreign nodes are
        allowed); the label goes again at teardown. A label someone else set stays."""
        self._check_alive()
        ours = [pod for pod in self._list_pods()
                if pods.node(pod) == node and self.guard.may_touch(pod)]
        self.guard.check_node(node, len(ours), self.name, action="label")
        current = self.api.call(f"read node {node}", self.api.core.read_node, node)
        if EXCLUDE_LABEL in ((current.get("metadata") or {}).get("labels") or {}):
            self.emit(EventKind.NODE_LABELLED, node, f"{node} is labelled {EXCLUDE_LABEL} already "
                      "(by someone else; left so after the test)")
            return
        self.api.call(f"label node {node}", self.api.core.patch_node, node,
                      {"metadata": {"labels": {EXCLUDE_LABEL: "true"}}})
        with self._lock:
            self._excluded.append(node)
        self.emit(EventKind.NODE_LABELLED, node, f"{node} labelled {EXCLUDE_LABEL}=true")

    def _cordon(self, node: str) -> None:
        current = self.api.call(f"read node {node}", self.api.core.read_node, node)
        if (current.get("spec") or {}).get("unschedulable"):
            self.emit(EventKind.NODE_CORDONED, node,
                      f"{node} is unschedulable already (cordoned by someone else; left so "
                      "after the test)")
            return
        self.api.call(f"cordon node {node}", self.api.core.patch_node, node,
                      {"spec": {"unschedulable": True}})
        with self._lock:
            self._cordoned.append(node)
        self.emit(EventKind.NODE_CORDONED, node, f"{node} cordoned (spec.unschedulable=true)")

    def _on_node(self, node: str) -> list[JsonDict]:
        """The pods on ``node`` this drain is about: the service's that this run created, and
        with the foreign-pods opt-in every other one kubectl drain would evict."""
        listed = [pod for pod in self._list_pods()
                  if pods.node(pod) == node and self.guard.may_touch(pod)]
        if self.guard.foreign_pods:
            others = self.api.items(f"list pods on node {node}",
                                    self.api.core.list_pod_for_all_namespaces,
                                    field_selector=f"spec.nodeName={node}", timeout=REQUEST_CAP)
            names = {pods.name(pod) for pod in listed}
            listed += [pod for pod in others if pods.name(pod) not in names
                       and not _left_by_drain(pod)]
        return listed

    def _evict_round(self, node: str, evicted: dict[str, str | None], *,
                     retry_refusals: bool) -> list[JsonDict]:
        """Evict every pod on ``node`` not evicted yet (a replacement the scheduler bound there
        just before the cordon, too); returns the pods still there."""
        listed = self._on_node(node)
        for pod in listed:
            name, uid = pods.name(pod), pods.uid(pod)
            if pods.terminating(pod) or evicted.get(name) == uid:
                continue
            self.guard.check_pod(pod, "evict")
            namespace = str((pod.get("metadata") or {}).get("namespace") or self.namespace)
            try:
                self.api.evict(name, namespace, uid=uid, timeout=REQUEST_CAP)
            except ApiError as exc:
                if exc.status == 404:  # gone meanwhile: nothing to evict
                    continue
                if exc.status == 429 and retry_refusals:  # a PodDisruptionBudget: try again
                    log.info("eviction of %s refused for now: %s", name, exc)
                    continue
                raise
            evicted[name] = uid
        return listed

    # --- teardown -------------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._torn_down:
            raise BackendError(f"service {self.name} in namespace {self.namespace} was torn "
                               "down")

    def stop_watches(self) -> None:
        for watch in self._watches:
            watch.stop(join_timeout=0)
        for watch in self._watches:
            watch.stop()

    def teardown(self) -> None:
        """Stop the watches, end waits in progress, delete the Ingress, Service and Deployment
        (the namespace is the session's), uncordon the nodes this service cordoned and take
        off the labels it put on nodes. Idempotent."""
        with self._lock:
            if self._torn_down:
                return
            self._torn_down = True
        self.cancel.set()
        self._quiet.set()
        self.stop_watches()
        for stop in self.on_teardown:
            stop()
        errors: list[BackendError] = []
        # The Ingress first: the load balancer stops sending before the pods go.
        for kind, delete in (("Ingress", self.api.networking.delete_namespaced_ingress),
                             ("Service", self.api.core.delete_namespaced_service),
                             ("Deployment", self.api.apps.delete_namespaced_deployment)):
            try:
                self.api.call(f"delete {kind} {self.name} in namespace {self.namespace}",
                              delete, self.name, self.namespace,
                              propagation_policy="Background")
            except ApiError as exc:
                if exc.status != 404:
                    errors.append(exc)
        undo: list[tuple[str, str, JsonDict]] = [
            (f"uncordon node {node}", node, {"spec": {"unschedulable": None}})
            for node in self._cordoned]
        undo += [(f"remove label {EXCLUDE_LABEL} from node {node}", node,
                  {"metadata": {"labels": {EXCLUDE_LABEL: None}}}) for node in self._excluded]
        for what, node, patch in undo:
            try:
                self.api.call(what, self.api.core.patch_node, node, patch)
            except ApiError as exc:
                if exc.status != 404:
                    errors.append(exc)
        self._forget(self)
        if errors:
            raise BackendError(f"teardown of {self.name} in namespace {self.namespace}: "
                               + "; ".join(map(str, errors))) from errors[0]


def _left_by_drain(pod: JsonDict) -> bool:
    meta = pod.get("metadata") or {}
    if _MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return True
    return any(owner.get("kind") == "DaemonSet" for owner in meta.get("ownerReferences") or [])

