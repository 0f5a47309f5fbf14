"""The local cluster: the real control plane with its stand-ins, as a class and as a command.

:class:`LocalCluster` starts :class:`~.controlplane.ControlPlane` (etcd, kube-apiserver,
controller-manager, scheduler on loopback, nodes ``node-1`` .. ``node-N``), then the kubelet
stand-in (``kubelet.py``) and the AWS Load Balancer Controller stand-in (``albcontroller.py``)
on one asyncio event loop in a thread of their own, so a test (or the command) keeps its own
thread free. Point anything that speaks Kubernetes at :attr:`LocalCluster.kubeconfig`, and
anything that speaks AWS at the environment in :attr:`LocalCluster.aws_env` (``aws.env`` next to
the kubeconfig: the stand-in ALBs as the ELBv2 API, ``elbv2api.py``).

``ingress-local-cluster`` (also ``python -m pytest_ingress_chaos.localcluster``) runs one until
Ctrl-C or SIGTERM::

    $ ingress-local-cluster --time-scale 0.2
    /tmp/pytest-ingress-kube-abc123/kubeconfig     <- the first line on stdout, always
    ... (the log, on stderr)

and then stops everything: the sample-app processes, the listeners, the control plane, the
temporary directory. Nothing is left behind even when it is killed outright: the control plane's
processes die with it (PR_SET_PDEATHSIG), the pods when their stdin closes, and the next start
removes the directory.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import collections
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from ..backends.sim.dataplane import DEFAULTS, SimTimings
from ..base.clock import TIME_SCALE, TestClock
from ..base.errors import SettingsError
from ..base.stopsignals import StopSignals
from ..base.units import Count, Number, argparse_type
from . import nodesweep
from .albcontroller import AlbController
from .controlplane import Binaries, ControlPlane, ControlPlaneError, find_binaries
from .elbv2api import Elbv2Api, aws_environment
from .kubeapi import KubeApi
from .kubelet import Kubelet
from .netplan import MAX_NODES, NetPlan
from .nodes import NodesUnavailable, RealNodes, unavailable

# What the command line takes: as many stand-in nodes as the simulator has (real nodes are
# bounded by the address plan, checked apart), lags of up to ten minutes (NaN is no lag).
NODES = Count(minimum=1, maximum=100)
LAG = Number(minimum=0.0, maximum=600.0, above_minimum=False, note=" seconds")
SECONDS = argparse_type(LAG, "seconds")

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

__all__ = ["ClusterEvent", "EventLog", "LocalCluster", "LocalClusterError", "main"]

log = logging.getLogger(__name__)
events_log = logging.getLogger("pytest_ingress_chaos.localcluster.events")

_STOP_TIMEOUT = 20.0  # wall seconds for the stand-ins to stop before they are abandoned


class LocalClusterError(ControlPlaneError):
    """The stand-ins could not start; the cause is chained."""


@dataclass(frozen=True)
class ClusterEvent:
    """Something a stand-in did: ``at`` is ``time.monotonic()``."""

    at: float
    source: str  # kubelet, alb, kube-proxy
    kind: str  # pod.started, pod.signal, target.registered, ...
    subject: str  # the pod, node or Ingress
    message: str


class EventLog:
    """What the stand-ins did, in order; thread-safe (written on the stand-ins' loop, read by
    tests), bounded, and copied to the log."""

    def __init__(self, maxlen: int = 50_000) -> None:
        self._events: collections.deque[ClusterEvent] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def emit(self, source: str, kind: str, subject: str, message: str) -> None:
        event = ClusterEvent(time.monotonic(), source, kind, subject, message)
        with self._lock:
            self._events.append(event)
        events_log.info("%-10s %s", source, message)

    def snapshot(self, *, since: float = 0.0, subject: str | None = None) -> list[ClusterEvent]:
        with self._lock:
            events = list(self._events)
        return [e for e in events if e.at >= since and (subject is None or e.subject == subject)]

    def wait_for(self, match: Callable[[ClusterEvent], bool], timeout: float,
                 *, since: float = 0.0) -> ClusterEvent:
        """The first event since ``since`` that ``match`` accepts, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.snapshot(since=since):
                if match(event):
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching cluster event within {timeout:g} s")
            time.sleep(0.02)


class LocalCluster:
    """A control plane on loopback with a kubelet and an ALB controller stand-in.

    Use as a context manager, or :meth:`start` and :meth:`stop`. Start it from a thread that
    outlives it (the control plane's processes are tied to the thread that forks them).
    ``time_scale`` compresses every stand-in timing (preStop sleeps, grace periods, probes,
    the controller's lags, health checks); the lags are in test seconds like the simulator's.
    """

    def __init__(
        self,
        nodes: int = 3,
        *,
        time_scale: float = 1.0,
        registration_lag: float = DEFAULTS.registration_lag,
        deregistration_lag: float = DEFAULTS.deregistration_lag,
        lag_jitter: float = DEFAULTS.lag_jitter,
        kubelet_lag: float = DEFAULTS.kubelet_lag,
        seed: int | None = None,
        binaries: Binaries | None = None,
        startup_timeout: float = 60.0,
        tmp_parent: str | os.PathLike[str] | None = None,
        stand_in_nodes: bool = False,
    ) -> None:
        #: Nodes played by the kubelet stand-in (pods as local processes) instead of real
        #: kubelets, containerd and kube-proxy in network namespaces; only when asked for.
        self.stand_in_nodes = stand_in_nodes
        self.node_count = nodes
        self._binaries = binaries
        try:
            clock = TestClock(TIME_SCALE(time_scale))
        except ValueError as exc:
            raise SettingsError(f"LocalCluster(time_scale={time_scale!r}): {exc}") from None
        if not stand_in_nodes and time_scale != 1.0:
            raise LocalClusterError(
                f"time_scale={time_scale:g}: real nodes run in real time (a kubelet's preStop "
                "sleep and grace period are wall-clock seconds); a time scale other than 1 "
                "needs the stand-in nodes (--stand-in-nodes)")
        self.timings = SimTimings(
            clock=clock,
            registration_lag=registration_lag,
            deregistration_lag=deregistration_lag,
            lag_jitter=lag_jitter,
            kubelet_lag=kubelet_lag,
        )
        self.seed = seed
        self.startup_timeout = startup_timeout
        self.control_plane = ControlPlane(
            nodes, binaries=binaries, startup_timeout=startup_timeout, tmp_parent=tmp_parent,
            real_nodes=not stand_in_nodes,
        )
        self.real_nodes: RealNodes | None = None
        self._slot: nodesweep.Slot | None = None
        self.events = EventLog()
        self.kubelet: Kubelet | None = None
        self.alb_controller: AlbController | None = None
        self.elbv2: Elbv2Api | None = None
        #: Seconds from start() to: the control plane up, the stand-ins up (``total``).
        self.timings_s: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- public surface ---------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    @property
    def aws_env(self) -> Path:
        """``KEY=value`` lines: the ELBv2 API stand-in's endpoint, region, dummy credentials."""
        return self.kubeconfig.parent / "aws.env"

    def aws_environment(self) -> dict[str, str]:
        """The environment a boto3 client needs to see the stand-in ALBs (after start)."""
        assert self.elbv2 is not None, "the local cluster is not running"
        return aws_environment(self.elbv2.endpoint)

    @property
    def node_names(self) -> list[str]:
        return list(self.control_plane.node_names)

    def api_client(self) -> ApiClient:
        """A new ``kubernetes.client.ApiClient`` for this cluster; close it when done."""
        return self.control_plane.api_client()

    def pids(self) -> dict[str, list[int]]:
        """Running processes: the control plane's components, the real nodes' (kubelet,
        kube-proxy, containerd), or the stand-in's pods' app processes (``pods``)."""
        result = {name: [pid] for name, pid in self.control_plane.pids().items()}
        if self.real_nodes is not None:
            result.update(self.real_nodes.pids())
        result["pods"] = self.kubelet.pids() if self.kubelet is not None else []
        return result

    @property
    def slot(self) -> int | None:
        """The real nodes' slot (netplan.py), None with stand-in nodes or when stopped."""
        return self._slot.index if self._slot is not None else None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- start and stop ---------------------------------------------------------------------

    def start(self) -> LocalCluster:
        if self._thread is not None:
            raise RuntimeError("the local cluster is already running")
        started = time.monotonic()
        atexit.register(self.stop)
        try:
            if not self.stand_in_nodes:
                self._prepare_real_nodes()
            self.control_plane.start()
        except BaseException:
            self.stop()
            raise
        self.timings_s["control_plane"] = round(time.monotonic() - started, 3)
        try:
            if self.real_nodes is not None:
                self.real_nodes.start()
                self.timings_s["nodes"] = round(time.monotonic() - started, 3)
            self._error = None
            self._ready.clear()
            self._thread = threading.Thread(
                target=self._run, name="ingress-local-cluster stand-ins", daemon=True
            )
            self._thread.start()
            if not self._ready.wait(self.startup_timeout):
                raise LocalClusterError(
                    f"the stand-ins did not start within {self.startup_timeout:g} s"
                )
            if self._error is not None:
                raise LocalClusterError(f"the stand-ins failed to start: {self._error}") \
                    from self._error
        except BaseException:
            self.stop()
            raise
        self.timings_s["total"] = round(time.monotonic() - started, 3)
        log.info("local cluster up in %.1f s (control plane %.1f s); kubeconfig %s",
                 self.timings_s["total"], self.timings_s["control_plane"], self.kubeconfig)
        return self

    def _prepare_real_nodes(self) -> None:
        """Refuse where real nodes cannot run; hold a slot (swept of a killed run's leftovers)
        and give the apiserver the slot's Service range."""
        binaries = self._binaries or find_binaries()
        if isinstance(binaries, str):
            raise ControlPlaneError(binaries)
        why = unavailable(binaries)
        if why:
            raise NodesUnavailable(f"{why}. (The kubelet stand-in, which runs pods as local "
                                   "processes, is used only when asked for: --stand-in-nodes, "
                                   "LocalCluster(stand_in_nodes=True).)")
        self._slot = nodesweep.acquire_slot()
        plan = NetPlan(self._slot.index, self.node_count)
        self.control_plane.service_cidr = str(plan.service_cidr)
        self.control_plane.advertise_address = plan.host_ip
        self.real_nodes = RealNodes(plan, self.control_plane, binaries,
                                    startup_timeout=max(self.startup_timeout, 90.0))

    def stop(self) -> None:
        """Stop the stand-ins (every pod process is killed), the real nodes (and sweep their
        slot), then the control plane. Safe to call more than once, from atexit too."""
        thread, self._thread = self._thread, None
        if thread is not None:
            loop, event = self._loop, self._stop_requested
            if loop is not None and event is not None:
                with contextlib.suppress(RuntimeError):  # the loop has ended already
                    loop.call_soon_threadsafe(event.set)
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                log.warning("the stand-ins did not stop within %.0f s", _STOP_TIMEOUT)
        # Whatever went wrong above, no app process outlives the cluster.
        if self.kubelet is not None:
            for pid in self.kubelet.pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if self.real_nodes is not None:
            self.real_nodes.stop()
        self.control_plane.stop()
        if self._slot is not None:
            self._slot.release()
            self._slot = None
        atexit.unregister(self.stop)

    # --- the stand-ins' thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start(), or logged if it was running
            if self._ready.is_set():
                log.error("the stand-ins failed", exc_info=exc)
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        cp = self.control_plane
        api = KubeApi(cp.server, cp.token, cp.ca_file)
        emit = self.events.emit
        try:
            nodes = await api.get("/api/v1/nodes")
            node_ips = {
                str(node["metadata"]["name"]): str(address["address"])
                for node in nodes.get("items") or []
                for address in (node.get("status") or {}).get("addresses") or []
                if address.get("type") == "InternalIP"
            }
            if self.real_nodes is None:
                self.kubelet = Kubelet(api, cp.node_names, self.timings, emit,
                                       node_ips=node_ips)
            self.alb_controller = AlbController(api, self.timings, emit, seed=self.seed,
                                                real_nodes=self.real_nodes is not None)
            self.elbv2 = Elbv2Api(self.alb_controller, api)
            self.alb_controller.on_stack.append(self.elbv2.bind)
            try:
                await self.elbv2.start()
                self.aws_env.write_text("".join(
                    f"{key}={value}\n" for key, value in self.aws_environment().items()))
                if self.kubelet is not None:
                    await self.kubelet.start()
                await self.alb_controller.start()
                self._ready.set()
                await self._stop_requested.wait()
            finally:
                await self.alb_controller.stop()
                await self.elbv2.close()
                if self.kubelet is not None:
                    await self.kubelet.stop()
        finally:
            await api.aclose()


# --- the command ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingress-local-cluster",
        description="A local Kubernetes cluster on loopback for pytest-ingress-chaos: a real "
        "control plane (etcd, kube-apiserver, controller-manager, scheduler) with a kubelet "
        "stand-in that runs pods as local processes and an AWS Load Balancer Controller "
        "stand-in that serves Ingresses of class alb. Prints the kubeconfig path as its first "
        "line, logs on stderr, stops everything on Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--nodes", type=argparse_type(NODES, "count"), default=3,
                        help="nodes to register (default 3)")
    parser.add_argument("--time-scale", type=argparse_type(TIME_SCALE, "number"), default=1.0,
                        help="factor on every stand-in timing: 0.2 runs five times faster "
                        "(default 1); give pytest the same --ingress-time-scale")
    parser.add_argument("--registration-lag", type=SECONDS,
                        default=DEFAULTS.registration_lag,
                        help="the ALB controller's lag before registering new ip targets, "
                        "seconds (default %(default)g)")
    parser.add_argument("--deregistration-lag", type=SECONDS,
                        default=DEFAULTS.deregistration_lag,
                        help="its lag before deregistering gone ip targets (default "
                        "%(default)g)")
    parser.add_argument("--lag-jitter", type=SECONDS,
                        default=DEFAULTS.lag_jitter,
                        help="each lag is drawn from lag +- jitter (default %(default)g)")
    parser.add_argument("--kubelet-lag", type=SECONDS,
                        default=DEFAULTS.kubelet_lag,
                        help="from a pod's deletion to the kubelet acting on it (default "
                        "%(default)g)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the lags' jitter")
    parser.add_argument("--stand-in-nodes", action="store_true",
                        help="nodes played by the kubelet stand-in (pods as local processes) "
                        "instead of real kubelets, containerd and kube-proxy in network "
                        "namespaces, which need root")
    parser.add_argument("--sweep", action="store_true",
                        help="remove what killed runs of real nodes left (processes, network "
                        "namespaces, interfaces, mounts, cgroups) and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _check_real_nodes(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.stand_in_nodes and args.nodes > MAX_NODES:
        parser.error(f"--nodes: real nodes support at most {MAX_NODES}")
    if not args.stand_in_nodes and args.time_scale != 1:
        parser.error("--time-scale: real nodes run in real time (a kubelet's preStop sleep "
                     "and grace period are wall-clock seconds); a time scale other than 1 "
                     "needs --stand-in-nodes")


def _sweep() -> int:
    """``--sweep``: every slot no running cluster holds; 1 if anything could not be removed."""
    if os.geteuid() != 0:
        print("ingress-local-cluster: --sweep needs root", file=sys.stderr)
        return 1
    results = nodesweep.sweep_all()
    for slot, problems in sorted(results.items()):
        for problem in problems:
            print(f"ingress-local-cluster: slot {slot}: {problem}", file=sys.stderr)
    log.info("swept %d slots", len(results))
    return 1 if any(results.values()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check_real_nodes(parser, args)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname).1s %(message)s",
    )
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.sweep:
        return _sweep()
    signals = StopSignals()
    # Interrupt the start once; LocalCluster.start cleans up what it began, and a second
    # signal must not interrupt that cleanup (only the first one raises).
    signals.interrupting = True
    starting = True
    cluster = LocalCluster(
        args.nodes,
        time_scale=args.time_scale,
        registration_lag=args.registration_lag,
        deregistration_lag=args.deregistration_lag,
        lag_jitter=args.lag_jitter,
        kubelet_lag=args.kubelet_lag,
        seed=args.seed,
        stand_in_nodes=args.stand_in_nodes,
    )
    try:
        try:
            cluster.start()
        except ControlPlaneError as exc:  # LocalClusterError too; start() cleaned up
            print(f"ingress-local-cluster: {exc}", file=sys.stderr)
            return 1
        starting = signals.interrupting = False
        print(cluster.kubeconfig, flush=True)
        log.info("nodes: %s; time scale %g; export KUBECONFIG=%s; the ALBs through the ELBv2 "
                 "API: set -a; . %s; set +a. Ctrl-C or SIGTERM stops everything",
                 ", ".join(cluster.node_names), args.time_scale, cluster.kubeconfig,
                 cluster.aws_env)
        signals.wait()
        log.info("stopping (%s)", signals.reason)
    except KeyboardInterrupt:  # a signal while starting
        log.info("interrupted while starting; stopping")
    finally:
        signals.block()  # a second Ctrl-C must not cut the cleanup
        stopped = time.monotonic()
        cluster.stop()  # idempotent: after a failed or interrupted start there is little left
        if not starting:
            log.info("stopped in %.1f s", time.monotonic() - stopped)
    return 0
