"""The pytest side of the simulator: starts the simulator process and talks to it.

One simulator process per pytest process (so one per xdist worker). A reader thread takes the
process's stdout apart: replies wake the caller waiting for them, events go to the timeline of
the service they belong to.
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
from typing import IO, Any

from ...settings import AlbSpec, ServiceSpec
from ...timeline import Timeline
from ..base import PodInfo
from .cluster import DeploymentSpec
from .timings import SimTimings

_REPLY_TIMEOUT = 120.0  # provisioning waits for every pod to answer; nothing else is slow
_WAIT_TIMEOUT = 900.0  # a rollout or drain waited for: grace periods, gates, health checks


class SimulatorError(RuntimeError):
    """The simulator refused a request or died; the message carries its stderr tail."""


class SimBackend:
    """The ``sim`` backend: a simulated cluster and ALB on loopback."""

    name = "sim"

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._timelines: dict[str, Timeline] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        # The simulator's stderr goes to a file so a crash can be reported with its last words.
        self._stderr: IO[bytes] = tempfile.TemporaryFile(prefix="ingress-sim-stderr-")  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pytest_ingress_chaos.backends.sim"],
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

    def request(self, op: str, *, reply_timeout: float = _REPLY_TIMEOUT, **args: Any) -> Any:
        request_id = next(self._ids)
        done = threading.Event()
        slot: list[dict[str, Any]] = []
        with self._lock:
            self._pending[request_id] = (done, slot)
        line = json.dumps({"id": request_id, "op": op, "args": args}).encode() + b"\n"
        try:
            with self._write_lock:
                assert self._process.stdin is not None
                self._process.stdin.write(line)
                self._process.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise SimulatorError(f"the simulator is not running{self._stderr_tail()}") from None
        if not done.wait(reply_timeout):
            raise SimulatorError(f"the simulator did not answer {op} within "
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
                timeline = self._timelines.get(message["service"])
                if timeline is not None:
                    timeline.record(message["t"], message["source"], message["kind"],
                                    message["subject"], message["message"])
            else:
                with self._lock:
                    done, slot = self._pending.pop(message["id"], (None, []))
                slot.append(message)
                if done is not None:
                    done.set()
        with self._lock:  # the process is gone: wake everyone still waiting
            for done, _ in self._pending.values():
                done.set()
            self._pending.clear()

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode(errors="replace").strip()
        return f"; simulator stderr:\n{tail}" if tail else ""

    # --- Backend --------------------------------------------------------------------------

    def provision(self, spec: ServiceSpec, alb: AlbSpec, mode: str, timeline: Timeline,
                  seed: int) -> SimService:
        deployment = DeploymentSpec(**{f.name: getattr(spec, f.name)
                                       for f in dataclasses.fields(DeploymentSpec)})
        timings = SimTimings(
            time_scale=self.time_scale,
            registration_lag=alb.registration_lag,
            deregistration_lag=alb.deregistration_lag,
            lag_jitter=alb.lag_jitter,
            deregistration_delay=alb.deregistration_delay,
            health_check_interval=alb.healthcheck_interval,
            health_check_timeout=alb.healthcheck_timeout,
            healthy_threshold=alb.healthy_threshold,
            unhealthy_threshold=alb.unhealthy_threshold,
            idle_timeout=alb.idle_timeout,
        )
        service_id = f"s{next(self._ids)}"
        self._timelines[service_id] = timeline  # before the first event can arrive
        try:
            result = self.request("create_service", service_id=service_id, mode=mode,
                                  deployment=dataclasses.asdict(deployment),
                                  timings=timings.to_json(), seed=seed,
                                  algorithm=alb.algorithm)
        except BaseException:
            self._timelines.pop(service_id, None)
            raise
        return SimService(self, service_id, result["url"], mode)

    def forget(self, service_id: str) -> None:
        self._timelines.pop(service_id, None)

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
        self.mode = mode

    def pods(self) -> list[PodInfo]:
        return [PodInfo(**pod) for pod in self._backend.request("list_pods",
                                                                service=self.service_id)]

    def delete_pod(self, name: str, *, grace_period: float | None, force: bool) -> None:
        self._backend.request("delete_pod", service=self.service_id, name=name,
                              grace_period=grace_period, force=force)

    def kill_container(self, name: str, signal: str) -> None:
        self._backend.request("kill_container", service=self.service_id, name=name,
                              signal_name=signal)

    def rollout_restart(self, max_surge: int | str, max_unavailable: int | str,
                        wait: bool) -> None:
        self._backend.request("rollout_restart", service=self.service_id, max_surge=max_surge,
                              max_unavailable=max_unavailable, wait=wait,
                              reply_timeout=_WAIT_TIMEOUT)

    def scale(self, replicas: int) -> None:
        self._backend.request("scale", service=self.service_id, replicas=replicas)

    def drain_node(self, node: str, wait: bool) -> None:
        self._backend.request("drain_node", service=self.service_id, node=node, wait=wait,
                              reply_timeout=_WAIT_TIMEOUT)

    def teardown(self) -> None:
        try:
            self._backend.request("delete_service", service=self.service_id)
        finally:
            self._backend.forget(self.service_id)
