"""The waits between "the API accepted the objects" and "a load window may open".

A provision passes four gates, each under the same :class:`~.deadline.Deadline` (the request's
timeout), each ending in a BackendTimeout that says what it saw:

1. :func:`pods_ready`: the replicas are Running and Ready;
2. :func:`ingress_address`: the ingress controller wrote an address into the Ingress status;
3. :func:`resolvable`: that name resolves (a new ALB's DNS name takes a while to);
4. :func:`steady_state`: ``steady_requests`` consecutive 2xx answers through the ingress, and
   every Ready pod seen answering. Ready pods and a load balancer address are not enough: a
   new ALB target is ``initial`` for a health-check interval or two, and a test that opened
   its load window then would blame the ingress for its own warm-up.

:func:`rollout_complete` is ``kubectl rollout status``'s rule, for ``rollout_restart(wait)``.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ...base.errors import BackendTimeout
from ...base.kubia import serving_pod
from ...base.outcomes import is_success
from . import pods
from .apis import JsonDict, KubeApi
from .deadline import Deadline
from .diagnosis import describe_deployment, describe_ingress, diagnose
from .labels import LOCAL_PORT_ANNOTATION

REQUEST_CAP = 10.0  # seconds: one API request inside a wait
HTTP_TIMEOUT = 2.0  # seconds: one request through the ingress (short: a hang is a failure)
LIST_EVERY = 0.5  # seconds between pod listings during the steady-state wait


def pods_ready(api: KubeApi, namespace: str, name: str, selector: str, replicas: int,
               deadline: Deadline) -> list[JsonDict]:
    """Wait until exactly ``replicas`` pods are Running, Ready and not terminating."""
    seen: list[JsonDict] = []

    def probe() -> list[JsonDict] | None:
        listed = api.items(f"list pods of {name}", api.core.list_namespaced_pod, namespace,
                           label_selector=selector,
                           timeout=deadline.request_timeout(REQUEST_CAP))
        seen[:] = listed
        serving = [pod for pod in listed if pods.serving(pod)]
        return serving if len(serving) == replicas else None

    def timed_out() -> str:
        serving = sum(pods.serving(pod) for pod in seen)
        return (f"{serving} of {replicas} pods Running and Ready.\n"
                f"{diagnose(api, namespace, name, ingress=False)}")

    return deadline.poll(probe, timed_out)


@dataclass(frozen=True)
class IngressAddress:
    """Where the ingress answers: the status's hostname or ip, and the port."""

    host: str
    port: int


def _address(ingress: Mapping[str, Any]) -> IngressAddress | None:
    entries = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    for entry in entries:
        host = entry.get("hostname") or entry.get("ip")
        if host:
            annotation = ((ingress.get("metadata") or {}).get("annotations") or {}).get(
                LOCAL_PORT_ANNOTATION)
            return IngressAddress(str(host), int(annotation) if annotation else 80)
    return None


def ingress_address(api: KubeApi, namespace: str, name: str, deadline: Deadline
                    ) -> IngressAddress:
    """Wait until the ingress controller wrote an address into the Ingress status."""
    seen: list[JsonDict] = []

    def probe() -> IngressAddress | None:
        ingress = api.call(f"read Ingress {name}", api.networking.read_namespaced_ingress, name,
                           namespace, timeout=deadline.request_timeout(REQUEST_CAP))
        seen[:] = [ingress]
        return _address(ingress)

    def timed_out() -> str:
        shown = describe_ingress(seen[0]) if seen else f"Ingress {name}: not read"
        return (f"No address in the Ingress status: is an ingress controller for its class "
                f"running?\n{shown}\n{diagnose(api, namespace, name, ingress=False)}")

    return deadline.poll(probe, timed_out, max_interval=2.0)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _lookup(host: str, port: int, timeout: float) -> str:
    """``getaddrinfo`` with a timeout (it has none): in a daemon thread, left behind if slow.
    Returns "" once the name resolves, else why not."""
    outcome: list[str] = []

    def run() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            outcome.append(str(exc) or type(exc).__name__)
        else:
            outcome.append("")

    thread = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:.1f} s"


def resolvable(host: str, port: int, deadline: Deadline) -> None:
    """Wait until ``host`` resolves (an IP address needs no lookup)."""
    if _is_ip(host):
        return
    last = [""]

    def probe() -> bool | None:
        last[0] = _lookup(host, port, deadline.request_timeout(5.0))
        return True if not last[0] else None

    deadline.poll(probe, lambda: f"{host} does not resolve: {last[0]}", max_interval=5.0)


def url_host(address: IngressAddress, rule_host: str | None) -> str:
    """The host part of the service URL: the Ingress rule's host when it has one (requests
    must carry it, and its DNS must lead to the load balancer), else the status address."""
    host = rule_host if rule_host and not rule_host.startswith("*.") else address.host
    return f"[{host}]" if ":" in host else host  # an IPv6 literal


@dataclass
class SteadyState:
    """What the steady-state wait saw: for its result, and for its timeout message."""

    url: str
    need: int
    consecutive: int = 0
    requests: int = 0
    answered: Counter[str] = field(default_factory=Counter)
    ready: set[str] = field(default_factory=set)
    outcomes: Counter[str] = field(default_factory=Counter)
    last_failure: str = ""

    @property
    def done(self) -> bool:
        return (self.consecutive >= self.need and bool(self.ready)
                and self.ready <= set(self.answered))

    def summary(self) -> str:
        missing = sorted(self.ready - set(self.answered))
        return (f"{self.requests} requests to {self.url}: {dict(self.outcomes)}; "
                f"{self.consecutive} consecutive 2xx of {self.need} needed; answered by "
                f"{dict(self.answered) or 'no pod'}; Ready pods not seen answering: "
                f"{', '.join(missing) or 'none'}"
                f"{f'; last failure: {self.last_failure}' if self.last_failure else ''}")


def _get(http: httpx.Client, state: SteadyState, timeout: float) -> None:
    state.requests += 1
    try:
        response = http.get(state.url, timeout=timeout)
    except httpx.HTTPError as exc:
        state.consecutive = 0
        state.outcomes[type(exc).__name__] += 1
        state.last_failure = f"{type(exc).__name__}: {exc}"
        return
    state.outcomes[str(response.status_code)] += 1
    if not is_success(response.status_code):
        state.consecutive = 0
        state.last_failure = f"HTTP {response.status_code}: {response.text[:200]!r}"
        return
    state.consecutive += 1
    pod = serving_pod(response.content)
    if pod is not None:
        state.answered[pod] += 1


def steady_state(api: KubeApi, namespace: str, name: str, selector: str, url: str, need: int,
                 deadline: Deadline, headers: Mapping[str, str] | None = None) -> SteadyState:
    """Wait for ``need`` consecutive 2xx answers through ``url`` (each request carrying
    ``headers``, the service's route) and an answer from every Ready pod."""
    state = SteadyState(url=url, need=need)
    listed_at = -LIST_EVERY
    # A new connection per request: a kept-alive one sticks to one pod behind kube-proxy
    # (instance mode), and the wait must see every pod. No proxy from the environment: the
    # load generator does not use one either.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(trust_env=False, limits=limits, follow_redirects=False,
                      headers=dict(headers or {})) as http:
        while True:
            deadline.check()
            if time.monotonic() - listed_at >= LIST_EVERY:
                listed = api.items(f"list pods of {name}", api.core.list_namespaced_pod,
                                   namespace, label_selector=selector,
                                   timeout=deadline.request_timeout(REQUEST_CAP))
                state.ready = {pods.name(pod) for pod in listed if pods.serving(pod)}
                listed_at = time.monotonic()
            _get(http, state, min(HTTP_TIMEOUT, max(0.1, deadline.left())))
            if state.done:
                return state
            if deadline.expired:
                raise BackendTimeout(
                    f"{deadline.what}: no steady state within {deadline.seconds:g} s. "
                    f"{state.summary()}\n{diagnose(api, namespace, name)}")
            # Quick while it goes well (the streak is what is measured), slower while it
            # does not (a load balancer still warming up).
            deadline.sleep(0.01 if state.consecutive else 0.2)


def rollout_done(deployment: Mapping[str, Any], generation: int) -> bool:
    """``kubectl rollout status``: the controller saw the change, every replica is updated and
    available, and no old replica is left."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    replicas = int(spec.get("replicas") or 0)
    return (int(status.get("observedGeneration") or 0) >= generation
            and int(status.get("updatedReplicas") or 0) == replicas
            and int(status.get("replicas") or 0) == replicas
            and int(status.get("readyReplicas") or 0) == replicas
            and int(status.get("availableReplicas") or 0) == replicas)


def rollout_complete(api: KubeApi, namespace: str, name: str, generation: int,
                     deadline: Deadline) -> None:
    """Wait until the rollout of ``generation`` of Deployment ``name`` is complete."""
    seen: list[JsonDict] = []

    def probe() -> bool | None:
        deployment = api.call(f"read Deployment {name}", api.apps.read_namespaced_deployment,
                              name, namespace, timeout=deadline.request_timeout(REQUEST_CAP))
        seen[:] = [deployment]
        return True if rollout_done(deployment, generation) else None

    def timed_out() -> str:
        shown = describe_deployment(seen[0]) if seen else f"Deployment {name}: not read"
        return f"{shown}\n{diagnose(api, namespace, name, deployment=False, ingress=False)}"

    deadline.poll(probe, timed_out)
