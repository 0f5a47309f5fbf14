"""One test's recorder: request records and events, stamped on one clock.

The load thread appends request records, the chaos scheduler and the backend append events, all
stamped with ``time.monotonic()`` (one clock for every process on the machine, so the
simulator's events line up with the load generator's records). Thread-safe: events arrive from
the chaos thread, the backend's reader thread and the test's thread at once.
"""

from __future__ import annotations

import threading

from ..base.clock import TestClock
from ..base.events import Event
from .load.records import RequestLog


class Timeline:
    """Thread-safe collector for one test's records and events."""

    def __init__(self, clock: TestClock | None = None) -> None:
        self.clock = clock or TestClock()
        self.requests = RequestLog()
        self.load_start: float | None = None
        self.load_end: float | None = None
        self.not_sent = 0
        self._events: list[tuple[float, str, str, str, str]] = []
        self._lock = threading.Lock()

    @property
    def time_scale(self) -> float:
        return self.clock.time_scale

    def record(self, stamp: float, source: str, kind: str, subject: str, message: str) -> None:
        """Add an event that happened at ``stamp`` (``time.monotonic()``): an
        :class:`~..base.events.EventSink`."""
        with self._lock:
            self._events.append((stamp, source, str(kind), subject, message))

    def offset(self, t: float) -> float:
        """Monotonic time -> test seconds from load start."""
        start = self.load_start if self.load_start is not None else 0.0
        return self.clock.test(t - start)

    def events(self) -> list[Event]:
        with self._lock:
            raw = sorted(self._events, key=lambda event: event[0])  # stable: same-time order kept
        return [Event(self.offset(t), *rest) for t, *rest in raw]
