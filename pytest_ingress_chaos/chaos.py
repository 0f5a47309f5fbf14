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
from .settings import ChaosSpec, KillPods
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

    def kill_pods(self, count: int = 1, *, grace_period: float | None = None,
                  force: bool = False) -> list[str]:
        """Delete ``count`` running pods, chosen at random (seeded); returns their names."""
        running = [pod for pod in self.service.pods() if pod.phase == "Running"]
        if count > len(running):
            raise ChaosError(f"kill_pods count={count}, but only {len(running)} pods are "
                             f"running: {', '.join(pod.name for pod in running) or 'none'}")
        victims = self.rng.sample(running, count)
        if force:
            how = "force, grace 0s"
        elif grace_period is not None:
            how = f"grace {format_seconds(grace_period)}"
        else:
            how = "the pod's grace period"
        for pod in victims:
            self.timeline.record(self._clock(), "chaos", "kill_pods", pod.name,
                                 f"kill_pods: deleting pod {pod.name} on {pod.node} ({how})")
            self.service.delete_pod(pod.name, grace_period=grace_period, force=force)
        return [pod.name for pod in victims]

    def run(self, action: ChaosSpec) -> None:
        """Carry out a marker's action."""
        if isinstance(action, KillPods):
            self.kill_pods(action.count, grace_period=action.grace_period, force=action.force)
        else:  # pragma: no cover - every ChaosSpec type is handled above
            raise TypeError(f"unknown chaos action {action!r}")


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
        self.fired = 0

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
                self.fired += 1
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
