"""Constant-rate HTTP load from a background thread, like wrk2 -R.

Open model: request *i* is due at ``start + i / rate`` whatever happened to the requests before
it, so a slow or dead ingress cannot slow the load down and hide its own errors (coordinated
omission). Latency is measured from that scheduled time, as wrk2 does. At most ``connections``
requests are in flight; one that has to wait for a free connection is sent late, and the lag is
recorded, so the verdict can say when the generator itself could not keep up.

The thread runs an asyncio loop; a timer fires every request when it is due and hands it to an
engine (``engines.py``). The thread never outlives its owner: ``stop()`` sets a flag the loop
checks at least every 50 ms and joins with a deadline, and an exception raised in the thread is
re-raised by ``wait()``/``stop()`` in the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ...base.errors import LoadGeneratorError
from ...base.specs import LoadSpec
from .engines import connection_cap, make_engine, now
from .records import LATE_SEND_THRESHOLD
from .schedule import Schedule
from .workers import LoadWorkers

if TYPE_CHECKING:
    from ..timeline import Timeline

_POLL = 0.05  # longest the schedule waits before it looks at the stop flag again
_POOL_BUDGET = 0.5  # wall seconds the pool may take to open before the window starts anyway
_WORKER_LEAD = 1.0  # wall seconds between starting worker processes and the common start
_DIGEST = 64  # records a tick puts into the histograms: a burst is spread over later ticks
_STOP_GRACE = 5.0  # seconds a stopping thread gets on top of the request timeout


class LoadGenerator:
    """Sends ``spec.rate`` requests per second to ``url`` for ``spec.duration`` seconds.

    The timeline's clock turns the window and the request timeout (test seconds) into wall
    seconds, for simulated stories; the rate stays in requests per wall-clock second.
    """

    def __init__(
        self,
        url: str,
        spec: LoadSpec,
        timeline: Timeline,
        *,
        on_start: Callable[[float], None] | None = None,
        share: tuple[int, int] = (0, 1),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """``headers``: sent with every request besides the generator's own (the service's
        route through a shared load balancer)."""
        self.url = url
        self.headers = dict(headers or {})
        self.spec = spec
        self.timeline = timeline
        self.window = timeline.clock.wall(spec.duration)
        self.timeout = timeline.clock.wall(spec.timeout)
        self._on_start = on_start
        self._share = share  # (this process's offset, number of processes)
        self._start_at: float | None = None
        self._workers: LoadWorkers | None = None
        self._stop = threading.Event()
        self._done = threading.Event()  # set by the load thread as it ends
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle, called from the test's thread ---------------------------------------

    def start(self, at: float | None = None) -> None:
        """Start the load thread; returns once the first request is due.

        ``at`` (a ``time.monotonic()`` instant) sets the schedule's start, for processes
        that share one schedule. With ``spec.processes`` > 1, the other processes are
        started first and all begin together.
        """
        if self._thread is not None:
            raise LoadGeneratorError("the load window was already started")
        if self.spec.processes > 1:
            self._workers = LoadWorkers(self.url, self.spec, self.timeline.clock,
                                        self.headers)
            self._share = (0, self.spec.processes)
            # Every worker is ready and waiting for this, with time to open its pool.
            at = time.monotonic() + _WORKER_LEAD
            self._workers.start(at)
        self._start_at = at
        self._thread = threading.Thread(target=self._thread_main, name="ingress-load",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            self.stop()
            raise LoadGeneratorError("the load thread did not start within 30 s")
        self._raise_thread_error()

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def remaining(self) -> float:
        """Wall seconds left in the window (0 when it is over or not started)."""
        start = self.timeline.load_start
        if start is None:
            return 0.0
        return max(0.0, start + self.window - time.monotonic())

    def wait(self) -> None:
        """Block until the window is over and every request has finished."""
        assert self._thread is not None, "wait() before start()"
        try:
            self._join(self.remaining() + self.timeout + _STOP_GRACE)
        finally:
            self._collect_workers()

    def stop(self) -> None:
        """End the window now (requests in flight still get their timeout)."""
        self._stop.set()
        if self._workers is not None:
            self._workers.stop()
        try:
            if self._thread is not None:
                self._join(self.timeout + _STOP_GRACE)
        finally:
            self._collect_workers()

    def _collect_workers(self) -> None:
        """Merge the other processes' records into this timeline."""
        workers, self._workers = self._workers, None
        if workers is not None:
            for result in workers.collect(self.timeout + _STOP_GRACE):
                self.timeline.requests.merge(result["log"])
                self.timeline.not_sent += result["not_sent"]

    def _join(self, deadline: float) -> None:
        # The thread's own "done" event, not Thread.join(): a join that Ctrl-C interrupts
        # marks the thread stopped while it still runs (CPython 3.11's _wait_for_tstate_lock
        # releases, on any exception, the lock the live thread holds), and every later join
        # returns at once: stop() would not wait for the window's end and its figures.
        assert self._thread is not None
        if not self._done.wait(timeout=deadline):
            self._stop.set()
            if not self._done.wait(timeout=self.timeout + _STOP_GRACE):
                raise LoadGeneratorError(
                    f"the load thread did not stop within {deadline:.1f} s of its deadline")
        self._thread.join()  # past its last line: at once
        self._raise_thread_error()

    def _raise_thread_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise LoadGeneratorError(f"the load thread failed: {error!r}") from error

    # --- the load thread -------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            # asyncio's own loop, not uvloop: uvloop rounds timer delays under 0.5 ms to zero,
            # so from about 2,000 requests/s the timer chain busy-waits a whole core
            # (benchmarks/README.md, "Before and after the honest open model").
            asyncio.run(self._run())
        except BaseException as exc:  # re-raised in the test by wait()/stop()
            self._error = exc
        finally:
            self._ready.set()
            self._done.set()

    async def _run(self) -> None:
        spec = self.spec
        log = self.timeline.requests
        stride = self._share[1]
        cap, log.cap_reason = connection_cap(
            spec.rate / stride, self.timeout, spec.connections,
            None if spec.max_connections is None else -(-spec.max_connections // stride))
        engine = make_engine(self.url, connections=min(spec.connections, cap),
                             max_connections=cap, timeout=self.timeout,
                             keepalive=spec.keepalive, record=log.add,
                             headers=self.headers, ca_bundle=spec.ca_bundle,
                             dns_timeout=self.timeline.clock.wall(spec.dns_timeout))
        try:
            # Best effort within a budget: a pool that cannot open in time (a dead ingress)
            # must not delay the window; its requests meet the failure themselves.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(engine.open_pool(), _POOL_BUDGET)
            start = self._start_at if self._start_at is not None else now()
            schedule = Schedule(start, spec.rate, self.window, *self._share)
            self.timeline.load_start = start
            if self._on_start is not None:
                self._on_start(start)
            self._ready.set()
            await self._fire_when_due(schedule, engine.send)
            # The window is the whole schedule, even though its last request is due 1/rate
            # before the end; a stop cuts it short.
            self.timeline.load_end = now() if self._stop.is_set() else start + self.window
            self.timeline.not_sent += await engine.drain(now() + self.timeout + 1.0)
        finally:
            await engine.close()
            log.max_connections = engine.max_connections
            log.peak_connections = engine.peak_connections

    async def _fire_when_due(self, schedule: Schedule, send: Callable[[float], None]) -> None:
        """A timer chain, not a task per request: each tick sends what is due and re-arms for
        the next due time, at least every ``_POLL`` seconds. A tick that runs late tells that
        the loop could not run (CPU, the GIL, a blocking call): a stall of the generator
        itself, recorded so the verdict blames no one for what happened in it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        log = self.timeline.requests
        armed_for = now()

        def tick() -> None:
            nonlocal armed_for
            this = now()
            if this - armed_for > LATE_SEND_THRESHOLD:
                log.stalled(armed_for, this)
            if self._stop.is_set():
                done.set_result(None)
                return
            for due in schedule.take_due(this):
                send(due)
            log.digest(_DIGEST)
            upcoming = schedule.next_due
            if upcoming is None:
                done.set_result(None)
            else:
                armed_for = max(this, min(upcoming, this + _POLL))
                loop.call_later(armed_for - this, tick)

        tick()
        await done
