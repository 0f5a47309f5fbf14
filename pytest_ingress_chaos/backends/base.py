"""The interface every backend implements, seen from the pytest process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..settings import AlbSpec, ServiceSpec
from ..timeline import Timeline


@dataclass(frozen=True)
class PodInfo:
    """One pod of the sample service as the backend sees it now."""

    name: str
    node: str
    address: str  # host:port the pod serves on
    phase: str  # "Running", "Terminating", "Terminated" (deleted, process gone), "Failed"
    ready: bool
    restarts: int = 0


class Service(Protocol):
    """The sample service behind an ingress, provisioned for one test."""

    url: str  # the ingress, e.g. "http://127.0.0.1:41234"
    mode: str  # "ip" or "instance"

    def pods(self) -> list[PodInfo]:
        """Pods the plugin created for this service, terminating ones included."""
        ...

    def delete_pod(self, name: str, *, grace_period: float | None, force: bool) -> None:
        """Start a pod's deletion (returns once the API accepted it, not when it is gone)."""
        ...

    def kill_container(self, name: str, signal: str) -> None:
        """Send ``signal`` to the pod's container process only; the pod restarts it."""
        ...

    def rollout_restart(self, max_surge: int | str, max_unavailable: int | str,
                        wait: bool) -> None:
        """Restart the Deployment's pods as ``kubectl rollout restart`` does."""
        ...

    def scale(self, replicas: int) -> None:
        """Scale the Deployment."""
        ...

    def drain_node(self, node: str, wait: bool) -> None:
        """Cordon ``node``, evict its pods, then terminate it."""
        ...

    def teardown(self) -> None:
        """Remove everything provisioned for this service."""
        ...


class Backend(Protocol):
    """Session-wide access to where services run (the simulator, a real cluster)."""

    name: str

    def provision(self, spec: ServiceSpec, alb: AlbSpec, mode: str, timeline: Timeline,
                  seed: int) -> Service:
        """Deploy the sample service behind an ingress of target type ``mode``, wait until it
        serves, and report what it observes from then on into ``timeline``. ``seed`` makes
        whatever the backend chooses at random (pod names, lags) repeatable."""
        ...

    def describe(self) -> str:
        """One line for the pytest header: what this backend is pointed at."""
        ...

    def close(self) -> None:
        """Stop everything this backend started."""
        ...
