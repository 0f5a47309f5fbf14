"""When each request of an open-model load is due, independent of what came before."""

from __future__ import annotations

import math


class Schedule:
    """When each request is due: ``start + (offset + k * stride) / rate`` for k = 0, 1, ...,
    before ``start + window``. ``offset``/``stride`` give one process its share of a schedule
    spread over ``stride`` processes."""

    def __init__(self, start: float, rate: float, window: float, offset: int = 0,
                 stride: int = 1) -> None:
        self.start = start
        self.interval = 1.0 / rate
        self.offset = offset
        self.stride = stride
        # Request indices are global across processes: i = offset + k * stride < total.
        self.total = max(0, math.ceil(window * rate - 1e-9))
        self._next = offset

    @property
    def next_due(self) -> float | None:
        return self.start + self._next * self.interval if self._next < self.total else None

    def take_due(self, now: float) -> list[float]:
        """Every not-yet-taken request due at or before ``now``, oldest first."""
        due = []
        while self._next < self.total and (when := self.start + self._next * self.interval) \
                <= now:
            due.append(when)
            self._next += self.stride
        return due

    def remaining(self) -> int:
        return max(0, math.ceil((self.total - self._next) / self.stride))
