"""What the watches see, translated into the contract's events (``base.events.EventKind``).

Each observer keeps the last state it saw of its objects and reports transitions only, stamped
with ``time.monotonic()`` when the watch delivered them (the timeline's clock); the API's own
timestamps, which are whole seconds on another clock, stay in the message. Events about one pod
come from several watches, and are kept in causal order across them (see :class:`PodObserver`).
Only what the API shows is reported: a real cluster tells nothing of signals or released
addresses except through kubelet Events, so those kinds appear only when such an Event does.

These are plain state machines over dicts, fed by :mod:`.watches`: they can be checked without a
cluster.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...base.errors import BackendError
from ...base.events import EventKind
from . import pods
from .apis import JsonDict
from .waits import rollout_done

log = logging.getLogger(__name__)

# time.monotonic(), kind, subject, message; the source is always "cluster"
Emit = Callable[[float, EventKind, str, str], None]
# Pod name and the stamp an event about it would get -> the stamp to use (PodObserver.catch_up)
CatchUp = Callable[[str, float], float]

_TICK = 1e-6  # seconds between two events about one pod that arrived at the same instant
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


# --- pods -----------------------------------------------------------------------------------


@dataclass
class _PodState:
    uid: str | None = None
    version: str = ""  # the last resourceVersion applied
    created: bool = False
    ready: bool = False
    gated: bool = False
    deleted: bool = False
    exited: bool = False
    restarts: dict[str, int] = field(default_factory=dict)  # per container
    crashes: set[tuple[str, int]] = field(default_factory=set)  # (container, restartCount)


def _newer(version: str, than: str) -> bool:
    """Whether resourceVersion ``version`` is newer than ``than``. Versions are opaque by the
    API's rules, but every etcd-backed server sends etcd revisions, integers that only grow; when
    they are not, a fresh read is simply taken as newer."""
    if version.isdigit() and than.isdigit():
        return int(version) > int(than)
    return version != than


class PodObserver:
    """The Deployment's pods: created, ready, gated, not ready, deleted, exited, crashed,
    restarted, gone.

    Events about one pod come from several watches (pods, EndpointSlices, Events), each on its
    own connection and thread, so an EndpointSlice change caused by a deletion may arrive before
    the pod watch delivers the deletion itself. Two things keep the timeline causal:
    :meth:`catch_up` (another watch asks for the pod to be read afresh and its news reported
    first), and one clock per pod: no event about a pod is stamped before the previous one.
    """

    def __init__(self, emit: Emit, read: Callable[[str], JsonDict | None] | None = None
                 ) -> None:
        self.emit = emit
        self.read = read  # a fresh GET of a pod by name, None when it is gone (404)
        self.states: dict[str, _PodState] = {}
        self.stamps: dict[str, float] = {}  # the last stamp used for each pod
        self._gone_uids: set[str] = set()  # pods reported gone: late news of them is dropped
        self._lock = threading.Lock()  # the pod watch's thread and the others' catch-ups

    def _next_stamp(self, name: str, now: float) -> float:
        """``now``, or just after the pod's previous event if that one is later: strictly
        increasing per pod, so that even a report that orders same-time events by their text
        shows them in the order they happened."""
        last = self.stamps.get(name)
        stamp = now if last is None else max(now, last + _TICK)
        self.stamps[name] = stamp
        return stamp

    def _say(self, now: float, kind: EventKind, name: str, message: str) -> None:
        self.emit(self._next_stamp(name, now), kind, name, message)

    def sync(self, items: list[JsonDict], now: float, initial: bool) -> None:
        with self._lock:
            listed = {pods.name(pod) for pod in items}
            for pod in items:
                self._apply(pod, now)
            for name in sorted(set(self.states) - listed):  # deleted while nobody watched
                self._gone(name, now, "while the watch reconnected")

    def apply(self, change: str, obj: JsonDict, now: float) -> None:
        with self._lock:
            self._apply(obj, now)
            if change == "DELETED":
                self._gone(pods.name(obj), now, "")

    def catch_up(self, name: str, now: float) -> float:
        """Report what a fresh read of pod ``name`` shows that the pod watch has not delivered
        yet; returns the stamp for the caller's own event about that pod (never before one of
        the pod's own)."""
        fresh: JsonDict | None = {}
        if self.read is not None:
            try:
                fresh = self.read(name)
            except BackendError as exc:  # no catch-up then: the stamps still keep the order
                log.debug("catching up with pod %s: %s", name, exc)
        with self._lock:
            if fresh is None:
                self._gone(name, now, "")
            elif fresh:
                self._apply(fresh, now)
            return self._next_stamp(name, now)

    def _apply(self, pod: JsonDict, now: float) -> None:
        name, uid = pods.name(pod), pods.uid(pod)
        if uid is not None and uid in self._gone_uids:
            return
        version = str(_meta(pod).get("resourceVersion") or "")
        state = self.states.get(name)
        if state is not None and version and state.version and not _newer(version,
                                                                          state.version):
            return  # what a catch-up read already showed
        self._update(pod, now)

    def _gone(self, name: str, now: float, when: str) -> None:
        state = self.states.pop(name, None)
        if state is not None:
            if state.uid is not None:
                self._gone_uids.add(state.uid)
            self._say(now, EventKind.POD_GONE, name,
                      f"pod {name} left the API{' ' + when if when else ''}")

    def _update(self, pod: JsonDict, now: float) -> None:
        name = pods.name(pod)
        state = self.states.setdefault(name, _PodState())
        state.uid = pods.uid(pod) or state.uid
        state.version = str(_meta(pod).get("resourceVersion") or state.version)
        node = pods.node(pod)
        if not state.created and node:
            state.created = True
            self._say(now, EventKind.POD_CREATED, name, f"pod {name} created on {node} (created "
                      f"{_meta(pod).get('creationTimestamp')})")
        terminating = pods.terminating(pod)
        if terminating and not state.deleted:
            state.deleted = True
            meta = _meta(pod)
            self._say(now, EventKind.POD_DELETED, name, f"pod {name} deleted (grace "
                      f"{meta.get('deletionGracePeriodSeconds')}s, deletionTimestamp "
                      f"{meta.get('deletionTimestamp')})")
        self._readiness(pod, name, state, terminating, now)
        self._containers(pod, name, state, terminating, now)

    def _readiness(self, pod: JsonDict, name: str, state: _PodState, terminating: bool,
                   now: float) -> None:
        conditions = pods.conditions(pod)
        ready = conditions.get("Ready", False)
        if ready and not state.ready:
            self._say(now, EventKind.POD_READY, name,
                      f"pod {name} is Ready (since {pods.condition_since(pod, 'Ready')})")
        elif state.ready and not ready and not terminating and pods.phase(pod) == "Running":
            self._say(now, EventKind.POD_NOT_READY, name, f"pod {name} is no longer Ready (since "
                      f"{pods.condition_since(pod, 'Ready')})")
        state.ready = ready
        gated = (not ready and not terminating and conditions.get("ContainersReady", False)
                 and pods.has_readiness_gates(pod))
        if gated and not state.gated:
            waiting = [c for c, ok in conditions.items()
                       if not ok and c not in ("Ready", "ContainersReady")]
            self._say(now, EventKind.POD_GATED, name, f"pod {name}: containers ready, waiting for "
                      f"readiness gate {', '.join(waiting) or '(not reported yet)'}")
        state.gated = bool(gated)

    def _containers(self, pod: JsonDict, name: str, state: _PodState, terminating: bool,
                    now: float) -> None:
        for status in pods.container_statuses(pod):
            container = str(status.get("name"))
            count = int(status.get("restartCount") or 0)
            known = state.restarts.get(container)
            state.restarts[container] = count
            ended = (status.get("state") or {}).get("terminated")
            if terminating:
                if ended and not state.exited:
                    state.exited = True
                    self._say(now, EventKind.POD_EXITED, name, f"pod {name}: container {container} "
                              f"exited ({pods.describe_termination(ended)})")
                continue
            if ended and (container, count) not in state.crashes:
                state.crashes.add((container, count))
                self._say(now, EventKind.POD_CRASHED, name,
                          f"pod {name}: container {container} ended "
                          f"({pods.describe_termination(ended)}); the kubelet restarts it")
            if known is not None and count > known:
                if (container, known) not in state.crashes:  # ended and restarted in between
                    state.crashes.add((container, known))
                    last = (status.get("lastState") or {}).get("terminated") or {}
                    self._say(now, EventKind.POD_CRASHED, name,
                              f"pod {name}: container {container} ended "
                              f"({pods.describe_termination(last)})")
                started = ((status.get("state") or {}).get("running") or {}).get("startedAt")
                self._say(now, EventKind.POD_RESTARTED, name, f"pod {name}: container {container} "
                          f"restarted (restart {count}{f', started {started}' if started else ''})")
        if terminating and not state.exited and pods.phase(pod) in ("Succeeded", "Failed"):
            state.exited = True
            self._say(now, EventKind.POD_EXITED, name, f"pod {name}: containers ended (phase "
                      f"{pods.phase(pod)})")


# --- endpoints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Endpoint:
    ready: bool
    serving: bool | None
    terminating: bool | None
    address: str
    pod: str | None  # the targetRef's name

    def words(self) -> str:
        flags = [flag for flag, on in (("serving", self.serving),
                                       ("terminating", self.terminating)) if on]
        return f"{self.address}{' (' + ', '.join(flags) + ')' if flags else ''}"


def _endpoints(endpoint_slice: Mapping[str, Any]) -> dict[str, _Endpoint]:
    found = {}
    for endpoint in endpoint_slice.get("endpoints") or []:
        conditions = endpoint.get("conditions") or {}
        addresses = endpoint.get("addresses") or []
        address = str(addresses[0]) if addresses else "?"
        pod = (endpoint.get("targetRef") or {}).get("name")
        key = str(pod or address)
        # ready unset means ready (the API's own rule for an unknown state).
        found[key] = _Endpoint(conditions.get("ready") is not False, conditions.get("serving"),
                               conditions.get("terminating"), address,
                               str(pod) if pod else None)
    return found


class EndpointSliceObserver:
    """The Service's EndpointSlices, merged: endpoint.ready/not_ready/removed per pod, and
    endpoints.updated with the full ready list whenever it changes. Before reporting a change
    of a pod's endpoint, ``catch_up`` lets the pods' observer report what caused it first."""

    def __init__(self, emit: Emit, service: str, catch_up: CatchUp | None = None) -> None:
        self.emit = emit
        self.service = service
        self.catch_up = catch_up
        self.slices: dict[str, dict[str, _Endpoint]] = {}
        self.current: dict[str, _Endpoint] = {}

    def sync(self, items: list[JsonDict], now: float, initial: bool) -> None:
        self.slices = {str(_meta(item).get("name")): _endpoints(item) for item in items}
        self._publish(now, "")

    def apply(self, change: str, obj: JsonDict, now: float) -> None:
        name = str(_meta(obj).get("name"))
        if change == "DELETED":
            self.slices.pop(name, None)
        else:
            self.slices[name] = _endpoints(obj)
        trigger = (_meta(obj).get("annotations") or {}).get(TRIGGER_ANNOTATION)
        self._publish(now, f" (change triggered at {trigger})" if trigger else "")

    def _merged(self) -> dict[str, _Endpoint]:
        merged: dict[str, _Endpoint] = {}
        for endpoints in self.slices.values():
            for key, endpoint in endpoints.items():
                if key not in merged or endpoint.ready:
                    merged[key] = endpoint
        return merged

    def _stamp(self, endpoint: _Endpoint, now: float) -> float:
        if self.catch_up is None or endpoint.pod is None:
            return now
        return self.catch_up(endpoint.pod, now)

    def _publish(self, now: float, trigger: str) -> None:
        before, after = self.current, self._merged()
        latest = now
        for key, endpoint in after.items():
            old = before.get(key)
            if endpoint.ready and (old is None or not old.ready):
                latest = max(latest, stamp := self._stamp(endpoint, now))
                self.emit(stamp, EventKind.ENDPOINT_READY, key,
                          f"endpoint {key} {endpoint.address} is ready{trigger}")
            elif not endpoint.ready and old is not None and old.ready:
                latest = max(latest, stamp := self._stamp(endpoint, now))
                self.emit(stamp, EventKind.ENDPOINT_NOT_READY, key,
                          f"endpoint {key} {endpoint.words()} is not ready{trigger}")
        for key, old in before.items():
            if key not in after:
                latest = max(latest, stamp := self._stamp(old, now))
                self.emit(stamp, EventKind.ENDPOINT_REMOVED, key,
                          f"endpoint {key} {old.address} removed{trigger}")
        ready_before = sorted(k for k, e in before.items() if e.ready)
        ready_after = sorted(k for k, e in after.items() if e.ready)
        self.current = after
        if ready_before != ready_after:
            not_ready = [f"{k} {e.words()}" for k, e in sorted(after.items()) if not e.ready]
            rest = f"; {len(not_ready)} not ready ({', '.join(not_ready)})" if not_ready else ""
            self.emit(latest, EventKind.ENDPOINTS_UPDATED, self.service,
                      f"endpoints: {len(ready_after)} ready ({', '.join(ready_after) or 'none'})"
                      f"{rest}")


# --- the Deployment -------------------------------------------------------------------------


class DeploymentObserver:
    """The Deployment: scaled (spec.replicas changed), rollout started (the controller moved to
    a new revision) and done (``kubectl rollout status``'s rule)."""

    def __init__(self, emit: Emit, name: str) -> None:
        self.emit = emit
        self.name = name
        self.replicas: int | None = None
        self.revision: str | None = None
        self.rolling = False

    def sync(self, items: list[JsonDict], now: float, initial: bool) -> None:
        for item in items:
            self._update(item, now)

    def apply(self, change: str, obj: JsonDict, now: float) -> None:
        if change != "DELETED":
            self._update(obj, now)

    def _update(self, deployment: JsonDict, now: float) -> None:
        meta = _meta(deployment)
        replicas = int((deployment.get("spec") or {}).get("replicas") or 0)
        if self.replicas is not None and replicas != self.replicas:
            self.emit(now, EventKind.DEPLOYMENT_SCALED, self.name, f"Deployment {self.name} scaled "
                      f"from {self.replicas} to {replicas} replicas (generation "
                      f"{meta.get('generation')})")
        self.replicas = replicas
        revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
        if revision:
            if self.revision is not None and revision != self.revision:
                self.rolling = True
                self.emit(now, EventKind.ROLLOUT_STARTED, self.name, f"Deployment {self.name}: "
                          f"rollout from revision {self.revision} to {revision} began")
            self.revision = revision
        if self.rolling and rollout_done(deployment, int(meta.get("generation") or 0)):
            self.rolling = False
            self.emit(now, EventKind.ROLLOUT_DONE, self.name,
                      f"Deployment {self.name}: every one of its {replicas} pods is of "
                      f"revision {self.revision} and available")


# --- kubelet Events -------------------------------------------------------------------------


class PodEventObserver:
    """Core Events about the service's pods that stand for a contract event: the kubelet's
    ``Killing`` ("Stopping container ...") starts the preStop hook when the pod has one, else
    it is the SIGTERM. Events already there when the watch began are not reported."""

    def __init__(self, emit: Emit, pod_prefix: str, prestop: bool,
                 catch_up: CatchUp | None = None) -> None:
        self.emit = emit
        self.pod_prefix = pod_prefix
        self.prestop = prestop
        self.catch_up = catch_up
        self.seen: set[tuple[str, int]] = set()

    @staticmethod
    def _key(event: Mapping[str, Any]) -> tuple[str, int]:
        count = event.get("count") or (event.get("series") or {}).get("count") or 1
        return str(_meta(event).get("uid") or _meta(event).get("name")), int(count)

    def sync(self, items: list[JsonDict], now: float, initial: bool) -> None:
        for event in items:
            if initial:
                self.seen.add(self._key(event))
            else:
                self._report(event, now)

    def apply(self, change: str, obj: JsonDict, now: float) -> None:
        if change != "DELETED":
            self._report(obj, now)

    def _report(self, event: JsonDict, now: float) -> None:
        key = self._key(event)
        if key in self.seen:
            return
        self.seen.add(key)
        involved = event.get("involvedObject") or {}
        pod = str(involved.get("name") or "")
        if involved.get("kind") != "Pod" or not pod.startswith(self.pod_prefix):
            return
        stamp = (event.get("lastTimestamp") or event.get("eventTime")
                 or event.get("firstTimestamp") or "")
        said = f"{event.get('reason')}: {str(event.get('message') or '').strip()} at {stamp}"
        if event.get("reason") == "Killing":
            if self.catch_up is not None:  # the deletion first, then what the kubelet did
                now = self.catch_up(pod, now)
            if self.prestop:
                self.emit(now, EventKind.POD_PRESTOP, pod,
                          f"pod {pod}: the kubelet runs the preStop hook, SIGTERM follows "
                          f"(kubelet {said})")
            else:
                self.emit(now, EventKind.POD_SIGNAL, pod, f"pod {pod}: SIGTERM (kubelet {said})")
