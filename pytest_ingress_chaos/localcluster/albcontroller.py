"""An AWS Load Balancer Controller stand-in: Ingresses of class ``alb`` become the simulator's
ALB on loopback, driven from the API as the real controller drives a real one.

For each Ingress with ``ingressClassName: alb`` (or the older ``kubernetes.io/ingress.class``
annotation) the stand-in runs an :class:`~..backends.sim.alb.ALBListener` on a loopback port
with one :class:`~..backends.sim.alb.TargetGroup` for the Ingress's backend Service, and writes
where it listens: ``status.loadBalancer.ingress[0].ip = 127.0.0.1`` and the port in the
annotation ``ingress-chaos.dev/local-port`` (docs/kubernetes-backend.md). Deleting the Ingress
closes the listener.

The target type comes from ``alb.ingress.kubernetes.io/target-type`` (the Service's annotation
wins over the Ingress's; default ``instance``), as in docs/alb-facts.md section 2:

* **ip**: the targets are the Service's endpoints, from the API's EndpointSlices, translated to
  where each pod really listens (its ``ingress-chaos.dev/loopback`` annotation, found through
  the endpoint's ``targetRef``). Like the real controller's pipeline, each change is reconciled
  a lag later (``registration_lag``/``deregistration_lag`` +- ``lag_jitter``, as the simulator
  does), against the endpoints as they are then. A terminating endpoint is dropped from the
  desired targets at once (``endpoint_resolver.go``); a pod held back only by its
  ``target-health.elbv2.k8s.aws/...`` readiness gate is registered, and the gate's condition is
  set True in the pod's status once its target is healthy (section 5).
* **instance**: one :class:`~..backends.sim.kubeproxy.KubeProxy` per node serves the Service's
  NodePort on loopback, forwarding to its ready endpoints ``kube_proxy_lag`` after each change
  (``externalTrafficPolicy: Local``: its own node's only). Nodes that are Ready and not
  excluded by label or taint are registered once; a cordoned node stays registered, as on v2
  controllers (section 7); a deleted node's NodePort refuses at once and its target goes a
  deregistration lag later.

Health checks, the deregistration delay, the routing algorithm and the idle timeout come from
the Ingress's annotations (Service annotations win for target-group settings, as the real
controller documents), with the controller's defaults. Every duration runs ``time_scale`` times
faster. A rule's http-header conditions (``conditions.<service>``, the way tests of one IngressGroup
keep their rules apart) are honoured: a request that does not carry the header gets the ALB's
fixed 404. What is not modelled: IngressGroups (each Ingress gets its own listener; ``group.name``
is ignored), several backends per Ingress (the first one is used), path and host matching and
other condition fields (every request that meets the header conditions goes to that backend),
actions (an Ingress whose backend is an ``actions.<name>`` annotation gets no listener), and the
readiness-gate injection webhook (pods must carry the gate in their template).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from ..backends.sim.dataplane import (
    DRAINING,
    HEALTHY,
    LOOPBACK,
    ALBListener,
    Emit,
    KubeProxy,
    SimTimings,
    Target,
    TargetGroup,
    Timers,
)
from .background import Background
from .kubeapi import STRATEGIC_MERGE_PATCH, Informer, Key, KubeApi, KubeApiError, Obj, key_of
from .kubelet import LOOPBACK_ANNOTATION

__all__ = ["GATE_PREFIX", "LOCAL_PORT_ANNOTATION", "AlbController", "IngressConfig"]

log = logging.getLogger(__name__)

ANNOTATION = "alb.ingress.kubernetes.io/"
LOCAL_PORT_ANNOTATION = "ingress-chaos.dev/local-port"
GATE_PREFIX = "target-health.elbv2.k8s.aws/"
INGRESS_CLASS = "alb"
# docs/alb-facts.md section 7: nodes the controller never registers.
EXCLUDE_LABELS = (
    "node-role.kubernetes.io/master",
    "node.kubernetes.io/exclude-from-external-load-balancers",
    "alpha.service-controller.kubernetes.io/exclude-balancer",
)
EXCLUDE_TAINTS = ("ToBeDeletedByClusterAutoscaler", "karpenter.sh/disrupted")
# Target-group settings, which the Service's annotations override (the controller's docs).
_TARGET_GROUP_KEYS = (
    "target-type", "healthcheck-path", "healthcheck-interval-seconds",
    "healthcheck-timeout-seconds", "healthy-threshold-count", "unhealthy-threshold-count",
    "target-group-attributes",
)
_RETRY = 0.5  # seconds before a reconcile that failed on the API is tried again


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _attributes(value: str) -> dict[str, str]:
    """``a=1,b=2`` (the attributes annotations) as a dict."""
    pairs = (item.split("=", 1) for item in value.split(",") if "=" in item)
    return {key.strip(): val.strip() for key, val in pairs}


@dataclass(frozen=True)
class IngressConfig:
    """What an Ingress asks of its ALB; a change rebuilds the ALB (on the same port)."""

    mode: str
    namespace: str
    service: str
    timings: SimTimings
    algorithm: str = "round_robin"
    health_check_path: str = "/"
    local: bool = False  # externalTrafficPolicy: Local
    # The rule's http-header conditions (conditions.<service>): header -> accepted values.
    conditions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, ingress: Obj, service: Obj | None, base: SimTimings
              ) -> tuple[IngressConfig | None, list[str]]:
        """The config, or None when there is no backend Service; and what was wrong."""
        problems: list[str] = []
        namespace = str(ingress["metadata"].get("namespace") or "")
        backend = _backend_service(ingress)
        if backend is None:
            return None, ["no backend service (spec.defaultBackend or a rule's path)"]
        if backend.startswith(_ACTION):
            return None, [f"backend {backend[len(_ACTION):]} is an action (use-annotation): "
                          "actions are not modelled, no listener"]
        annotations = {
            key[len(ANNOTATION):]: str(value)
            for key, value in (ingress["metadata"].get("annotations") or {}).items()
            if key.startswith(ANNOTATION)
        }
        if service is not None:
            for key, value in (service["metadata"].get("annotations") or {}).items():
                short = key[len(ANNOTATION):]
                if key.startswith(ANNOTATION) and short in _TARGET_GROUP_KEYS:
                    annotations[short] = str(value)
        mode = annotations.get("target-type", "instance")
        if mode not in ("ip", "instance"):
            problems.append(f"target-type {mode!r} is not ip or instance; using instance")
            mode = "instance"
        fields: dict[str, Any] = {}

        def number(annotation: str, field: str, kind: type[float] | type[int]) -> None:
            if annotation in annotations:
                try:
                    fields[field] = kind(annotations[annotation])
                except ValueError:
                    problems.append(f"{annotation}={annotations[annotation]!r} is not a number")

        number("healthcheck-interval-seconds", "health_check_interval", float)
        number("healthcheck-timeout-seconds", "health_check_timeout", float)
        number("healthy-threshold-count", "healthy_threshold", int)
        number("unhealthy-threshold-count", "unhealthy_threshold", int)
        group_attributes = _attributes(annotations.get("target-group-attributes", ""))
        lb_attributes = _attributes(annotations.get("load-balancer-attributes", ""))
        for attributes, attribute, field in (
            (group_attributes, "deregistration_delay.timeout_seconds", "deregistration_delay"),
            (lb_attributes, "idle_timeout.timeout_seconds", "idle_timeout"),
        ):
            if attribute in attributes:
                try:
                    fields[field] = float(attributes[attribute])
                except ValueError:
                    problems.append(f"{attribute}={attributes[attribute]!r} is not a number")
        algorithm = group_attributes.get("load_balancing.algorithm.type", "round_robin")
        if algorithm not in ("round_robin", "least_outstanding_requests"):
            problems.append(f"load_balancing.algorithm.type {algorithm!r} is unknown")
            algorithm = "round_robin"
        conditions = _header_conditions(annotations.get(f"conditions.{backend}"), problems)
        policy = ((service or {}).get("spec") or {}).get("externalTrafficPolicy")
        config = cls(
            mode=mode,
            namespace=namespace,
            service=backend,
            timings=dataclasses.replace(base, **fields),
            algorithm=algorithm,
            health_check_path=annotations.get("healthcheck-path", "/"),
            local=policy == "Local",
            conditions=conditions,
        )
        return config, problems


def _header_conditions(value: str | None, problems: list[str]
                       ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The http-header conditions of a ``conditions.<service>`` annotation (a JSON list of
    rule conditions); other condition fields are reported and ignored."""
    if value is None:
        return ()
    try:
        parsed = json.loads(value)
    except ValueError:
        problems.append(f"conditions annotation {value!r} is not JSON; ignored")
        return ()
    found: list[tuple[str, tuple[str, ...]]] = []
    for condition in parsed if isinstance(parsed, list) else [parsed]:
        config = condition.get("httpHeaderConfig") if isinstance(condition, dict) else None
        if not isinstance(condition, dict) or condition.get("field") != "http-header" or \
                not isinstance(config, dict):
            problems.append(f"condition {condition!r} is not an http-header condition: "
                            "not modelled, ignored")
            continue
        found.append((str(config.get("httpHeaderName", "")),
                      tuple(str(v) for v in config.get("values") or ())))
    return tuple(found)


_ACTION = "action:"  # marks a backend that names an actions.<name> annotation, not a Service


def _backend_service(ingress: Obj) -> str | None:
    """The first backend's Service name, ``action:<name>`` for a controller action."""
    spec = ingress.get("spec") or {}
    backends = [spec.get("defaultBackend") or {}]
    backends += [path.get("backend") or {}
                 for rule in spec.get("rules") or []
                 for path in (rule.get("http") or {}).get("paths") or []]
    for backend in backends:
        service = backend.get("service") or {}
        if service.get("name"):
            action = (service.get("port") or {}).get("name") == "use-annotation"
            return f"{_ACTION if action else ''}{service['name']}"
    return None


def is_alb_ingress(ingress: Obj) -> bool:
    spec, meta = ingress.get("spec") or {}, ingress.get("metadata") or {}
    annotated = (meta.get("annotations") or {}).get("kubernetes.io/ingress.class")
    return INGRESS_CLASS in (spec.get("ingressClassName"), annotated)


def _condition(obj: Obj, kind: str) -> str | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return str(condition.get("status"))
    return None


def node_eligible(node: Obj) -> bool:
    """Registered in instance mode: Ready, and neither excluded by label nor tainted for
    removal. Cordoned (unschedulable) nodes stay, as on v2 controllers."""
    labels = node["metadata"].get("labels") or {}
    taints = {t.get("key") for t in (node.get("spec") or {}).get("taints") or []}
    return (_condition(node, "Ready") == "True"
            and not any(label in labels for label in EXCLUDE_LABELS)
            and not any(taint in taints for taint in EXCLUDE_TAINTS))


@dataclass(frozen=True)
class _Endpoint:
    pod: str  # name
    address: tuple[str, int]  # where the pod listens on loopback
    node: str
    ready: bool
    gated: bool  # not ready only because of a target-health readiness gate


class AlbController:
    """The controller for every ``alb`` Ingress in the cluster. :meth:`start` and
    :meth:`stop` run on the event loop that the ALBs and kube-proxies serve from."""

    def __init__(self, api: KubeApi, timings: SimTimings, emit: Emit, *,
                 seed: int | None = None, real_nodes: bool = False) -> None:
        self.api = api
        #: Targets are where real nodes serve (pod IPs, node IPs and NodePorts through their
        #: kube-proxy), not the kubelet stand-in's loopback addresses and simulated kube-proxies.
        self.real_nodes = real_nodes
        self.timings = timings
        self.emit = emit
        self.rng = random.Random(seed)
        self.stacks: dict[Key, _IngressStack] = {}
        self.slice_version = ""
        self._background = Background("alb controller")
        self._dirty = asyncio.Event()
        self._problems: dict[Key, list[str]] = {}
        self.ingresses = self._informer("/apis/networking.k8s.io/v1/ingresses", "ingresses")
        self.services = self._informer("/api/v1/services", "services")
        self.pods = self._informer("/api/v1/pods", "pods")
        self.nodes = self._informer("/api/v1/nodes", "nodes")
        self.slices: Informer | None = None
        self._pending_gates: set[tuple[str, str]] = set()
        # Called with each new stack and its Ingress (elbv2api.py binds its target group).
        self.on_stack: list[Callable[[Key, _IngressStack, Obj], Awaitable[None]]] = []

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._background.spawn(coro, name)

    def _informer(self, path: str, name: str) -> Informer:
        return Informer(self.api, path, lambda kind, obj: self._dirty.set(),
                        name=f"alb controller {name}")

    async def start(self, timeout: float = 30.0) -> None:
        """Watch the API; returns once every cache is filled and the first reconcile ran."""
        # EndpointSlices: discovery.k8s.io/v1 from Kubernetes 1.21, v1beta1 before (1.20 here).
        self.slice_version = (
            "v1" if await self.api.serves("discovery.k8s.io/v1") else "v1beta1"
        )
        self.slices = self._informer(
            f"/apis/discovery.k8s.io/{self.slice_version}/endpointslices", "endpointslices"
        )
        informers = [self.ingresses, self.services, self.pods, self.nodes, self.slices]
        for informer in informers:
            self._background.spawn(informer.run(), informer.name)
        await asyncio.wait_for(
            asyncio.gather(*(informer.synced.wait() for informer in informers)), timeout
        )
        await self._reconcile()
        self._background.spawn(self._reconcile_loop(), "reconcile loop")

    async def stop(self) -> None:
        await self._background.close()
        stacks, self.stacks = list(self.stacks.values()), {}
        for stack in stacks:
            await stack.close()

    # --- reconcile ---------------------------------------------------------------------------

    async def _reconcile_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._reconcile()
            except (KubeApiError, httpx.HTTPError, OSError) as exc:
                log.warning("alb controller: reconcile failed (%s); retrying", exc)
                await asyncio.sleep(_RETRY)
                self._dirty.set()
            except Exception:  # a bug: say so, and keep the other Ingresses served
                log.exception("alb controller: reconcile failed; retrying")
                await asyncio.sleep(_RETRY)
                self._dirty.set()

    async def _reconcile(self) -> None:
        wanted = {key: ingress for key, ingress in self.ingresses.items.items()
                  if is_alb_ingress(ingress) and not ingress["metadata"].get("deletionTimestamp")}
        for key in [key for key in self.stacks if key not in wanted]:
            gone = self.stacks.pop(key)
            self._problems.pop(key, None)
            await gone.close()
            self.emit("alb", "alb.deleted", key[1],
                      f"Ingress {key[0]}/{key[1]} deleted: ALB at {gone.url} closed")
        for key, ingress in wanted.items():
            service = self.services.items.get((key[0], _backend_service(ingress) or ""))
            config, problems = IngressConfig.parse(ingress, service, self.timings)
            if problems != self._problems.get(key):
                self._problems[key] = problems
                for problem in problems:
                    self.emit("alb", "alb.warning", key[1], f"Ingress {key[0]}/{key[1]}: "
                              f"{problem}")
            if config is None:
                continue
            stack = self.stacks.get(key)
            port = 0
            if stack is not None and stack.config != config:
                port = stack.port
                del self.stacks[key]
                await stack.close()
                stack = None
            if stack is None:
                stack = _IngressStack(self, key, config)
                try:
                    await stack.start(port)
                except BaseException:
                    await stack.close()
                    raise
                self.stacks[key] = stack
                for hook in self.on_stack:
                    await hook(key, stack, ingress)
            stack.sync()
            await self._publish(ingress, stack)

    async def _publish(self, ingress: Obj, stack: _IngressStack) -> None:
        """The port first, then the address: whoever sees the address can read the port."""
        namespace, name = key_of(ingress)
        path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}"
        annotations = ingress["metadata"].get("annotations") or {}
        if annotations.get(LOCAL_PORT_ANNOTATION) != str(stack.port):
            await self.api.patch(
                path, {"metadata": {"annotations": {LOCAL_PORT_ANNOTATION: str(stack.port)}}}
            )
        balancer = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        if balancer != [{"ip": LOOPBACK}]:
            await self.api.patch(
                f"{path}/status", {"status": {"loadBalancer": {"ingress": [{"ip": LOOPBACK}]}}}
            )

    # --- what the caches say ------------------------------------------------------------------

    def endpoints(self, namespace: str, service: str) -> Iterator[_Endpoint]:
        """The Service's endpoints that can be reached (their pod has a loopback address),
        terminating ones left out."""
        assert self.slices is not None
        for slice_ in self.slices.items.values():
            meta = slice_["metadata"]
            if meta.get("namespace") != namespace or \
                    (meta.get("labels") or {}).get("kubernetes.io/service-name") != service:
                continue
            for endpoint in slice_.get("endpoints") or []:
                conditions = endpoint.get("conditions") or {}
                if conditions.get("terminating") is True:
                    continue
                ref = endpoint.get("targetRef") or {}
                pod = self.pods.items.get((str(ref.get("namespace") or namespace),
                                           str(ref.get("name") or "")))
                if pod is None:
                    continue
                address = self._address(pod, endpoint, slice_)
                if address is None:
                    continue
                # A nil ready condition means ready (the API's convention).
                ready = conditions.get("ready") is not False
                gates = _pending_gates(pod)
                gated = not ready and bool(gates) and \
                    _condition(pod, "ContainersReady") == "True"
                node = str(endpoint.get("nodeName")
                           or (endpoint.get("topology") or {}).get("kubernetes.io/hostname")
                           or (pod.get("spec") or {}).get("nodeName") or "")
                yield _Endpoint(str(ref.get("name")), address, node, ready, gated)

    def _address(self, pod: Obj, endpoint: Obj, slice_: Obj) -> tuple[str, int] | None:
        """Where the ALB reaches the endpoint: on real nodes its own address and the slice's
        port (the pod's IP, routed into its node's namespace), else the stand-in's loopback
        address of the pod."""
        if not self.real_nodes:
            return _loopback(pod)
        addresses = endpoint.get("addresses") or []
        ports = [p.get("port") for p in slice_.get("ports") or [] if p.get("port")]
        return (str(addresses[0]), int(ports[0])) if addresses and ports else None

    def _pod_at(self, pod: Obj, address: tuple[str, int]) -> bool:
        if not self.real_nodes:
            return _loopback(pod) == address
        return (pod.get("status") or {}).get("podIP") == address[0]

    def service(self, namespace: str, name: str) -> Obj | None:
        return self.services.items.get((namespace, name))

    # --- readiness gates -----------------------------------------------------------------------

    def target_healthy(self, namespace: str, address: tuple[str, int]) -> None:
        """A target turned healthy: open the readiness gates of the pod behind it."""
        for pod in list(self.pods.items.values()):
            if pod["metadata"].get("namespace") == namespace and self._pod_at(pod, address):
                self.open_gates(pod)

    def open_gates(self, pod: Obj) -> None:
        gates = _pending_gates(pod)
        key = key_of(pod)
        if gates and key not in self._pending_gates:
            self._pending_gates.add(key)
            self._background.spawn(self._patch_gates(key, gates), f"gates of {key[1]}")

    async def _patch_gates(self, key: Key, gates: list[str]) -> None:
        namespace, name = key
        now = _now()
        body = {"status": {"conditions": [
            {"type": gate, "status": "True", "lastTransitionTime": now,
             "reason": None, "message": None} for gate in gates]}}
        try:
            await self.api.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", body,
                                 STRATEGIC_MERGE_PATCH)
            self.emit("alb", "pod.gate", name,
                      f"pod {name}: readiness gate {', '.join(gates)} True (target healthy)")
        except KubeApiError as exc:
            if exc.status != 404:
                log.warning("pod %s/%s: readiness gate patch failed: %s", namespace, name, exc)
        finally:
            self._pending_gates.discard(key)


def _loopback(pod: Obj) -> tuple[str, int] | None:
    value = str((pod["metadata"].get("annotations") or {}).get(LOOPBACK_ANNOTATION) or "")
    host, _, port = value.rpartition(":")
    if host != LOOPBACK or not port.isdigit():
        return None  # not (yet) run by the kubelet stand-in; nothing else is reachable
    return host, int(port)


def _pending_gates(pod: Obj) -> list[str]:
    """The pod's target-health readiness gates whose condition is not True yet."""
    gates = [str(gate.get("conditionType")) for gate in
             (pod.get("spec") or {}).get("readinessGates") or []
             if str(gate.get("conditionType") or "").startswith(GATE_PREFIX)]
    return [gate for gate in gates if _condition(pod, gate) != "True"]


class _IngressStack:
    """One Ingress's ALB: a listener, a target group, and in instance mode the kube-proxies."""

    def __init__(self, controller: AlbController, key: Key, config: IngressConfig) -> None:
        self.controller = controller
        self.key = key
        self.config = config
        self.timings = config.timings
        self.emit = controller.emit
        self.rng = random.Random(controller.rng.random())
        self.group = TargetGroup(config.timings, self.emit, config.algorithm,
                                 config.health_check_path)
        self.listener = ALBListener(self.group, config.timings,
                                    keep_alive=config.mode == "ip",
                                    conditions=dict(config.conditions))
        self.timers = Timers()
        self.port = 0
        self.proxies: dict[str, tuple[KubeProxy, int]] = {}  # node -> proxy, its NodePort
        self._desired: dict[tuple[str, int], str] = {}
        self._proxied: list[tuple[tuple[str, int], str, str]] = []  # address, node, pod
        self._eligible: set[str] = set()
        self._gone: set[str] = set()
        self._applied: list[tuple[tuple[str, int], str, str]] = []  # what kube-proxy has
        self._created = True
        self._warned = ""
        if config.mode == "ip":
            self.group.on_healthy.append(
                lambda target: controller.target_healthy(config.namespace,
                                                         (target.host, target.port)))

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def start(self, port: int = 0) -> None:
        self.port = await self.listener.start(port)
        namespace, name = self.key
        self.emit("alb", "alb.ready", name,
                  f"Ingress {namespace}/{name}: ALB listening at {self.url}, target type "
                  f"{self.config.mode}, service {self.config.service}")

    async def close(self) -> None:
        self.timers.cancel_all()
        await self.listener.close()
        await self.group.close()
        for proxy, _ in self.proxies.values():
            await proxy.close()
        self.proxies.clear()

    def _warn(self, message: str) -> None:
        if message != self._warned:
            self._warned = message
            if message:
                self.emit("alb", "alb.warning", self.key[1], f"Ingress {self.key[0]}/"
                          f"{self.key[1]}: {message}")

    # --- following the API -------------------------------------------------------------------

    def sync(self) -> None:
        """Called after every change in the caches: schedule what the change calls for."""
        config = self.config
        service = self.controller.service(config.namespace, config.service)
        if service is None:
            self._warn(f"service {config.service} not found: no targets")
        elif config.mode == "instance" and \
                (service.get("spec") or {}).get("type") not in ("NodePort", "LoadBalancer"):
            self._warn(f"target-type instance needs a NodePort or LoadBalancer service; "
                       f"{config.service} is {(service.get('spec') or {}).get('type')}")
        else:
            self._warn("")
        endpoints = list(self.controller.endpoints(config.namespace, config.service)) \
            if service is not None else []
        if config.mode == "ip":
            self._sync_ip(endpoints)
        elif service is not None and not self._warned:
            if self.controller.real_nodes:
                self._sync_node_ports(service)
            else:
                self._sync_instance(endpoints)

    # --- ip targets -----------------------------------------------------------------------------

    def _sync_ip(self, endpoints: list[_Endpoint]) -> None:
        desired = {e.address: e.pod for e in endpoints if e.ready or e.gated}
        for endpoint in endpoints:
            if endpoint.gated and self._target_state(endpoint.address) == HEALTHY:
                pod = self.controller.pods.items.get((self.config.namespace, endpoint.pod))
                if pod is not None:
                    self.controller.open_gates(pod)
        if desired == self._desired:
            return
        self._desired = desired
        # The controller's pipeline: each change reaches the target group a lag later, and
        # what it then does depends on the endpoints as they are by then.
        lag = self.timings.controller_lag
        self.timers.later(lag(self.timings.registration_lag, self.rng), self._register_missing)
        self.timers.later(lag(self.timings.deregistration_lag, self.rng), self._deregister_gone)

    def _target_state(self, address: tuple[str, int]) -> str | None:
        target = self.group.targets.get(address)
        return None if target is None else target.state

    def _registered(self) -> set[tuple[str, int]]:
        return {key for key, target in self.group.targets.items() if target.state != DRAINING}

    def _register_missing(self) -> None:
        registered = self._registered()
        for address, pod in self._desired.items():
            if address not in registered:
                self.group.register(Target(pod, *address))

    def _deregister_gone(self) -> None:
        for address in self._registered() - set(self._desired):
            self.group.deregister(address)

    # --- instance targets on real nodes ----------------------------------------------------------

    def _sync_node_ports(self, service: Obj) -> None:
        """Each eligible node's InternalIP at the Service's NodePort, which its real
        kube-proxy serves (or stops serving: a node that goes away simply stops answering).
        The nodes the ALB is created with are registered at once, later changes a lag later."""
        ports = [p.get("nodePort") for p in (service.get("spec") or {}).get("ports") or []
                 if p.get("nodePort")]
        if not ports:
            return
        desired = {}
        for (_, name), node in self.controller.nodes.items.items():
            address = next((a.get("address") for a in (node.get("status") or {})
                            .get("addresses") or [] if a.get("type") == "InternalIP"), None)
            if address and node_eligible(node):
                desired[(str(address), int(ports[0]))] = name
        if desired == self._desired:
            return
        self._desired = desired
        if self._created:
            self._created = False
            self._register_missing()
            return
        lag = self.timings.controller_lag
        self.timers.later(lag(self.timings.registration_lag, self.rng), self._register_missing)
        self.timers.later(lag(self.timings.deregistration_lag, self.rng), self._deregister_gone)

    # --- instance targets -----------------------------------------------------------------------

    def _sync_instance(self, endpoints: list[_Endpoint]) -> None:
        nodes = {key[1]: node for key, node in self.controller.nodes.items.items()}
        # The nodes the ALB is first created with are registered at once; later changes go
        # through the controller's lag.
        at_once, self._created = self._created, False
        for name in sorted(set(nodes) - set(self.proxies)):
            proxy = self._new_proxy(name)
            self.proxies[name] = (proxy, 0)  # its NodePort opens in _add_node
            self.controller.spawn(self._add_node(name, proxy, at_once), f"kube-proxy {name}")
        for name in sorted(set(self.proxies) - set(nodes) - self._gone):
            self._gone.add(name)
            self.proxies[name][0].node_gone()  # the instance is gone: its NodePort refuses
            self.emit("kube-proxy", "node.gone", name, f"{name} is gone: its NodePort refuses")
        eligible = {name for name, node in nodes.items() if node_eligible(node)}
        if eligible != self._eligible:
            self._eligible = eligible
            if not at_once:
                lag = self.timings.controller_lag
                self.timers.later(lag(self.timings.registration_lag, self.rng),
                                  self._register_nodes)
                self.timers.later(lag(self.timings.deregistration_lag, self.rng),
                                  self._deregister_nodes)
        proxied = sorted((e.address, e.node, e.pod) for e in endpoints if e.ready)
        if proxied != self._proxied:
            self._proxied = proxied
            self.timers.later(self.timings.wall(self.timings.kube_proxy_lag), self._sync_proxies)

    def _new_proxy(self, node: str) -> KubeProxy:
        timeout = self.timings.wall(self.timings.connect_timeout)
        return KubeProxy(node, self.rng, timeout, self.config.local)

    async def _add_node(self, name: str, proxy: KubeProxy, register: bool) -> None:
        port = await proxy.start()
        if self.proxies.get(name, (None, 0))[0] is not proxy:
            return
        self.proxies[name] = (proxy, port)
        self._sync_proxies(quiet=True)
        if register:
            self._register_nodes()

    def _register_nodes(self) -> None:
        registered = self._registered()
        for name in sorted(self._eligible):
            proxy, port = self.proxies.get(name, (None, 0))
            if proxy is not None and port and (LOOPBACK, port) not in registered:
                self.group.register(Target(name, LOOPBACK, port))

    def _deregister_nodes(self) -> None:
        for name, (_, port) in self.proxies.items():
            if name not in self._eligible and port:
                self.group.deregister((LOOPBACK, port))

    def _sync_proxies(self, quiet: bool = False) -> None:
        for name, (proxy, _) in self.proxies.items():
            proxy.endpoints = [address for address, node, _ in self._proxied
                               if not self.config.local or node == name]
        applied, self._applied = self._applied, list(self._proxied)
        if not quiet and applied != self._applied:
            names = ", ".join(pod for _, _, pod in self._proxied) or "none"
            self.emit("kube-proxy", "kube-proxy.synced", self.config.service,
                      f"kube-proxy on {len(self.proxies)} nodes now forwards "
                      f"{self.config.service} to: {names}")
