"""The simulated cluster's control plane: pods as real processes, a replica controller,
endpoints, and the kubelet's pod termination sequence.

A pod is a ``sampleapp.py`` process serving on its own loopback port (its "pod IP"). Deleting a
pod runs what Kubernetes runs: the pod leaves the endpoints at once, the ReplicaSet creates a
replacement, and the kubelet, a moment later, runs the preStop sleep, sends SIGTERM, waits for
the rest of the grace period and sends SIGKILL. Once the process is gone its address refuses
connections for a short while and then, like a released pod IP, answers nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...base.events import EventKind
from .tasks import cancel_and_wait
from .timings import SimTimings

SAMPLEAPP = Path(__file__).resolve().with_name("sampleapp.py")
LOOPBACK = "127.0.0.1"

# source, kind (an EventKind; the local cluster reuses it for its own log), subject, message
Emit = Callable[[str, str, str, str], None]
# Called with the Ready pods and the pods held back only by their readiness gate.
EndpointWatcher = Callable[[list["Pod"], list["Pod"]], None]
NodeWatcher = Callable[["Node"], None]  # called after every change to a node
READINESS_GATE = "target-health.elbv2.k8s.aws"


class Timers:
    """Delayed callbacks that a service cancels when it is torn down, so nothing of a closed
    service (a late registration, a kube-proxy sync) runs afterwards."""

    def __init__(self) -> None:
        self._handles: set[asyncio.TimerHandle] = set()

    def later(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        def fire() -> None:
            self._handles.discard(handle)
            callback(*args)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._handles.add(handle)

    def cancel_all(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()


@dataclass(frozen=True, kw_only=True)
class DeploymentSpec:
    """The sample service's Deployment, as the simulator needs it."""

    replicas: int = 3
    nodes: int = 3
    prestop_sleep: float = 0.0
    grace_period: float = 30.0
    on_sigterm: str = "exit"
    readiness_delay: float = 0.0  # the readiness probe's initialDelaySeconds
    readiness_gate: bool = False  # the AWS controller's pod readiness gate (ip mode only)
    external_traffic_policy: str = "Cluster"
    keepalive_timeout: float | None = None  # the app closes idle connections after it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeploymentSpec:
        return cls(**data)


@dataclass(eq=False)
class Node:
    """A node: what the API shows of it (``unschedulable``, ``labels``, ``ready``) and what
    only its instance knows (``terminating``, ``gone``)."""

    name: str
    unschedulable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    ready: bool = True  # the Ready condition; False once the control plane stops hearing from it
    terminating: bool = False  # its instance shuts down
    gone: bool = False  # its instance and its network are gone: nothing on it answers


@dataclass(eq=False)
class Pod:
    name: str
    node: str
    port: int
    process: asyncio.subprocess.Process
    revision: int = 1  # the Deployment revision (ReplicaSet) the pod belongs to
    restarts: int = 0
    ready: bool = False
    containers_ready: bool = False  # the app passes its probe; Ready may still wait for a gate
    terminating: bool = False
    exit_code: int | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def address(self) -> tuple[str, int]:
        return (LOOPBACK, self.port)

    @property
    def gone(self) -> bool:
        """Deleted and its process ended: the kubelet confirmed, the pod left the API."""
        return self.terminating and self.exit_code is not None

    @property
    def running(self) -> bool:
        """Not terminating and its container process alive: a pod chaos may pick."""
        return not self.terminating and self.exit_code is None

    def to_json(self, readiness_gate: bool = False) -> dict[str, Any]:
        """As the API shows it: with restartPolicy Always a pod whose container exited stays
        in phase Running (not Ready) while the kubelet restarts it."""
        conditions = {"PodScheduled": True, "Initialized": True,
                      "ContainersReady": self.containers_ready, "Ready": self.ready}
        if readiness_gate:
            conditions[READINESS_GATE] = self.ready
        return {"name": self.name, "node": self.node, "address": f"{LOOPBACK}:{self.port}",
                "phase": "Running", "ready": self.ready, "terminating": self.terminating,
                "restarts": self.restarts, "conditions": conditions}


class Cluster:
    """Nodes, pods and the controllers that keep ``spec.replicas`` of them serving."""

    def __init__(self, spec: DeploymentSpec, timings: SimTimings, emit: Emit,
                 rng: random.Random) -> None:
        self.spec = spec
        self.timings = timings
        self.emit = emit
        self.rng = rng
        self.node_names = [f"node-{i + 1}" for i in range(spec.nodes)]
        self.nodes = {name: Node(name) for name in self.node_names}
        self.pods: dict[str, Pod] = {}
        self.revision = 1
        self.endpoint_watchers: list[EndpointWatcher] = []
        self.node_watchers: list[NodeWatcher] = []
        self._endpoints: list[str] = []  # names of the ready endpoints last published
        self._starting: list[str] = []  # nodes of pods being created, not yet in self.pods
        self._blackholes: list[socket.socket] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Create the replicas and wait until every one of them answers. They start Ready,
        gates included: the steady state of a service that has been serving for a while."""
        await asyncio.gather(*(self.create_pod(steady=True)
                               for _ in range(self.spec.replicas)))

    async def close(self) -> None:
        self._closed = True
        await cancel_and_wait(list(self._tasks))
        for pod in self.pods.values():
            if pod.exit_code is None:
                with contextlib.suppress(ProcessLookupError):
                    pod.process.kill()
                await pod.process.wait()
        for sock in self._blackholes:
            sock.close()

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` as long as the cluster lives; cancelled on close()."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- pods -----------------------------------------------------------------------------

    def ready_pods(self) -> list[Pod]:
        return [pod for pod in self.pods.values() if pod.ready and not pod.terminating]

    def gated_pods(self) -> list[Pod]:
        """Pods whose containers are ready but whose readiness gate is not (yet) true."""
        return [pod for pod in self.pods.values()
                if pod.containers_ready and not pod.ready and not pod.terminating
                and pod.exit_code is None]

    def live_pods(self) -> list[Pod]:
        """Pods that count toward the replicas: not terminating (crashed ones included)."""
        return [pod for pod in self.pods.values() if not pod.terminating]

    @property
    def starting(self) -> int:
        """Pods being created, not yet listed."""
        return len(self._starting)

    def starting_on(self, node: str) -> int:
        """Pods being created on ``node``: bound to it, not yet listed."""
        return self._starting.count(node)

    def desired_shortfall(self) -> int:
        """How many pods the ReplicaSet still has to create."""
        return self.spec.replicas - len(self.live_pods()) - len(self._starting)

    # --- nodes ----------------------------------------------------------------------------

    @property
    def cordoned(self) -> set[str]:
        return {node.name for node in self.nodes.values() if node.unschedulable}

    def _node_changed(self, node: Node) -> None:
        for watcher in self.node_watchers:
            watcher(node)

    def cordon(self, name: str) -> None:
        node = self.nodes[name]
        node.unschedulable = True
        self.emit("cluster", EventKind.NODE_CORDONED, name, f"{name} cordoned (unschedulable)")
        self._node_changed(node)

    def label_node(self, name: str, key: str, value: str) -> None:
        node = self.nodes[name]
        if node.labels.get(key) == value:
            self.emit("cluster", EventKind.NODE_LABELLED, name, f"{name} is labelled {key}={value} "
                      "already")
            return
        node.labels[key] = value
        self.emit("cluster", EventKind.NODE_LABELLED, name, f"{name} labelled {key}={value}")
        self._node_changed(node)

    async def terminate_node(self, name: str, why: str) -> None:
        """The node's instance is terminated: its kubelet stops at once (the control plane
        marks the node NotReady once the node-monitor grace period has passed without word
        from it), and its network goes when the OS has shut down."""
        node = self.nodes[name]
        node.terminating = True
        self.emit("cluster", EventKind.NODE_TERMINATING, name,
                  f"{name} {why}: its instance is terminated and shuts down")
        self.spawn(self._mark_not_ready(node))
        await asyncio.sleep(self.timings.wall(self.timings.node_shutdown))
        node.gone = True
        self.emit("cluster", EventKind.NODE_TERMINATED, name,
                  f"{name} is gone: its instance and network are down, nothing on it answers")
        self._node_changed(node)

    async def _mark_not_ready(self, node: Node) -> None:
        grace = self.timings.node_monitor_grace
        await asyncio.sleep(self.timings.wall(grace))
        node.ready = False
        self.emit("cluster", EventKind.NODE_NOT_READY, node.name,
                  f"{node.name} is NotReady: no word from its kubelet for {grace:g}s "
                  "(the node-monitor grace period)")
        self._node_changed(node)

    def _pick_node(self) -> str:
        schedulable = [name for name in self.node_names if name not in self.cordoned]
        if not schedulable:
            raise RuntimeError("every node is cordoned: the pod cannot be scheduled")
        load = {name: self._starting.count(name) for name in schedulable}
        for pod in self.pods.values():
            if pod.exit_code is None and pod.node in load:
                load[pod.node] += 1
        return min(schedulable, key=lambda name: load[name])

    def _new_name(self) -> str:
        alphabet = string.ascii_lowercase + string.digits
        while True:
            name = "kubia-" + "".join(self.rng.choice(alphabet) for _ in range(5))
            if name not in self.pods:
                return name

    async def _start_container(self, name: str, port: int = 0
                               ) -> tuple[asyncio.subprocess.Process, int]:
        """Start the app on ``port`` (0: a new address). The simulator binds the address
        itself and hands the socket to the process, so the address is known (and connections
        queue) before the app has started."""
        listener = socket.create_server((LOOPBACK, port), backlog=128)
        keepalive = self.spec.keepalive_timeout
        options = [] if keepalive is None else \
            ["--keepalive-timeout", repr(self.timings.wall(keepalive))]
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(SAMPLEAPP), "--fd", str(listener.fileno()), "--name", name,
                "--on-sigterm", self.spec.on_sigterm, "--exit-on-stdin-eof", *options,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                pass_fds=(listener.fileno(),),
                # A terminal's Ctrl-C must not kill pods behind the simulator's back: they
                # end through the termination sequence, or when the simulator's pipe closes.
                start_new_session=True,
            )
            return process, listener.getsockname()[1]
        finally:
            listener.close()  # the pod process owns the socket now

    def start_pod(self) -> asyncio.Task[Pod]:
        """Create a pod in the background. Its node is reserved at once, so every controller
        counting pods (ReplicaSet, rollout, scale) sees it from this moment on."""
        node = self._pick_node()
        self._starting.append(node)
        task = asyncio.get_running_loop().create_task(self._create_pod_on(node))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def create_pod(self, *, steady: bool = False) -> Pod:
        node = self._pick_node()
        self._starting.append(node)
        return await self._create_pod_on(node, steady=steady)

    async def _create_pod_on(self, node: str, *, steady: bool = False) -> Pod:
        """``node`` is already reserved in ``_starting``; released once the pod exists."""
        name = self._new_name()
        try:
            process, port = await self._start_container(name)
        finally:
            self._starting.remove(node)
        pod = Pod(name=name, node=node, port=port, process=process, revision=self.revision)
        self.pods[name] = pod
        self.emit("cluster", EventKind.POD_CREATED, name,
                  f"pod {name} created on {node}, serving at {LOOPBACK}:{port}")
        self.spawn(self._watch_exit(pod))
        await self._become_ready(pod, steady=steady)
        return pod

    async def _become_ready(self, pod: Pod, *, steady: bool = False) -> None:
        name = pod.name
        await self._wait_until_serving(pod)
        if not steady and self.spec.readiness_delay > 0:
            await asyncio.sleep(self.timings.wall(self.spec.readiness_delay))
        if pod.terminating or pod.exit_code is not None:
            return
        pod.containers_ready = True
        # A restarted container's gate was true already: the gate holds new pods only.
        if self.spec.readiness_gate and not steady and not pod.restarts:
            self.emit("cluster", EventKind.POD_GATED, name,
                      f"pod {name}: containers ready, not Ready until readiness gate "
                      f"{READINESS_GATE} is true (target healthy)")
        else:
            pod.ready = True
            self.emit("cluster", EventKind.POD_READY, name, f"pod {name} is Ready")
        self._publish_endpoints()

    def gate_passed(self, address: tuple[str, int]) -> None:
        """The controller saw the pod's target healthy: its readiness gate becomes true."""
        for pod in self.pods.values():
            if pod.address == address and pod.containers_ready and not pod.ready \
                    and not pod.terminating and pod.exit_code is None:
                pod.ready = True
                self.emit("cluster", EventKind.POD_READY, pod.name,
                          f"pod {pod.name} is Ready (readiness gate: target healthy)")
                self._publish_endpoints()

    async def _wait_until_serving(self, pod: Pod) -> None:
        """The readiness probe: ready once the app answers an HTTP request."""
        for _ in range(200):
            if pod.exit_code is not None:
                return
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(*pod.address), 1.0)
                writer.write(b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
                status = await asyncio.wait_for(reader.readline(), 1.0)
                writer.close()
                if status.startswith(b"HTTP/1.1 200"):
                    return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"pod {pod.name} did not answer its readiness probe within 10 s")

    async def _watch_exit(self, pod: Pod) -> None:
        pod.exit_code = await pod.process.wait()
        pod.exited.set()
        if not pod.terminating and not self._closed:
            pod.ready = pod.containers_ready = False
            self.emit("cluster", EventKind.POD_CRASHED, pod.name,
                      f"pod {pod.name}: container exited ({_describe_exit(pod.exit_code)}); "
                      "the kubelet restarts it")
            self._publish_endpoints()
            self.spawn(self._restart_container(pod))

    async def _restart_container(self, pod: Pod) -> None:
        """restartPolicy Always: the same pod, the same address, a new process."""
        await asyncio.sleep(self.timings.wall(self.timings.container_restart_delay))
        if pod.terminating or self._closed:
            return
        pod.process, _ = await self._start_container(pod.name, pod.port)
        pod.exit_code = None
        pod.exited = asyncio.Event()
        pod.restarts += 1
        self.emit("cluster", EventKind.POD_RESTARTED, pod.name,
                  f"pod {pod.name}: container restarted (restart #{pod.restarts})")
        self.spawn(self._watch_exit(pod))
        await self._become_ready(pod)

    def kill_container(self, name: str, signum: int) -> None:
        """Signal the pod's process only: the pod stays, the kubelet restarts the process."""
        pod = self._running(name)
        self._signal(pod, signum, f"{signal.Signals(signum).name} to the container only")

    # --- deletion: the termination sequence ---------------------------------------------------

    def _running(self, name: str) -> Pod:
        pod = self.pods.get(name)
        if pod is None or pod.terminating:
            state = "unknown" if pod is None else "already terminating"
            raise ValueError(f"pod {name} is {state}; pods: {', '.join(sorted(self.pods))}")
        return pod

    def delete_pod(self, name: str, grace_period: float | None, force: bool,
                   reason: str = "deleted") -> None:
        pod = self._running(name)
        grace = self.spec.grace_period if grace_period is None else grace_period
        force = force or grace == 0
        pod.terminating = True
        pod.ready = pod.containers_ready = False
        how = "force, grace 0s" if force else f"grace {grace:g}s"
        self.emit("cluster", EventKind.POD_DELETED, name, f"pod {name} {reason} ({how})")
        self._publish_endpoints()
        # The ReplicaSet: terminating pods do not count toward the desired replicas.
        for _ in range(self.desired_shortfall()):
            self.start_pod()
        self.spawn(self._terminate(pod, grace, force))

    async def _terminate(self, pod: Pod, grace: float, force: bool) -> None:
        wall = self.timings.wall
        if force:
            self._signal(pod, signal.SIGKILL, "SIGKILL (forced deletion)")
        else:
            await asyncio.sleep(wall(self.timings.kubelet_lag))
            prestop = min(self.spec.prestop_sleep, grace)
            if prestop > 0:
                self.emit("cluster", EventKind.POD_PRESTOP, pod.name,
                          f"pod {pod.name}: preStop sleep {prestop:g}s")
                await asyncio.sleep(wall(prestop))
            # Kubernetes grants 2 s more when preStop used up the whole grace period.
            remaining = grace - prestop if prestop < grace else 2.0
            self._signal(pod, signal.SIGTERM, f"SIGTERM ({self.spec.on_sigterm} on SIGTERM)")
            try:
                await asyncio.wait_for(pod.exited.wait(), wall(remaining))
            except asyncio.TimeoutError:
                self._signal(pod, signal.SIGKILL, f"SIGKILL after the {grace:g}s grace period")
        await pod.exited.wait()
        self.emit("cluster", EventKind.POD_EXITED, pod.name,
                  f"pod {pod.name}: process exited ({_describe_exit(pod.exit_code)})")
        self.emit("cluster", EventKind.POD_GONE, pod.name,
                  f"pod {pod.name} deleted from the API (the kubelet confirmed its end)")
        await self._release_address(pod)

    def _signal(self, pod: Pod, signum: int, what: str) -> None:
        if pod.exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                pod.process.send_signal(signum)
            self.emit("cluster", EventKind.POD_SIGNAL, pod.name, f"pod {pod.name}: {what}")

    async def _release_address(self, pod: Pod) -> None:
        """Refuse for a moment (nothing listens), then blackhole: a socket with backlog 0 that
        never accepts lets one connection in and every later one time out."""
        await asyncio.sleep(self.timings.wall(self.timings.address_refuse))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(pod.address)
            sock.listen(0)
        except OSError as exc:
            sock.close()
            self.emit("cluster", EventKind.ADDRESS_KEPT, pod.name,
                      f"address {LOOPBACK}:{pod.port} of {pod.name} could not be blackholed "
                      f"({exc.strerror}); it keeps refusing")
            return
        self._blackholes.append(sock)
        self.emit("cluster", EventKind.ADDRESS_RELEASED, pod.name,
                  f"address {LOOPBACK}:{pod.port} of {pod.name} released: connects now time out")

    # --- endpoints --------------------------------------------------------------------------

    def listed_pods(self) -> list[Pod]:
        """The pods in the API: every pod but those whose deletion has completed."""
        return [pod for pod in self.pods.values() if not pod.gone]

    def _publish_endpoints(self) -> None:
        ready, gated = self.ready_pods(), self.gated_pods()
        # Kubernetes 1.20's endpoints: a terminating pod leaves at once (no not-ready step).
        now = [pod.name for pod in ready]
        for name in now:
            if name not in self._endpoints:
                self.emit("cluster", EventKind.ENDPOINT_READY, name, f"endpoint {name} is ready")
        for name in self._endpoints:
            if name not in now:
                pod = self.pods.get(name)
                if pod is not None and not pod.terminating and pod.exit_code is None:
                    self.emit("cluster", EventKind.ENDPOINT_NOT_READY, name,
                              f"endpoint {name} is not ready")
                else:
                    self.emit("cluster", EventKind.ENDPOINT_REMOVED, name,
                              f"endpoint {name} removed")
        self._endpoints = now
        names = ", ".join(pod.name for pod in ready) or "none"
        waiting = f"; {len(gated)} waiting for readiness gate" if gated else ""
        self.emit("cluster", EventKind.ENDPOINTS_UPDATED, "kubia",
                  f"endpoints: {len(ready)} ready ({names}){waiting}")
        for watcher in self.endpoint_watchers:
            watcher(list(ready), list(gated))


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
