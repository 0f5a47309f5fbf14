"""Constant-rate HTTP load from a background thread, like wrk2 -R.

Open model: request *i* is due at ``start + i / rate`` whatever happened to the requests before
it, so a slow or dead ingress cannot slow the load down and hide its own errors (coordinated
omission). Latency is measured from that scheduled time, as wrk2 does. At most ``connections``
requests are in flight; one that has to wait for a free connection is sent late, and the lag is
recorded, so the verdict can say when the generator itself could not keep up.

The thread runs an asyncio loop with one ``httpx.AsyncClient``. It never outlives its owner:
``stop()`` sets a flag the loop checks at least every 50 ms and joins with a deadline, and an
exception raised in the thread is re-raised by ``wait()``/``stop()`` in the caller.
"""

from __future__ import annotations

import asyncio
import errno
import threading
import time
from collections.abc import Callable

import httpx

from . import outcomes
from .settings import LoadSpec
from .timeline import Timeline

_POLL = 0.05  # longest the schedule sleeps before it looks at the stop flag again
_STOP_GRACE = 5.0  # seconds a stopping thread gets on top of the request timeout
_POD_PREFIX = b"You've hit "  # the kubia sample app names the pod that served the request


class LoadGeneratorError(RuntimeError):
    """The load thread failed or would not stop; the original exception is chained."""


def _serving_pod(body: bytes) -> str | None:
    if body.startswith(_POD_PREFIX):
        name = body[len(_POD_PREFIX):len(_POD_PREFIX) + 253].split(None, 1)
        return name[0].decode("ascii", "replace") if name else None
    return None


def classify_error(exc: BaseException) -> int:
    """Map a transport failure to an ``outcomes`` code."""
    if isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException)):
        return outcomes.TIMEOUT
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == \
                errno.ECONNREFUSED:
            return outcomes.CONNECTION_REFUSED
        if isinstance(cause, (ConnectionResetError, BrokenPipeError)):
            return outcomes.CONNECTION_RESET
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)):
        return outcomes.CONNECTION_RESET  # the peer closed or broke the connection mid-request
    return outcomes.OTHER_ERROR


class LoadGenerator:
    """Sends ``spec.rate`` requests per second to ``url`` for ``spec.duration`` seconds.

    ``time_scale`` compresses the window and the request timeout (test seconds -> wall
    seconds) for simulated stories; the rate stays in requests per wall-clock second.
    """

    def __init__(
        self,
        url: str,
        spec: LoadSpec,
        timeline: Timeline,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_start: Callable[[float], None] | None = None,
    ) -> None:
        self.url = url
        self.spec = spec
        self.timeline = timeline
        self.window = spec.duration * time_scale
        self.timeout = spec.timeout * time_scale
        self._clock = clock
        self._on_start = on_start
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle, called from the test's thread ---------------------------------------

    def start(self) -> None:
        """Start the load thread; returns once the first request is due."""
        if self._thread is not None:
            raise LoadGeneratorError("the load window was already started")
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
        return self._thread is not None and not self._thread.is_alive()

    def remaining(self) -> float:
        """Wall seconds left in the window (0 when it is over or not started)."""
        start = self.timeline.load_start
        if start is None:
            return 0.0
        return max(0.0, start + self.window - self._clock())

    def wait(self) -> None:
        """Block until the window is over and every request has finished."""
        assert self._thread is not None, "wait() before start()"
        self._join(self.remaining() + self.timeout + _STOP_GRACE)

    def stop(self) -> None:
        """End the window now (requests in flight still get their timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._join(self.timeout + _STOP_GRACE)

    def _join(self, deadline: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout=deadline)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=self.timeout + _STOP_GRACE)
            if self._thread.is_alive():
                raise LoadGeneratorError(
                    f"the load thread did not stop within {deadline:.1f} s of its deadline")
        self._raise_thread_error()

    def _raise_thread_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise LoadGeneratorError(f"the load thread failed: {error!r}") from error

    # --- the load thread -------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._schedule())
        except BaseException as exc:  # re-raised in the test by wait()/stop()
            self._error = exc
        finally:
            self._ready.set()

    async def _schedule(self) -> None:
        spec = self.spec
        limits = httpx.Limits(
            max_connections=spec.connections,
            max_keepalive_connections=spec.connections if spec.keepalive else 0,
        )
        headers = {} if spec.keepalive else {"Connection": "close"}
        async with httpx.AsyncClient(limits=limits, timeout=None, headers=headers) as client:
            slots = asyncio.Semaphore(spec.connections)
            in_flight: set[asyncio.Task[None]] = set()
            start = self._clock()
            end = start + self.window
            self.timeline.load_start = start
            if self._on_start is not None:
                self._on_start(start)
            self._ready.set()
            interval = 1.0 / spec.rate
            i = 0
            while not self._stop.is_set():
                due = start + i * interval
                if due >= end:
                    break
                delay = due - self._clock()
                if delay > 0:
                    await asyncio.sleep(min(delay, _POLL))
                    continue
                task = asyncio.create_task(self._request(client, slots, due))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                i += 1
            self.timeline.load_end = min(end, self._clock())
            if in_flight:
                _, stuck = await asyncio.wait(set(in_flight), timeout=self.timeout + 1.0)
                for task in stuck:
                    task.cancel()
                await asyncio.gather(*stuck, return_exceptions=True)

    async def _request(self, client: httpx.AsyncClient, slots: asyncio.Semaphore,
                       due: float) -> None:
        try:
            await slots.acquire()
        except asyncio.CancelledError:
            self.timeline.not_sent += 1  # still waiting for a connection when the window closed
            return
        try:
            sent = self._clock()
            pod = None
            try:
                response = await asyncio.wait_for(client.get(self.url), self.timeout)
                outcome = response.status_code
                pod = _serving_pod(response.content)
            except (asyncio.TimeoutError, httpx.HTTPError, OSError) as exc:
                outcome = classify_error(exc)
            self.timeline.requests.add(due, sent, self._clock(), outcome, pod)
        finally:
            slots.release()
