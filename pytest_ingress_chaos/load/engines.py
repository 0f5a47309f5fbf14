"""How the load generator sends one request and learns its outcome.

Two engines with one contract: ``send(due)`` starts the request scheduled at ``due`` (or queues
it when every connection is busy) and returns at once; each finished request is reported
through the ``record(due, sent, end, outcome, pod)`` callback; ``drain(deadline)`` waits for
the requests in flight and returns how many queued ones were never sent.

- :class:`RawHTTPEngine`, for ``http://``: asyncio protocols writing a prebuilt HTTP/1.1 request
  and parsing the response head in place, with no task or future per request. It holds
  thousands of requests per second on one core, which the rate promise needs.
- :class:`HttpxEngine`, for ``https://``: one httpx task per request. TLS and a full HTTP client,
  at a few hundred requests per second per process (``processes=N`` adds more).
"""

from __future__ import annotations

import asyncio
import errno
from collections import deque
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from .. import outcomes

Record = Callable[[float, float, float, int, "str | None"], None]
_POD_PREFIX = b"You've hit "  # the kubia sample app names the pod that served the request


def serving_pod(body: bytes) -> str | None:
    """The pod name in a kubia answer (``You've hit kubia-x2x9k``), else None."""
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


class Engine(Protocol):
    def send(self, due: float) -> None: ...

    async def drain(self, deadline: float) -> int: ...

    async def close(self) -> None: ...


def make_engine(url: str, *, connections: int, timeout: float, keepalive: bool,
                record: Record) -> Engine:
    if url.startswith("http://"):
        return RawHTTPEngine(url, connections=connections, timeout=timeout,
                             keepalive=keepalive, record=record)
    return HttpxEngine(url, connections=connections, timeout=timeout, keepalive=keepalive,
                       record=record)


# --- the raw HTTP/1.1 engine ------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, engine: RawHTTPEngine) -> None:
        self.engine = engine
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due: float | None = None  # the request in flight, by its scheduled time
        self.sent = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.status = 0  # of the response being read; 0 until its head is complete
        self.body_start = 0
        self.length = -1  # Content-Length; -1 while unknown; -2 for chunked; -3 until close
        self.keep_alive = True

    # request ------------------------------------------------------------------------------

    def start(self, due: float, sent: float) -> None:
        assert self.transport is not None
        self.due, self.sent, self.status = due, sent, 0
        self.buffer.clear()
        self.transport.write(self.engine.request)
        self.timer = self.engine.loop.call_at(sent + self.engine.timeout, self._timed_out)

    def _finish(self, outcome: int, pod: str | None) -> None:
        assert self.due is not None
        if self.timer is not None:
            self.timer.cancel()
        self.engine.record(self.due, self.sent, self.engine.loop.time(), outcome, pod)
        self.due = None

    def _timed_out(self) -> None:
        self._finish(outcomes.TIMEOUT, None)
        assert self.transport is not None
        self.transport.abort()  # the connection may still deliver a late answer: drop it

    # response -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.due is None:
            return  # bytes after a timed-out request; the connection is being closed
        self.buffer += data
        if not self.status and not self._parse_head():
            return
        body = self.buffer[self.body_start:]
        if self.length >= 0:
            if len(body) < self.length:
                return
            body = body[:self.length]
        elif self.length == -2:
            if not body.endswith(b"0\r\n\r\n"):
                return
            body = body.split(b"\r\n", 1)[1] if b"\r\n" in body else body
        else:
            return  # read until the server closes: finished in connection_lost
        self._finish(self.status, serving_pod(bytes(body[:300])))
        self.engine.release(self, reusable=self.keep_alive)

    def _parse_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).lower()
        status_line, _, headers = head.partition(b"\r\n")
        try:
            self.status = int(status_line.split(b" ", 2)[1])
        except (IndexError, ValueError):
            self.status = 0
            self._finish(outcomes.OTHER_ERROR, None)
            assert self.transport is not None
            self.transport.abort()
            return False
        self.body_start = end + 4
        self.length = -3
        self.keep_alive = self.engine.keepalive and not status_line.startswith(b"http/1.0")
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name == b"content-length":
                self.length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                self.length = -2
            elif name == b"connection" and b"close" in value:
                self.keep_alive = False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.due is not None:
            if self.status and self.length == -3:  # a body delimited by the close
                body = bytes(self.buffer[self.body_start:self.body_start + 300])
                self._finish(self.status, serving_pod(body))
            else:  # closed or reset before a whole response
                self._finish(outcomes.CONNECTION_RESET if exc is None else classify_error(exc),
                             None)
        self.engine.forget(self)


class RawHTTPEngine:
    """``connections`` keep-alive connections; a request due while all are busy waits for one
    (and is recorded as sent late)."""

    def __init__(self, url: str, *, connections: int, timeout: float, keepalive: bool,
                 record: Record) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.request = (f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                        "User-Agent: pytest-ingress-chaos\r\nAccept: */*\r\n"
                        f"{'' if keepalive else 'Connection: close' + chr(13) + chr(10)}"
                        "\r\n").encode("latin-1")
        self.limit = connections
        self.timeout = timeout
        self.keepalive = keepalive
        self.record = record
        self.loop = asyncio.get_running_loop()
        self.idle: list[_Connection] = []
        self.open = 0  # connections open or opening
        self.waiting: deque[float] = deque()
        self.busy: set[_Connection] = set()
        self._connecting: set[asyncio.Task[None]] = set()

    def send(self, due: float) -> None:
        if self.idle:
            connection = self.idle.pop()
            self.busy.add(connection)
            connection.start(due, self.loop.time())
        elif self.open < self.limit:
            self._connect(due)
        else:
            self.waiting.append(due)

    def _connect(self, due: float) -> None:
        self.open += 1
        task = self.loop.create_task(self._open_and_send(due))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _open_and_send(self, due: float) -> None:
        sent = self.loop.time()  # a request on a new connection is under way once connecting
        try:
            _, connection = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Connection(self), self.host, self.port),
                self.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            self.open -= 1
            self.record(due, sent, self.loop.time(), classify_error(exc), None)
            self._next_waiting()
            return
        self.busy.add(connection)
        connection.start(due, sent)

    def release(self, connection: _Connection, *, reusable: bool) -> None:
        if not reusable:
            assert connection.transport is not None
            connection.transport.close()  # forget() follows in connection_lost
            return
        self.busy.discard(connection)
        if self.waiting:
            self.busy.add(connection)
            connection.start(self.waiting.popleft(), self.loop.time())
        else:
            self.idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        """The connection closed: free its slot for a waiting request."""
        if connection in self.idle:
            self.idle.remove(connection)
        self.busy.discard(connection)
        self.open -= 1
        self._next_waiting()

    def _next_waiting(self) -> None:
        if self.waiting and self.open < self.limit:
            self._connect(self.waiting.popleft())

    async def drain(self, deadline: float) -> int:
        while (self.busy or self._connecting or self.waiting) and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        not_sent = len(self.waiting)
        self.waiting.clear()
        return not_sent

    async def close(self) -> None:
        for task in list(self._connecting):
            task.cancel()
        await asyncio.gather(*self._connecting, return_exceptions=True)
        for connection in [*self.idle, *self.busy]:
            if connection.transport is not None:
                connection.transport.abort()
        await asyncio.sleep(0)  # let connection_lost callbacks run before the loop closes


# --- the httpx engine -------------------------------------------------------------------------


class HttpxEngine:
    """One task per request on an ``httpx.AsyncClient`` (TLS, full HTTP client)."""

    def __init__(self, url: str, *, connections: int, timeout: float, keepalive: bool,
                 record: Record) -> None:
        self.url = url
        self.timeout = timeout
        self.record = record
        self.loop = asyncio.get_running_loop()
        self.slots = asyncio.Semaphore(connections)
        self.in_flight: set[asyncio.Task[None]] = set()
        self.not_sent = 0
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=connections,
                                max_keepalive_connections=connections if keepalive else 0),
            timeout=None, headers={} if keepalive else {"Connection": "close"},
        )

    def send(self, due: float) -> None:
        task = self.loop.create_task(self._request(due))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _request(self, due: float) -> None:
        try:
            await self.slots.acquire()
        except asyncio.CancelledError:
            self.not_sent += 1  # still waiting for a connection when the window closed
            return
        try:
            sent = self.loop.time()
            pod = None
            try:
                response = await asyncio.wait_for(self.client.get(self.url), self.timeout)
                outcome = response.status_code
                pod = serving_pod(response.content)
            except (asyncio.TimeoutError, httpx.HTTPError, OSError) as exc:
                outcome = classify_error(exc)
            self.record(due, sent, self.loop.time(), outcome, pod)
        finally:
            self.slots.release()

    async def drain(self, deadline: float) -> int:
        if self.in_flight:
            _, stuck = await asyncio.wait(set(self.in_flight),
                                          timeout=max(0.0, deadline - self.loop.time()))
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        return self.not_sent

    async def close(self) -> None:
        await self.client.aclose()
