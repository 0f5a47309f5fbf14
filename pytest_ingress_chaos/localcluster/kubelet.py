"""A kubelet stand-in: runs each pod bound to the control plane's nodes as a local process.

The control plane (``controlplane.py``) binds pods to nodes that no kubelet runs, so they would
stay Pending forever, and a graceful deletion would stay Terminating forever. This stand-in
does, for every node at once, what a kubelet does for the pods the project's tests need:

* **start**: bind a loopback listening socket, start the project's sample app
  (``backends/sim/sampleapp.py``: ``You've hit <pod>``) on it as the pod's one container, give
  the pod an IP from ``198.51.100.0/24`` and record where it really listens in the annotation
  ``ingress-chaos.dev/loopback`` (docs/kubernetes-backend.md: pod IPs are names in the API only;
  the 1.20 endpoints controllers refuse loopback pod IPs, see k8s-control-plane.md);
* **status**: phase, pod IPs, container status (restart count, ready) and the conditions
  PodScheduled, Initialized, ContainersReady and Ready, where Ready also waits for every
  ``spec.readinessGates`` condition (the ALB controller stand-in sets those);
* **readiness probe**: ``httpGet`` (or ``tcpSocket``) on the loopback port, after
  ``initialDelaySeconds``, every ``periodSeconds``;
* **restart** (restartPolicy Always): a container that exits while its pod is not being deleted
  is started again ``container_restart_delay`` later, on the same address, restartCount + 1;
* **termination**, as pod-lifecycle documents it: the deletion is noticed ``kubelet_lag`` later
  (the simulator's calibration, so that kube-proxy's update can win the race as it does in the
  field report), the preStop hook runs (``exec: sleep N`` only), SIGTERM, the rest of the grace
  period, SIGKILL; only when the process is gone does the stand-in confirm the deletion with a
  second delete (grace 0, UID precondition), which removes the pod from the API. Then the
  pod's loopback address refuses connections for ``address_refuse`` and blackholes after
  (connects time out), like a released pod IP (the simulator's ``cluster._release_address``).

Every duration is in test seconds and runs ``time_scale`` times faster (``SimTimings.wall``),
except the probe's ``timeoutSeconds``: that one is about how fast a process answers on this
machine, which compressing the story does not change.

The sample app's SIGTERM behaviour and keep-alive timeout come from the pod annotations
``ingress-chaos.dev/on-sigterm`` and ``ingress-chaos.dev/keepalive-timeout``. Each app process
runs in its own session (a terminal's Ctrl-C reaches the stand-in, not the pods behind its back)
and exits when its stdin closes, so it dies with the process that runs the stand-in, even if
that one is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ..backends.sim.dataplane import LOOPBACK, SAMPLEAPP, Emit, SimTimings
from .background import Background
from .kubeapi import STRATEGIC_MERGE_PATCH, Informer, KubeApi, KubeApiError, Obj

__all__ = [
    "KEEPALIVE_ANNOTATION",
    "LOOPBACK_ANNOTATION",
    "ON_SIGTERM_ANNOTATION",
    "POD_NETWORK",
    "Kubelet",
]

log = logging.getLogger(__name__)

LOOPBACK_ANNOTATION = "ingress-chaos.dev/loopback"
ON_SIGTERM_ANNOTATION = "ingress-chaos.dev/on-sigterm"
KEEPALIVE_ANNOTATION = "ingress-chaos.dev/keepalive-timeout"
#: Pod IPs come from this documentation range (RFC 5737): names only, never connected to.
POD_NETWORK = "198.51.100"
_POD_HOSTS = range(1, 255)
#: How long a released address blackholes before it simply refuses again (wall seconds): long
#: enough for any target group to have let go of it, short enough not to pile up sockets.
BLACKHOLE_SECONDS = 600.0
_DEFAULT_GRACE = 30  # terminationGracePeriodSeconds when the pod does not say
_EXTRA_GRACE_AFTER_PRESTOP = 2.0  # Kubernetes' extra grace when preStop used it all
_STATUS_RETRY = 0.2
_FINISHED_KEPT = 10_000  # UIDs remembered; events about a pod arrive within seconds
_SIGTERM_MODES = ("exit", "drain", "ignore")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _terminated_state(code: int, started: str, finished: str) -> Obj:
    state: Obj = {
        "exitCode": 128 - code if code < 0 else code,  # as a shell reports a signal
        "reason": "Completed" if code == 0 else "Error",
        "startedAt": started,
        "finishedAt": finished,
    }
    if code < 0:
        state["signal"] = -code
    return state


def prestop_sleep(container: Mapping[str, Any]) -> tuple[float, str]:
    """The preStop hook's sleep in test seconds, and a note when the hook cannot be run here.

    Only ``exec`` hooks that sleep are supported (``["sleep", "N"]``, also ``/bin/sleep`` and
    ``sh -c "sleep N"``): a local process cannot run a command inside an image."""
    hook = ((container.get("lifecycle") or {}).get("preStop")) or {}
    if not hook:
        return 0.0, ""
    command = [str(part) for part in (hook.get("exec") or {}).get("command") or []]
    if len(command) == 3 and command[0].endswith("sh") and command[1] == "-c":
        command = command[2].split()
    if len(command) == 2 and command[0].rsplit("/", 1)[-1] == "sleep":
        try:
            return max(0.0, float(command[1])), ""
        except ValueError:
            pass
    what = command or sorted(hook)
    return 0.0, f"preStop {what} is not supported by the local kubelet (only exec sleep N)"


def _kill(process: asyncio.subprocess.Process, signum: int) -> None:
    """Signal the process by pid. Not ``process.send_signal``: that polls first (CPython
    bpo-38630), and a poll that reaps a process which has just died steals its exit status
    from asyncio's child watcher, which then reports exit code 255 instead of the signal.
    Only called while asyncio has not seen the exit, so the pid is still this process's."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signum)


class _Blackholes:
    """Addresses of gone pods that accept one connection and then let every connect time out."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []

    def hold(self, port: int) -> str:
        """Blackhole ``127.0.0.1:port``; returns why it could not be done, or ""."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
            sock.listen(0)  # never accepted: one handshake completes, later SYNs are dropped
        except OSError as exc:
            sock.close()
            return exc.strerror or str(exc)
        self.sockets.append(sock)
        asyncio.get_running_loop().call_later(BLACKHOLE_SECONDS, self._release, sock)
        return ""

    def _release(self, sock: socket.socket) -> None:
        if sock in self.sockets:
            self.sockets.remove(sock)
            sock.close()

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


class Kubelet:
    """The kubelet of every node in ``nodes``. :meth:`start` and :meth:`stop` run on the event
    loop that the pods' processes and timers belong to."""

    def __init__(
        self,
        api: KubeApi,
        nodes: Sequence[str],
        timings: SimTimings,
        emit: Emit,
        *,
        node_ips: Mapping[str, str] | None = None,
    ) -> None:
        self.api = api
        self.nodes = frozenset(nodes)
        self.timings = timings
        self.emit = emit
        self.node_ips = dict(node_ips or {})
        self.workers: dict[str, _PodWorker] = {}  # by pod UID
        self.retired: set[_PodWorker] = set()  # gone from the API, releasing their address
        # UIDs of pods whose end was confirmed: events still in flight about them (our own
        # last status patch) must not start them again.
        self.finished: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.blackholes = _Blackholes()
        self.informer = Informer(
            api,
            "/api/v1/pods",
            self._on_pod,
            # Bound pods only: the scheduler's business ends where ours begins.
            params={"fieldSelector": "spec.nodeName!="},
            name="kubelet pods",
        )
        self.stopping = False
        self._background = Background("kubelet")
        self._ips_in_use: set[str] = set()
        self._next_host = 0
        self._pids: set[int] = set()
        self._pids_lock = threading.Lock()

    async def start(self, timeout: float = 30.0) -> None:
        """Watch pods; returns once the first list is handled."""
        self._background.spawn(self.informer.run(), "kubelet pod informer")
        await asyncio.wait_for(self.informer.synced.wait(), timeout)

    async def stop(self) -> None:
        """End the watch and every pod's work, and kill every app process (SIGKILL): the
        cluster is going away, there is nobody left to confirm deletions to."""
        self.stopping = True
        await self._background.close()
        workers = [*self.workers.values(), *self.retired]
        self.workers, self.retired = {}, set()
        for worker in workers:
            await worker.close()
        self.blackholes.close()

    def pids(self) -> list[int]:
        """Pids of the app processes running now; safe to call from any thread."""
        with self._pids_lock:
            return sorted(self._pids)

    def track_pid(self, pid: int, alive: bool) -> None:
        with self._pids_lock:
            if alive:
                self._pids.add(pid)
            else:
                self._pids.discard(pid)

    # --- pod IPs -----------------------------------------------------------------------------

    def allocate_ip(self, wanted: str = "") -> str:
        """A pod IP unique among live pods. Round robin, as IPAM does, so a gone pod's address
        is not handed out again at once. ``wanted``: the pod's IP from an earlier kubelet."""
        if wanted.startswith(POD_NETWORK + ".") and wanted not in self._ips_in_use:
            self._ips_in_use.add(wanted)
            return wanted
        for _ in _POD_HOSTS:
            host = _POD_HOSTS[self._next_host % len(_POD_HOSTS)]
            self._next_host += 1
            ip = f"{POD_NETWORK}.{host}"
            if ip not in self._ips_in_use:
                self._ips_in_use.add(ip)
                return ip
        raise RuntimeError(f"no free pod IP left in {POD_NETWORK}.0/24")

    def release_ip(self, ip: str) -> None:
        self._ips_in_use.discard(ip)

    # --- the watch -----------------------------------------------------------------------------

    def _on_pod(self, kind: str, pod: Obj) -> None:
        if self.stopping or (pod.get("spec") or {}).get("nodeName") not in self.nodes:
            return
        uid = str(pod["metadata"].get("uid"))
        if uid in self.finished:
            return
        worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker is not None:
                worker.left_api()
            return
        if worker is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return  # finished pods are not run again
            worker = _PodWorker(self, pod)
            self.workers[uid] = worker
            worker.task = self._background.spawn(worker.run(), f"pod {worker.ref}")
        else:
            worker.update(pod)

    def forget(self, worker: _PodWorker) -> None:
        """The pod is gone from the API: its IP is free again (its address not yet)."""
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]
            self.retired.add(worker)
        self.finished[worker.uid] = None
        while len(self.finished) > _FINISHED_KEPT:
            self.finished.popitem(last=False)
        if worker.ip:
            self.release_ip(worker.ip)


class _PodWorker:
    """One pod: its app process, its status and its termination."""

    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        self.kubelet = kubelet
        self.timings = kubelet.timings
        self.emit = kubelet.emit
        self.api = kubelet.api
        self.pod = pod
        meta, spec = pod["metadata"], pod["spec"]
        self.uid = str(meta["uid"])
        self.namespace, self.name = str(meta["namespace"]), str(meta["name"])
        self.ref = f"{self.namespace}/{self.name}"
        self.node = str(spec["nodeName"])
        self.path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
        containers = spec.get("containers") or [{}]
        self.container: Obj = containers[0]
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        annotations = meta.get("annotations") or {}
        self.on_sigterm = str(annotations.get(ON_SIGTERM_ANNOTATION) or "exit")
        if self.on_sigterm not in _SIGTERM_MODES:
            self.on_sigterm = "exit"
        self.keepalive: float | None = None
        if annotations.get(KEEPALIVE_ANNOTATION) not in (None, ""):
            try:
                self.keepalive = float(annotations[KEEPALIVE_ANNOTATION])
            except ValueError:
                log.warning("pod %s: %s=%r is not a number of seconds; ignored", self.ref,
                            KEEPALIVE_ANNOTATION, annotations[KEEPALIVE_ANNOTATION])
        self.ip = ""
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.exit_code: int | None = None
        self.restarts = 0
        self.last_exit: Obj | None = None
        self.container_ready = False
        self.phase = "Pending"
        self.started_at = ""
        self.start_time = _now()
        self.terminating = False
        self.gone = False  # deleted from the API
        self._exit_reported = False
        self.started = asyncio.Event()  # the first container start was attempted
        self.exited = asyncio.Event()  # the current process has ended
        self.task: asyncio.Task[None] | None = None
        self._background = Background(f"kubelet {self.ref}")
        self._probe: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._status_dirty = asyncio.Event()
        self._status_lock = asyncio.Lock()
        self._written: Obj | None = None
        self._written_ready = False
        self._transitions: dict[str, tuple[str, str]] = {}

    # --- events from the watch -----------------------------------------------------------------

    def update(self, pod: Obj) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp") and not self.terminating:
            self._begin_termination()
        # A readiness gate may have turned: Ready is recomputed (unchanged statuses are not
        # written again, so our own writes coming back do not loop).
        self._status_dirty.set()

    def left_api(self) -> None:
        """The pod is gone from the API: confirmed by us, or deleted with grace 0 (forced),
        which gives no grace at all: the process is killed now."""
        if self.gone:
            return
        self.gone = True
        if self.terminating:  # forced while its graceful termination ran: no more grace
            self._signal(signal.SIGKILL, "SIGKILL (deleted from the API with no grace)")
        else:
            self.terminating = True
            self.emit(
                "kubelet", "pod.deleted", self.name, f"pod {self.name} deleted with grace 0"
            )
            self._background.spawn(self._after_forced_deletion(), "forced deletion")

    async def _after_forced_deletion(self) -> None:
        await self.started.wait()  # a process being started right now is killed once it runs
        self._signal(signal.SIGKILL, "SIGKILL (deleted from the API with no grace)")
        await self._report_exit()
        await self._finish()

    # --- life -------------------------------------------------------------------------------

    async def run(self) -> None:
        self._writer = self._background.spawn(self._write_statuses(), "status writer")
        if self.pod["metadata"].get("deletionTimestamp"):
            self._begin_termination()
        try:
            wanted = str((self.pod.get("status") or {}).get("podIP") or "")
            self.ip = self.kubelet.allocate_ip(wanted)
            if not self.terminating:
                await self._start_container()
        finally:
            self.started.set()
        if self.process is None or self.gone:
            return  # a forced deletion during the start kills it (_after_forced_deletion)
        self.emit(
            "kubelet", "pod.started", self.name,
            f"pod {self.name} started on {self.node}, IP {self.ip} serving at "
            f"{LOOPBACK}:{self.port}",
        )
        while True:
            await self._watch_container()
            if self.terminating or self.gone or self.kubelet.stopping:
                return
            if not self._restartable():
                self.phase = "Succeeded" if self.exit_code == 0 else "Failed"
                self._status_dirty.set()
                return
            await asyncio.sleep(self.timings.wall(self.timings.container_restart_delay))
            if self.terminating or self.gone or self.kubelet.stopping:
                return
            self.restarts += 1
            await self._start_container()
            self.emit("kubelet", "pod.restarted", self.name,
                      f"pod {self.name}: container restarted (restart #{self.restarts})")

    def _restartable(self) -> bool:
        if self.restart_policy == "Never":
            return False
        return self.restart_policy != "OnFailure" or self.exit_code != 0

    async def _start_container(self) -> None:
        """Start the app on the pod's address (a new one the first time). The stand-in binds
        the socket and hands it over, so the address is known, and connections queue, before
        the process has started."""
        try:
            listener = socket.create_server((LOOPBACK, self.port), backlog=128)
        except OSError as exc:
            # The old port was taken while the container was down: move, as a new sandbox would.
            log.warning("pod %s: port %d is taken (%s); moving", self.ref, self.port, exc)
            listener = socket.create_server((LOOPBACK, 0), backlog=128)
        options = ["--on-sigterm", self.on_sigterm, "--exit-on-stdin-eof"]
        if self.keepalive is not None:
            options += ["--keepalive-timeout", repr(self.timings.wall(self.keepalive))]
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(SAMPLEAPP), "--fd", str(listener.fileno()),
                "--name", self.name, *options,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                pass_fds=(listener.fileno(),),
                start_new_session=True,
            )
            moved = self.port != listener.getsockname()[1]
            self.port = listener.getsockname()[1]
        finally:
            listener.close()  # the app owns the socket now
        self.kubelet.track_pid(process.pid, True)
        self.process = process
        self.exit_code = None
        self.exited = asyncio.Event()
        self.container_ready = False
        self.started_at = _now()
        if moved:
            # Before the status says Running: whoever sees the pod run can reach it.
            await self._annotate()
        self.phase = "Running"
        self._status_dirty.set()
        self._probe = self._background.spawn(self._probe_readiness(), "readiness probe")

    async def _annotate(self) -> None:
        """Where the pod really listens: what the ALB controller stand-in connects to."""
        body = {"metadata": {"annotations": {LOOPBACK_ANNOTATION: f"{LOOPBACK}:{self.port}"}}}
        with contextlib.suppress(KubeApiError):  # 404: deleted meanwhile
            await self.api.patch(self.path, body)

    async def _watch_container(self) -> None:
        process = self.process
        assert process is not None
        code = await process.wait()
        self.kubelet.track_pid(process.pid, False)
        self.exit_code = code
        self.last_exit = _terminated_state(code, self.started_at, _now())
        self.container_ready = False
        if self._probe is not None:
            self._probe.cancel()
        self.exited.set()
        self._status_dirty.set()
        if not (self.terminating or self.gone or self.kubelet.stopping):
            action = "the kubelet restarts it" if self._restartable() else "not restarted"
            self.emit("kubelet", "pod.crashed", self.name,
                      f"pod {self.name}: container exited ({_describe_exit(code)}); {action}")

    # --- readiness --------------------------------------------------------------------------

    async def _probe_readiness(self) -> None:
        probe = self.container.get("readinessProbe") or {}
        if not probe:  # no probe: ready as soon as it runs
            self._set_ready(True)
            return
        wall = self.timings.wall
        period = wall(float(probe.get("periodSeconds") or 10))
        timeout = float(probe.get("timeoutSeconds") or 1)  # not scaled: see the module doc
        needed = {True: int(probe.get("successThreshold") or 1),
                  False: int(probe.get("failureThreshold") or 3)}
        await asyncio.sleep(wall(float(probe.get("initialDelaySeconds") or 0)))
        streak, last = 0, None
        while not self.exited.is_set():
            passed = await self._probe_once(probe, timeout)
            streak = streak + 1 if passed == last else 1
            last = passed
            if streak >= needed[passed]:
                self._set_ready(passed)
            await asyncio.sleep(period)

    async def _probe_once(self, probe: Obj, timeout: float) -> bool:
        if "httpGet" not in probe and "tcpSocket" not in probe:
            log.warning("pod %s: only httpGet and tcpSocket readiness probes are supported; "
                        "treating %s as passing", self.ref, sorted(probe))
            return True
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(LOOPBACK, self.port), timeout)
        except (OSError, asyncio.TimeoutError):
            return False
        try:
            if "tcpSocket" in probe:
                return True
            path = str(probe["httpGet"].get("path") or "/")
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.ip}\r\n"
                         "User-Agent: kube-probe/1.20\r\nConnection: close\r\n\r\n".encode())
            status = await asyncio.wait_for(reader.readline(), timeout)
            parts = status.split()
            return len(parts) > 1 and parts[1].isdigit() and 200 <= int(parts[1]) < 400
        except (OSError, asyncio.TimeoutError):
            return False
        finally:
            writer.close()

    def _set_ready(self, ready: bool) -> None:
        if ready != self.container_ready and not self.exited.is_set():
            self.container_ready = ready
            self._status_dirty.set()

    def _gates(self) -> list[str]:
        return [str(gate.get("conditionType")) for gate in
                (self.pod["spec"].get("readinessGates") or []) if gate.get("conditionType")]

    def _ready(self) -> bool:
        """Ready: containers ready and every readiness gate's condition True (as set by
        whoever owns the gate; for target-health gates, the ALB controller stand-in)."""
        if not self.container_ready:
            return False
        conditions = {c.get("type"): c.get("status")
                      for c in (self.pod.get("status") or {}).get("conditions") or []}
        return all(conditions.get(gate) == "True" for gate in self._gates())

    # --- status -----------------------------------------------------------------------------

    def _condition(self, kind: str, value: bool, reason: str = "") -> Obj:
        status = "True" if value else "False"
        before = self._transitions.get(kind)
        if before is None or before[0] != status:
            self._transitions[kind] = (status, _now())
        condition: Obj = {"type": kind, "status": status,
                          "lastTransitionTime": self._transitions[kind][1],
                          "lastProbeTime": None}
        # A strategic merge keeps keys it is not given: null removes a stale reason.
        condition["reason"] = reason if reason and not value else None
        return condition

    def _status(self) -> Obj:
        running = self.process is not None and not self.exited.is_set()
        ready = self._ready()
        gates_pending = self.container_ready and not ready
        container: Obj = {
            "name": str(self.container.get("name") or "app"),
            "image": str(self.container.get("image") or ""),
            "imageID": "",
            "ready": self.container_ready,
            "restartCount": self.restarts,
            "started": running,
        }
        if self.process is not None:
            container["containerID"] = f"local://{self.process.pid}"
        if running:
            container["state"] = {"running": {"startedAt": self.started_at}}
        elif self.last_exit is not None:
            container["state"] = {"terminated": self.last_exit}
        else:
            container["state"] = {"waiting": {"reason": "ContainerCreating"}}
        if self.restarts and self.last_exit is not None:
            container["lastState"] = {"terminated": self.last_exit}
        status: Obj = {
            "phase": self.phase,
            "hostIP": self.kubelet.node_ips.get(self.node, ""),
            "startTime": self.start_time,
            "conditions": [
                self._condition("Initialized", True),
                self._condition("ContainersReady", self.container_ready, "ContainersNotReady"),
                self._condition("Ready", ready,
                                "ReadinessGatesNotReady" if gates_pending else
                                "ContainersNotReady"),
                self._condition("PodScheduled", True),
            ],
            "containerStatuses": [container],
        }
        if self.ip and self.process is not None:
            status["podIP"] = self.ip
            status["podIPs"] = [{"ip": self.ip}]
        return status

    async def _write_statuses(self) -> None:
        """Write the pod's status whenever it changed (coalesced: one patch in flight)."""
        while True:
            await self._status_dirty.wait()
            self._status_dirty.clear()
            if not await self._write_status():
                await asyncio.sleep(_STATUS_RETRY)
                self._status_dirty.set()

    async def _write_status(self) -> bool:
        """Patch the status if it changed; False when it should be tried again. A strategic
        merge: conditions merge by type, so the readiness-gate conditions that the ALB
        controller writes are left alone."""
        async with self._status_lock:
            status = self._status()
            if status == self._written:
                return True
            was_ready, ready = self._written_ready, self._ready()
            try:
                await self.api.patch(f"{self.path}/status", {"status": status},
                                     STRATEGIC_MERGE_PATCH)
            except KubeApiError as exc:
                if exc.status == 404:  # gone from the API: nothing left to write
                    return True
                log.warning("pod %s: status patch failed (%s); retrying", self.ref, exc)
                return False
            except httpx.HTTPError as exc:
                log.warning("pod %s: status patch failed (%s); retrying", self.ref, exc)
                return False
            self._written, self._written_ready = status, ready
            if ready != was_ready:
                self.emit("kubelet", "pod.ready" if ready else "pod.not_ready", self.name,
                          f"pod {self.name} is {'Ready' if ready else 'not Ready'}")
            return True

    # --- termination --------------------------------------------------------------------------

    def _begin_termination(self) -> None:
        self.terminating = True
        meta = self.pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", _DEFAULT_GRACE)
        self.emit("kubelet", "pod.deleting", self.name,
                  f"pod {self.name} is being deleted (grace {grace}s)")
        self._background.spawn(self._terminate(float(grace)), "termination")

    async def _terminate(self, grace: float) -> None:
        wall = self.timings.wall
        await self.started.wait()
        if grace <= 0:
            self._signal(signal.SIGKILL, "SIGKILL (deleted with grace 0)")
        elif self._running():
            await asyncio.sleep(wall(self.timings.kubelet_lag))
            prestop, unsupported = prestop_sleep(self.container)
            if unsupported:
                log.warning("pod %s: %s; skipped", self.ref, unsupported)
                self.emit("kubelet", "pod.prestop_unsupported", self.name,
                          f"pod {self.name}: {unsupported}; skipped")
            prestop = min(prestop, grace)
            if prestop > 0 and self._running():
                self.emit("kubelet", "pod.prestop", self.name,
                          f"pod {self.name}: preStop sleep {prestop:g}s")
                await asyncio.sleep(wall(prestop))
            remaining = grace - prestop if prestop < grace else _EXTRA_GRACE_AFTER_PRESTOP
            self._signal(signal.SIGTERM, f"SIGTERM ({self.on_sigterm} on SIGTERM)")
            try:
                await asyncio.wait_for(self.exited.wait(), wall(remaining))
            except asyncio.TimeoutError:
                self._signal(signal.SIGKILL, f"SIGKILL after the {grace:g}s grace period")
        await self._report_exit()
        await self._confirm()
        await self._finish()

    def _running(self) -> bool:
        return self.process is not None and not self.exited.is_set()

    async def _report_exit(self) -> None:
        """Wait for the process (if one ever ran) to be gone, and say so once."""
        if self.process is None or self._exit_reported:
            return
        await self.exited.wait()
        if not self._exit_reported:
            self._exit_reported = True
            self.emit("kubelet", "pod.exited", self.name,
                      f"pod {self.name}: process exited ({_describe_exit(self.exit_code)})")

    def _signal(self, signum: int, what: str) -> None:
        process = self.process
        if process is not None and process.returncode is None and not self.exited.is_set():
            _kill(process, signum)
            self.emit("kubelet", "pod.signal", self.name, f"pod {self.name}: {what}")

    async def _confirm(self) -> None:
        """The kubelet's final word: status, then the delete that removes the pod from the API
        (grace 0, only this pod: a new pod of the same name has another UID)."""
        if self.gone:
            return
        await self._write_status()
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": self.uid}}
        try:
            await self.api.delete(self.path, body)
        except KubeApiError as exc:
            if exc.status not in (404, 409):  # gone already, or another pod by that name
                log.warning("pod %s: confirming the deletion failed: %s", self.ref, exc)
                return
        self.emit("kubelet", "pod.gone", self.name,
                  f"pod {self.name} deleted from the API (the kubelet confirmed its end)")

    async def _finish(self) -> None:
        """Release the pod's address (refuse, then blackhole) and its IP."""
        if self._writer is not None:
            self._writer.cancel()  # nothing is left to write about a pod gone from the API
        self.kubelet.forget(self)
        try:
            if self.port:
                await self._release_address()
        finally:
            self.kubelet.retired.discard(self)

    async def _release_address(self) -> None:
        await asyncio.sleep(self.timings.wall(self.timings.address_refuse))
        why = self.kubelet.blackholes.hold(self.port)
        if why:
            self.emit("kubelet", "address.kept", self.name,
                      f"address {LOOPBACK}:{self.port} of {self.name} could not be "
                      f"blackholed ({why}); it keeps refusing")
        else:
            self.emit("kubelet", "address.released", self.name,
                      f"address {LOOPBACK}:{self.port} of {self.name} released: connects "
                      "now time out")

    async def close(self) -> None:
        """Stop everything now (the stand-in is stopping): kill the process, end the tasks."""
        if self.task is not None:
            self.task.cancel()
        await self._background.close()
        process = self.process
        if process is not None and process.returncode is None:
            _kill(process, signal.SIGKILL)
            if process.stdin is not None:
                process.stdin.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.wait(), 5.0)
        if process is not None:
            self.kubelet.track_pid(process.pid, False)
