"""The simulator process: services on request, events as they happen, over stdin/stdout.

Protocol, one JSON object per line. Requests on stdin: ``{"id": 1, "op": "create_service",
"args": {...}}``. Replies on stdout: ``{"type": "reply", "id": 1, "ok": true, "result": ...}``
or ``{"type": "reply", "id": 1, "ok": false, "error": "..."}``. Events on stdout, whenever
they happen: ``{"type": "event", "service": "s1", "t": <time.monotonic()>, "source": ...,
"kind": ..., "subject": ..., "message": ...}``.

The process ends, stopping every pod it started, when stdin closes (its parent went away),
on ``{"op": "shutdown"}``, or on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ...base.events import EventKind
from . import controllers
from .alb import (
    HEALTHY,
    UNHEALTHY,
    ALBListener,
    InstanceTargetController,
    IpTargetController,
    TargetGroup,
)
from .cluster import LOOPBACK, Cluster, DeploymentSpec, Emit, Node, Pod, Timers
from .kubeproxy import KubeProxy
from .nodepolicy import EXCLUDE_LABEL, NEWEST, NodePolicy
from .tasks import cancel_and_wait
from .timings import SimTimings

T = TypeVar("T")


class ServiceStack:
    """One Deployment + Service + Ingress: a cluster, its kube-proxies and an ALB."""

    def __init__(self, mode: str, deployment: DeploymentSpec, timings: SimTimings, seed: int,
                 emit: Emit, port: int = 0, algorithm: str = "round_robin",
                 controller_version: str = NEWEST) -> None:
        self.mode = mode
        self.policy = NodePolicy.of(controller_version)
        self.port = port
        self.timings = timings
        self.emit = emit
        self.rng = random.Random(seed)
        if mode != "ip":  # the controller injects readiness gates for ip targets only
            deployment = dataclasses.replace(deployment, readiness_gate=False)
        self.cluster = Cluster(deployment, timings, emit, self.rng)
        local = deployment.external_traffic_policy == "Local"
        self.proxies = [KubeProxy(node, self.rng, timings.wall(timings.connect_timeout), local)
                        for node in self.cluster.node_names]
        self.timers = Timers()
        self.group = TargetGroup(timings, emit, algorithm)
        self.listener = ALBListener(self.group, timings, keep_alive=mode == "ip")
        self.url = ""

    async def start(self) -> None:
        cluster, timings = self.cluster, self.timings
        # The listener first: a port already taken fails before any pod has started.
        port = await self.listener.start(self.port)
        self.url = f"http://{LOOPBACK}:{port}"
        node_ports = [await proxy.start() for proxy in self.proxies] if \
            self.mode == "instance" else []
        await cluster.start()
        # Steady state first (every test starts from an ingress that has been serving), then
        # the controllers that react to changes, each with its own lag.
        ready = cluster.ready_pods()
        if self.mode == "ip":
            controller = IpTargetController(
                self.group, timings, self.timers, self.rng,
                lambda: cluster.ready_pods() + cluster.gated_pods(), cluster.gate_passed)
            controller.sync_now(ready)
            cluster.endpoint_watchers.append(controller.on_endpoints)
        else:
            for proxy in self.proxies:
                proxy.sync(ready)
            nodes = InstanceTargetController(
                self.group, timings, self.timers, self.rng, self.policy, cluster.nodes,
                {proxy.node: port for proxy, port in zip(self.proxies, node_ports, strict=True)})
            # With externalTrafficPolicy Local a node without a local pod fails its health
            # checks, so in the steady state it is already unhealthy.
            nodes.sync_now({proxy.node: HEALTHY if proxy.endpoints else UNHEALTHY
                            for proxy in self.proxies})
            cluster.endpoint_watchers.append(self._sync_proxies_later)
            cluster.node_watchers.append(nodes.on_node)
        cluster.node_watchers.append(self._on_node)
        self.emit("alb", EventKind.ALB_READY, "alb",
                  f"ALB listening at {self.url}, target type {self.mode}")

    def _sync_proxies_later(self, ready: list[Pod], gated: list[Pod]) -> None:
        self.timers.later(self.timings.wall(self.timings.kube_proxy_lag), self._sync_proxies,
                          ready)

    def _sync_proxies(self, ready: list[Pod]) -> None:
        for proxy in self.proxies:
            proxy.sync(ready)
        names = ", ".join(pod.name for pod in ready) or "none"
        self.emit("kube-proxy", EventKind.KUBE_PROXY_SYNCED, "kube-proxy",
                  f"kube-proxy on {len(self.proxies)} nodes now forwards to: {names}")

    def _on_node(self, node: Node) -> None:
        """A gone node's NodePort refuses and the requests in flight through it fail (the
        target controller, a watcher before this one, has said so already)."""
        if node.gone:
            for proxy in self.proxies:
                if proxy.node == node.name:
                    proxy.node_gone()

    def list_pods(self) -> list[dict[str, Any]]:
        gate = self.cluster.spec.readiness_gate
        return [pod.to_json(gate) for pod in self.cluster.listed_pods()]

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "mode": self.mode, "pods": self.list_pods()}

    async def close(self) -> None:
        self.timers.cancel_all()
        await self.listener.close()
        await self.group.close()
        for proxy in self.proxies:
            await proxy.close()
        await self.cluster.close()


class SimServer:
    def __init__(self, write: Callable[[dict[str, Any]], None]) -> None:
        self.write = write
        self.services: dict[str, ServiceStack] = {}
        self.stopping = asyncio.Event()

    def _emitter(self, service_id: str) -> Emit:
        def emit(source: str, kind: str, subject: str, message: str) -> None:
            self.write({"type": "event", "service": service_id, "t": time.monotonic(),
                        "source": source, "kind": kind, "subject": subject,
                        "message": message})

        return emit

    async def create_service(self, service_id: str, mode: str, deployment: dict[str, Any],
                             timings: dict[str, Any], seed: int,
                             algorithm: str = "round_robin", port: int = 0,
                             controller_version: str = NEWEST) -> dict[str, Any]:
        if service_id in self.services:
            raise ValueError(f"service {service_id!r} exists already")
        service = ServiceStack(mode, DeploymentSpec.from_json(deployment),
                               SimTimings.from_json(timings), seed, self._emitter(service_id),
                               port=port, algorithm=algorithm,
                               controller_version=controller_version)
        self.services[service_id] = service
        try:
            await service.start()
        except BaseException:
            del self.services[service_id]
            await service.close()
            raise
        return {"service": service_id, **service.describe()}

    async def list_pods(self, service: str) -> list[dict[str, Any]]:
        return self._service(service).list_pods()

    async def delete_pod(self, service: str, name: str, grace_period: float | None,
                         force: bool) -> None:
        self._service(service).cluster.delete_pod(name, grace_period, force)

    async def kill_container(self, service: str, name: str, signal_name: str) -> None:
        self._service(service).cluster.kill_container(name, signal.Signals[signal_name])

    async def rollout_restart(self, service: str, max_surge: int | str,
                              max_unavailable: int | str, wait: bool) -> None:
        sim = self._service(service)
        # Bounds checked now, so a bad pair is an error to the caller, not to a lost task.
        surge, unavailable = controllers.rollout_bounds(sim.cluster.spec.replicas, max_surge,
                                                        max_unavailable)
        rollout = controllers.rollout_restart(sim.cluster, surge, unavailable)
        if wait:
            await rollout
        else:
            sim.cluster.spawn(rollout)

    async def scale(self, service: str, replicas: int) -> None:
        sim = self._service(service)
        # Checked now, as the API server does (422), not in the background task.
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ValueError(f"replicas={replicas!r}: must be an integer >= 0")
        sim.cluster.spawn(controllers.scale(sim.cluster, replicas))

    async def drain_node(self, service: str, node: str, wait: bool) -> None:
        sim = self._service(service)
        cluster = sim.cluster
        if node not in cluster.node_names or node in cluster.cordoned:
            raise ValueError(f"node {node} is unknown or cordoned already")
        if len(cluster.cordoned) + 1 >= len(cluster.node_names):
            raise ValueError(f"draining {node} would leave no node to schedule pods on "
                             f"({len(cluster.node_names)} nodes, cordoned: "
                             f"{', '.join(sorted(cluster.cordoned)) or 'none'})")
        drain = controllers.drain_node(cluster, node)
        if wait:
            await drain
        else:
            cluster.spawn(drain)

    async def exclude_node(self, service: str, node: str) -> None:
        """Label ``node`` excluded from load balancers, as ``kubectl label node`` does."""
        cluster = self._service(service).cluster
        if node not in cluster.nodes or cluster.nodes[node].terminating:
            raise ValueError(f"node {node} is unknown or terminated; nodes: "
                             f"{', '.join(cluster.node_names)}")
        cluster.label_node(node, EXCLUDE_LABEL, "true")

    async def delete_service(self, service: str) -> None:
        if service in self.services:
            await self.services.pop(service).close()

    async def shutdown(self) -> None:
        self.stopping.set()

    async def close_all(self) -> None:
        for service_id in list(self.services):
            await self.services.pop(service_id).close()

    def _service(self, service_id: str) -> ServiceStack:
        try:
            return self.services[service_id]
        except KeyError:
            raise ValueError(f"no service {service_id!r}") from None

    async def handle(self, message: dict[str, Any]) -> None:
        ops: dict[str, Callable[..., Awaitable[Any]]] = {
            "create_service": self.create_service, "list_pods": self.list_pods,
            "delete_pod": self.delete_pod, "delete_service": self.delete_service,
            "kill_container": self.kill_container, "rollout_restart": self.rollout_restart,
            "scale": self.scale, "drain_node": self.drain_node,
            "exclude_node": self.exclude_node, "shutdown": self.shutdown,
        }
        reply: dict[str, Any] = {"type": "reply", "id": message.get("id")}
        try:
            operation = ops[message["op"]]
            reply.update(ok=True, result=await operation(**message.get("args", {})))
        except Exception as exc:  # reported to the client, which raises it in the test
            reply.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        self.write(reply)


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer

    def write(message: dict[str, Any]) -> None:
        out.write(json.dumps(message).encode() + b"\n")
        out.flush()

    server = SimServer(write)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stopping.set)
    handlers: set[asyncio.Task[None]] = set()

    async def read_requests() -> None:
        while line := await reader.readline():
            task = loop.create_task(server.handle(json.loads(line)))
            handlers.add(task)
            task.add_done_callback(handlers.discard)
        server.stopping.set()  # stdin closed: the parent is gone

    reading = loop.create_task(read_requests())
    await server.stopping.wait()
    await cancel_and_wait([reading, *handlers])
    await server.close_all()


def raise_fd_limit() -> None:
    """Every client connection to a blackholed pod holds descriptors until it times out, and
    a closed-model client such as wrk opens many: allow up to 65536 (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop's event loop when uvloop is installed, else on asyncio's. The
    simulator's proxy (the ALB, kube-proxy) is CPU-bound on loopback: libuv's loop costs less
    per read, write and timer than asyncio's, which lets the ALB answer more requests a second
    (benchmarks/README.md, "Simulated ALB throughput"). Nothing here depends on the loop:
    signal handlers, subprocesses with ``pass_fds`` and pipes work on both."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    result: T = uvloop.run(main)
    return result


def main() -> None:
    raise_fd_limit()
    run(serve())


if __name__ == "__main__":
    main()
