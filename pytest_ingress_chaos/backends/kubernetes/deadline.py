"""Deadlines that a teardown can end early.

Every wait of the backend polls under a :class:`Deadline`: it sleeps on the service's cancel
event instead of ``time.sleep``, so ``teardown()`` (which sets the event) ends a rollout or drain
wait in progress at once, as the contract asks, and each request inside the wait gets a timeout
that does not outlive the deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ...base.errors import BackendError, BackendTimeout
from .apis import ApiError

T = TypeVar("T")

_MIN_REQUEST = 0.5  # a request may run this long even right at the deadline: a last look


class Cancelled(BackendError):
    """A wait ended because its service is being torn down."""


class Deadline:
    """``seconds`` from now, for ``what`` (used in messages); ends early when ``cancel`` is
    set."""

    def __init__(self, seconds: float, what: str, cancel: threading.Event | None = None
                 ) -> None:
        self.seconds = max(0.0, seconds)
        self.what = what
        self.started = time.monotonic()
        self.end = self.started + self.seconds
        self.cancel = cancel if cancel is not None else threading.Event()

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def check(self) -> None:
        """Raise :class:`Cancelled` once a teardown began."""
        if self.cancel.is_set():
            raise Cancelled(f"{self.what}: cancelled after {self.elapsed():.1f} s, the service "
                            "is being torn down")

    def request_timeout(self, cap: float) -> float:
        """A timeout for one request inside the wait: what is left, within [0.5 s, cap]."""
        return min(cap, max(_MIN_REQUEST, self.left()))

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` or until the deadline, whichever is first; raise Cancelled when a
        teardown begins meanwhile."""
        self.cancel.wait(min(seconds, self.left()))
        self.check()

    def poll(self, probe: Callable[[], T | None], timed_out: Callable[[], str],
             interval: float = 0.1, max_interval: float = 1.0) -> T:
        """``probe()`` until it returns something other than None; past the deadline, raise
        :class:`BackendTimeout` with ``timed_out()`` (called then, to say what was seen).
        The interval grows (x1.5) up to ``max_interval``: quick on a local cluster, gentle on
        a real one during a minutes-long wait."""
        last_error: ApiError | None = None
        while True:
            self.check()
            try:
                value = probe()
            except ApiError as exc:
                # A wait may last minutes: a dropped connection or an overloaded API server
                # (5xx, 429) is retried until the deadline; anything else is an answer.
                if not exc.transient:
                    raise
                value, last_error = None, exc
            if value is not None:
                return value
            if self.expired:
                seen = f" Last API error: {last_error}." if last_error is not None else ""
                raise BackendTimeout(f"{self.what}: not done within {self.seconds:g} s.{seen} "
                                     f"{timed_out()}") from last_error
            self.sleep(interval)
            interval = min(max_interval, interval * 1.5)
