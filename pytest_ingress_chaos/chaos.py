"""Chaos actions and their schedule.

Victims are chosen with a seeded RNG from the pods the plugin itself created, in the order the
backend lists them, so a run replays with the same ``--ingress-seed``. Every action is recorded
on the test's timeline before it is carried out.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence

from .backends.base import Service
from .settings import ChaosSpec, KillPods, RolloutRestart, ScaleDeployment
from .timeline import Timeline
from .units import format_seconds


class ChaosError(RuntimeError):
    """A chaos action could not be carried out (e.g. fewer pods than asked for)."""


class Chaos:
    """Imperative chaos on one provisioned service: what ``ingress_chaos`` exposes."""

    def __init__(self, service: Service, timeline: Timeline, rng: random.Random,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.timeline = timeline
        self.rng = rng
        self._clock = clock

    def _record(self, kind: str, subject: str, message: str) -> None:
        self.timeline.record(self._clock(), "chaos", kind, subject, message)

    def kill_pods(self, count: int = 1, *, grace_period: float | None = None,
                  force: bool = False, signal: str | None = None) -> list[str]:
        """Delete ``count`` running pods, chosen at random (seeded); returns their names.

        With ``signal`` ("SIGTERM", "SIGKILL", ...) the pods are not deleted: their container
        process gets the signal and the kubelet restarts it in the same pod.
        """
        if signal is not None and (force or grace_period is not None):
            raise ChaosError("kill_pods: signal= kills the container only; it does not go "
                             "with force= or grace_period=, which are about deleting the pod")
        running = [pod for pod in self.service.pods() if pod.phase == "Running"]
        if count > len(running):
            raise ChaosError(f"kill_pods count={count}, but only {len(running)} pods are "
                             f"running: {', '.join(pod.name for pod in running) or 'none'}")
        victims = self.rng.sample(running, count)
        for pod in victims:
            if signal is not None:
                self._record("kill_pods", pod.name, f"kill_pods: {signal} to the container of "
                             f"pod {pod.name} on {pod.node} (the pod stays)")
                self.service.kill_container(pod.name, signal)
                continue
            if force:
                how = "force, grace 0s"
            elif grace_period is not None:
                how = f"grace {format_seconds(grace_period)}"
            else:
                how = "the pod's grace period"
            self._record("kill_pods", pod.name,
                         f"kill_pods: deleting pod {pod.name} on {pod.node} ({how})")
            self.service.delete_pod(pod.name, grace_period=grace_period, force=force)
        return [pod.name for pod in victims]

    def rollout_restart(self, *, max_surge: int | str = "25%",
                        max_unavailable: int | str = "25%", wait: bool = False) -> None:
        """``kubectl rollout restart``; with ``wait``, return once every pod is replaced."""
        self._record("rollout_restart", "kubia", f"rollout_restart (maxSurge {max_surge}, "
                     f"maxUnavailable {max_unavailable})")
        self.service.rollout_restart(max_surge, max_unavailable, wait)

    def scale_deployment(self, replicas: int) -> None:
        """``kubectl scale --replicas``."""
        self._record("scale_deployment", "kubia", f"scale_deployment to {replicas} replicas")
        self.service.scale(replicas)

    def drain_node(self, count: int = 1, *, wait: bool = False) -> list[str]:
        """Drain ``count`` nodes that run pods (seeded choice) and terminate them; returns
        their names. With ``wait``, return once they are gone."""
        pods = [pod for pod in self.service.pods() if pod.phase == "Running"]
        nodes = sorted({pod.node for pod in pods})
        if count > len(nodes):
            raise ChaosError(f"drain_node count={count}, but only {len(nodes)} nodes run "
                             f"pods: {', '.join(nodes) or 'none'}")
        victims = self.rng.sample(nodes, count)
        for node in victims:
            self._record("drain_node", node, f"drain_node: draining {node} (cordon, evict "
                         f"{sum(pod.node == node for pod in pods)} pods, terminate)")
            self.service.drain_node(node, wait)
        return victims

    def run(self, action: ChaosSpec) -> None:
        """Carry out a marker's action."""
        if isinstance(action, KillPods):
            self.kill_pods(action.count, grace_period=action.grace_period, force=action.force,
                           signal=action.signal)
        elif isinstance(action, RolloutRestart):
            self.rollout_restart(max_surge=action.max_surge,
                                 max_unavailable=action.max_unavailable)
        elif isinstance(action, ScaleDeployment):
            self.scale_deployment(action.replicas)
        else:
            self.drain_node(action.count)


class ChaosSchedule:
    """Fires marker-scheduled actions at their offsets from load start, in a thread.

    ``at`` offsets are test seconds; ``time_scale`` turns them into wall seconds.
    """

    def __init__(self, chaos: Chaos, actions: Sequence[ChaosSpec], time_scale: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.chaos = chaos
        self.actions = sorted(actions, key=lambda action: action.at)
        self.time_scale = time_scale
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, load_start: float) -> None:
        if not self.actions:
            return
        self._thread = threading.Thread(target=self._fire_all, args=(load_start,),
                                        name="ingress-chaos", daemon=True)
        self._thread.start()

    def _fire_all(self, load_start: float) -> None:
        try:
            for action in self.actions:
                delay = load_start + action.at * self.time_scale - self._clock()
                if self._stop.wait(max(0.0, delay)):
                    return
                self.chaos.run(action)
        except BaseException as exc:  # re-raised in the test by stop()
            self.error = exc

    def stop(self) -> None:
        """Cancel what has not fired yet; re-raise an action's failure."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            if self._thread.is_alive():
                raise ChaosError("the chaos thread did not stop within 60 s")
        if self.error is not None:
            error, self.error = self.error, None
            raise ChaosError(f"a scheduled chaos action failed: {error}") from error
