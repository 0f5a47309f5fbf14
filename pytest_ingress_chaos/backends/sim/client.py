"""The pytest side of the simulator: starts the simulator process and talks to it.

One simulator process per pytest process (so one per xdist worker). A reader thread takes the
process's stdout apart: replies wake the caller waiting for them, events go to the event sink of
the service they belong to. Every request has a deadline; tearing a service down ends the
requests still waiting on it.

Nothing the backend starts outlives the pytest process, however it ends (normal end, Ctrl-C,
SIGTERM, SIGKILL, a dead xdist worker: tests/test_lifecycle.py). Each child watches a pipe from
its parent and ends when it reads end-of-file, which the kernel delivers when the parent dies,
even by SIGKILL, whether or not any teardown ran: the simulator its stdin from pytest (and then
stops its pods), each pod its stdin from the simulator (``--exit-on-stdin-eof``), each load
worker (``load/workers.py``) its stdin from pytest. A grandchild thus goes with its parent in
turn, and this holds on macOS as well as Linux. Linux's ``PR_SET_PDEATHSIG`` is not used: it
exists on Linux only, fires when the *thread* that started the child ends rather than the
process, and reaches a grandchild only if every level sets it. The limit of pipes: end-of-file
comes once every copy of the write end is closed, so a process that forks without exec while
the backend runs (``os.fork()``, multiprocessing's "fork" start method) keeps the simulator
alive until that process exits too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import IO, Any

from ...base.backend import Capability, PodInfo, ProvisionRequest, ServiceIdentity
from ...base.clock import TestClock
from ...base.errors import BackendError, BackendTimeout, SimulatorError
from ...base.events import EventSink
from .. import BackendConfig
from .cluster import DeploymentSpec
from .spec import SimSpec
from .timings import SimTimings

_REPLY_TIMEOUT = 30.0  # what a request that does not wait for the cluster may take


class SimBackend:
    """The ``sim`` backend: a simulated cluster and ALB on loopback."""

    name = "sim"
    capabilities = frozenset(Capability)

    def __init__(self, config: BackendConfig | None = None, *, time_scale: float | None = None
                 ) -> None:
        self.time_scale = time_scale if time_scale is not None else (
            config.clock.time_scale if config is not None else 1.0)
        self._ids = itertools.count(1)
        # request id -> (done, reply slot, the service it waits on)
        self._pending: dict[int, tuple[threading.Event, list[dict[str, Any]], str | None]] = {}
        self._sinks: dict[str, EventSink] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        # The simulator's stderr goes to a file so a crash can be reported with its last words.
        self._stderr: IO[bytes] = tempfile.TemporaryFile(prefix="ingress-sim-stderr-")  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pytest_ingress_chaos.backends.sim.server"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            # Its own session: Ctrl-C in the terminal reaches pytest only, which then tears
            # services down in order. If pytest dies, stdin closes and the simulator exits.
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(target=self._read, name="ingress-sim-reader",
                                        daemon=True)
        self._reader.start()

    def describe(self) -> str:
        return f"sim (embedded simulator, pid {self._process.pid}, time scale {self.time_scale:g})"

    # --- requests ---------------------------------------------------------------------------

    def request(self, op: str, *, reply_timeout: float = _REPLY_TIMEOUT,
                service: str | None = None, **args: Any) -> Any:
        request_id = next(self._ids)
        done = threading.Event()
        slot: list[dict[str, Any]] = []
        with self._lock:
            self._pending[request_id] = (done, slot, service)
        if service is not None:
            args["service"] = service
        line = json.dumps({"id": request_id, "op": op, "args": args}).encode() + b"\n"
        try:
            with self._write_lock:
                assert self._process.stdin is not None
                self._process.stdin.write(line)
                self._process.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise SimulatorError(f"the simulator is not running{self._stderr_tail()}") from None
        if not done.wait(reply_timeout):
            with self._lock:
                self._pending.pop(request_id, None)
            raise BackendTimeout(f"the simulator did not finish {op} within "
                                 f"{reply_timeout:g} s{self._stderr_tail()}")
        if not slot:
            raise SimulatorError(f"the simulator exited during {op}{self._stderr_tail()}")
        reply = slot[0]
        if not reply["ok"]:
            raise SimulatorError(f"{op} failed in the simulator: {reply['error']}")
        return reply["result"]

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            message = json.loads(line)
            if message["type"] == "event":
                sink = self._sinks.get(message["service"])
                if sink is not None:
                    sink(stamp=message["t"], source=message["source"], kind=message["kind"],
                         subject=message["subject"], message=message["message"])
            else:
                with self._lock:
                    done, slot, _ = self._pending.pop(message["id"], (None, [], None))
                slot.append(message)
                if done is not None:
                    done.set()
        with self._lock:  # the process is gone: wake everyone still waiting
            for done, _, _ in self._pending.values():
                done.set()
            self._pending.clear()

    def cancel_waits(self, service_id: str) -> None:
        """End every request still waiting on ``service_id`` (its service is being torn down)."""
        with self._lock:
            for request_id, (done, slot, service) in list(self._pending.items()):
                if service == service_id:
                    slot.append({"ok": False, "error": f"cancelled: service {service_id} is "
                                                      "being torn down"})
                    del self._pending[request_id]
                    done.set()

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            tail = self._stderr.read()[-2000:].decode(errors="replace").strip()
        except ValueError:  # close() closed the file: a request after (or racing) close()
            return "; the backend is closed"
        return f"; simulator stderr:\n{tail}" if tail else ""

    # --- Backend --------------------------------------------------------------------------

    def provision(self, request: ProvisionRequest, *, port: int = 0) -> SimService:
        """The :class:`~..base.Backend` contract; ``port`` (not part of it) is the ALB's port on
        127.0.0.1, 0 for an ephemeral one: ``ingress-sim --port``."""
        sim = request.extras.get("sim")
        sim = sim if isinstance(sim, SimSpec) else SimSpec()
        spec, alb = request.service, request.alb
        deployment = DeploymentSpec(
            nodes=sim.nodes, **{f.name: getattr(spec, f.name)
                                for f in dataclasses.fields(DeploymentSpec) if f.name != "nodes"})
        timings = SimTimings(
            clock=TestClock(self.time_scale),
            registration_lag=sim.registration_lag,
            deregistration_lag=sim.deregistration_lag,
            lag_jitter=sim.lag_jitter,
            deregistration_delay=alb.deregistration_delay,
            health_check_interval=alb.healthcheck_interval,
            health_check_timeout=alb.healthcheck_timeout,
            healthy_threshold=alb.healthy_threshold,
            unhealthy_threshold=alb.unhealthy_threshold,
            idle_timeout=alb.idle_timeout,
        )
        service_id = f"s{next(self._ids)}"
        self._sinks[service_id] = request.events  # before the first event can arrive
        try:
            result = self.request("create_service", service_id=service_id, mode=request.mode,
                                  deployment=dataclasses.asdict(deployment),
                                  timings=timings.to_json(), seed=request.seed,
                                  algorithm=alb.algorithm, port=port,
                                  controller_version=sim.controller_version,
                                  reply_timeout=request.timeout)
        except BaseException:
            self._sinks.pop(service_id, None)
            raise
        return SimService(self, service_id, result["url"], request.mode)

    def forget(self, service_id: str) -> None:
        self.cancel_waits(service_id)
        self._sinks.pop(service_id, None)

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(SimulatorError):
                self.request("shutdown")
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        self._reader.join(timeout=5)
        self._stderr.close()


class SimService:
    """A service provisioned in the simulator."""

    def __init__(self, backend: SimBackend, service_id: str, url: str, mode: str) -> None:
        self._backend = backend
        self.service_id = service_id
        self.url = url
        self.request_headers: Mapping[str, str] = MappingProxyType({})  # one ALB per service
        self.mode = mode
        self.identity = ServiceIdentity(namespace=f"sim-{service_id}", deployment="kubia",
                                        service="kubia", ingress="kubia",
                                        selector={"app": "kubia"})
        self._torn_down = False

    def _request(self, op: str, **args: Any) -> Any:
        return self._backend.request(op, service=self.service_id, **args)

    def pods(self) -> list[PodInfo]:
        return [PodInfo(**pod) for pod in self._request("list_pods")]

    def delete_pod(self, name: str, *, grace_period: float | None, force: bool) -> None:
        self._request("delete_pod", name=name, grace_period=grace_period, force=force)

    def kill_container(self, name: str, signal: str) -> None:
        self._request("kill_container", name=name, signal_name=signal)

    def _wait(self, op: str, timeout: float, **args: Any) -> None:
        """A request that waits on the cluster; past its deadline, the error says what the
        cluster looked like then (the contract's "BackendTimeout saying what it saw")."""
        try:
            self._request(op, reply_timeout=timeout, **args)
        except BackendTimeout as exc:
            try:
                pods = [PodInfo(**pod) for pod in self._request("list_pods", reply_timeout=5.0)]
                seen = "; ".join(f"{pod.name} on {pod.node}: {pod.phase}"
                                 f"{', Ready' if pod.ready else ', not Ready'}"
                                 f"{', terminating' if pod.terminating else ''}"
                                 for pod in pods) or "none"
            except BackendError as listing:
                seen = f"unknown ({listing})"
            raise BackendTimeout(f"{exc}; pods then: {seen}") from exc

    def rollout_restart(self, max_surge: int | str, max_unavailable: int | str, *,
                        wait: bool, timeout: float) -> None:
        self._wait("rollout_restart", timeout, max_surge=max_surge,
                   max_unavailable=max_unavailable, wait=wait)

    def scale(self, replicas: int) -> None:
        self._request("scale", replicas=replicas)

    def drain_node(self, node: str, *, wait: bool, timeout: float) -> None:
        self._wait("drain_node", timeout, node=node, wait=wait)

    def exclude_from_load_balancers(self, node: str) -> None:
        self._request("exclude_node", node=node)

    def teardown(self) -> None:
        if self._torn_down:
            return
        self._torn_down = True
        self._backend.cancel_waits(self.service_id)
        try:
            self._request("delete_service")
        finally:
            self._backend.forget(self.service_id)
