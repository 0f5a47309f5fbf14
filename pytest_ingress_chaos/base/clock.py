"""Test seconds and wall seconds: the one owner of the time scale.

Every duration a user writes (a load window, a chaos offset, a request timeout, a preStop sleep)
is in *test seconds*. The simulator can run a story faster than real time: with a time scale of
0.1 one test second lasts 100 ms of wall time. Only this class converts; everything else asks it.
The request rate is not scaled: it stays in requests per wall-clock second, because compressing
it would only multiply the load.

Instants are ``time.monotonic()`` values: one clock for every process on the machine, so the
simulator's events, the load workers' records and the chaos actions line up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .units import Number

# The time scale's range. Below 0.01 the simulator's shortest timing (kube-proxy's 0.1 s behind
# the endpoints) would shrink under the 1 ms round trip between the ALB and a target, which is
# never scaled, and the story's order of events would no longer hold. Above 10 the default
# window takes over three minutes and the 300 s deregistration delay most of an hour: a story
# slowed down that far shows nothing a less slowed one would not.
TIME_SCALE = Number(0.01, 10.0, above_minimum=False)


@dataclass(frozen=True)
class TestClock:
    """Converts between test seconds and wall seconds for one run."""

    __test__ = False  # not a pytest test class, despite its name

    time_scale: float = 1.0

    def wall(self, test_seconds: float) -> float:
        """A duration in test seconds -> wall seconds."""
        return test_seconds * self.time_scale

    def test(self, wall_seconds: float) -> float:
        """A duration in wall seconds -> test seconds."""
        return wall_seconds / self.time_scale

    @staticmethod
    def now() -> float:
        """The current instant (``time.monotonic()``)."""
        return time.monotonic()

    def sleep(self, test_seconds: float) -> None:
        time.sleep(self.wall(test_seconds))
