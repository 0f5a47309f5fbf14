"""How the load generator sends one request and learns its outcome.

Two engines with one contract: ``send(due)`` starts the request scheduled at ``due`` and returns
at once; each finished request is reported through the ``record(due, dispatched, sent, end,
outcome, pod)`` callback; ``drain(deadline)`` waits for the requests in flight and returns how
many queued ones were never sent.

Open model, honestly: a request is sent at its due time even when every open connection is
busy, on a new connection, up to a cap (k6's constant-arrival-rate executor grows its pool of
virtual users the same way). ``connections`` is the pool opened before the window; the cap
defaults to what ``rate`` x ``timeout`` requests in flight need, so a stalled ingress shows as
latency and timeouts, and a request waits for a connection only when the cap (or the machine's
file descriptor limit) is reached, which the verdict then blames on the load generator.

- :class:`RawHTTPEngine`, for ``http://``: asyncio protocols writing a prebuilt HTTP/1.1 request
  and parsing the response with httptools (llhttp, the parser of Node.js), with no task or
  future per request. It holds thousands of requests per second on one core.
- :class:`HttpxEngine`, for ``https://``: one httpx task per request. TLS and a full HTTP client,
  at a few hundred requests per second per process (``processes=N`` adds more).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import errno
import math
import resource
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol
from urllib.parse import SplitResult, unquote, urlsplit

import httpcore
import httptools
import httpx

from ...base import outcomes
from ...base.kubia import serving_pod
from .names import NameNotResolved, Resolver

Record = Callable[[float, float, float, float, int, "str | None"], None]
# Every stamp is time.monotonic(), the clock of every timeline and process, at full resolution
# (uvloop's loop.time() is rounded to the millisecond); timers still run on the loop's clock.
now = time.monotonic
_BODY_KEPT = 300  # bytes of a body read for the pod name
# Local resource exhaustion: the machine running the tests failed, not the ingress.
_RUNNER_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL, errno.ENOBUFS,
                            errno.ENOMEM, errno.EADDRINUSE})
_FD_HEADROOM = 256  # descriptors left for everything else the process does
# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH: the certificate
# is valid but was issued to another name (or address).
_NAME_MISMATCH_CODES = frozenset({62, 64})


def host_header(parts: SplitResult) -> str:
    """The ``Host`` of a URL: its authority without the userinfo (RFC 9110 §7.2)."""
    return parts.netloc.rpartition("@")[2]


def basic_auth(parts: SplitResult) -> dict[str, str]:
    """URL userinfo as an ``Authorization: Basic`` header, as curl and httpx send it (RFC 7617);
    empty without userinfo."""
    if parts.username is None:
        return {}
    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode("ascii")}


def classify_error(exc: BaseException) -> int:
    """Map a transport failure to an ``outcomes`` code."""
    if isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException)):
        return outcomes.TIMEOUT
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, (socket.gaierror, NameNotResolved)):
            return outcomes.DNS_FAILURE
        if isinstance(cause, ssl.SSLCertVerificationError):
            return outcomes.TLS_HOSTNAME_MISMATCH if cause.verify_code in \
                _NAME_MISMATCH_CODES else outcomes.TLS_UNTRUSTED
        if isinstance(cause, ssl.SSLError):
            return outcomes.TLS_ERROR
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == \
                errno.ECONNREFUSED:
            return outcomes.CONNECTION_REFUSED
        if isinstance(cause, (ConnectionResetError, BrokenPipeError)):
            return outcomes.CONNECTION_RESET
        if getattr(cause, "errno", None) in _RUNNER_ERRNOS:
            return outcomes.RUNNER_ERROR
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)):
        return outcomes.CONNECTION_RESET  # the peer closed or broke the connection mid-request
    return outcomes.OTHER_ERROR


def connection_cap(rate: float, timeout: float, connections: int, requested: int | None
                   ) -> tuple[int, str]:
    """The most connections one process may open, and why that number.

    Without ``requested``: the pool plus enough for every request of ``timeout`` wall seconds
    to be in flight at once. Either way within the file descriptor limit, which is raised to
    its hard ceiling when need be (a load generator is expected to; wrk's users do it by hand).
    """
    wanted = requested if requested is not None else connections + math.ceil(rate * timeout)
    why = "max_connections" if requested is not None else "rate x timeout"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted + _FD_HEADROOM > soft:
        ceiling = wanted + _FD_HEADROOM if hard == resource.RLIM_INFINITY else \
            min(hard, wanted + _FD_HEADROOM)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if wanted + _FD_HEADROOM > soft:
        return max(1, soft - _FD_HEADROOM), f"the file descriptor limit ({soft})"
    return wanted, why


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """What an ``https://`` target's certificate must chain to: ``ca_bundle``, else httpx's
    default (certifi, or $SSL_CERT_FILE: trust_env), built by httpx's own
    ``create_ssl_context`` as httpx would."""
    verify: ssl.SSLContext | bool = True if ca_bundle is None else \
        ssl.create_default_context(cafile=ca_bundle)
    return httpx.create_ssl_context(verify=verify, trust_env=True)


class Engine(Protocol):
    max_connections: int
    peak_connections: int

    async def open_pool(self) -> None: ...

    def send(self, due: float) -> None: ...

    async def drain(self, deadline: float) -> int: ...

    async def close(self) -> None: ...


def make_engine(url: str, *, connections: int, max_connections: int, timeout: float,
                keepalive: bool, record: Record, headers: Mapping[str, str],
                dns_timeout: float, ca_bundle: str | None = None) -> Engine:
    """``headers``: sent with every request, after the engine's own. ``dns_timeout``: the
    deadline of name resolution, before and apart from the connect timeout. ``ca_bundle``: the
    CAs an ``https://`` target's certificate must chain to, instead of the system's."""
    resolver = Resolver(dns_timeout)
    if url.startswith("http://"):
        return RawHTTPEngine(url, connections=connections, max_connections=max_connections,
                             timeout=timeout, keepalive=keepalive, record=record,
                             headers=headers, resolver=resolver)
    return HttpxEngine(url, connections=connections, max_connections=max_connections,
                       timeout=timeout, keepalive=keepalive, record=record, headers=headers,
                       resolver=resolver, ca_bundle=ca_bundle)


# --- the raw HTTP/1.1 engine ------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time; httptools parses the
    responses (its callbacks are the ``on_*`` methods)."""

    def __init__(self, engine: RawHTTPEngine) -> None:
        self.engine = engine
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.due: float | None = None  # the request in flight, by its scheduled time
        self.dispatched = 0.0
        self.sent = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.body = bytearray()
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        # Set once the transport is gone: asyncio may report the loss before the coroutine
        # that opened the connection resumes (a server that accepts and closes at once).
        self.lost = False

    # request ------------------------------------------------------------------------------

    def start(self, due: float, dispatched: float, sent: float,
              resolved: float | None = None) -> None:
        """``resolved``: when a new connection's name resolved; the timeout counts from then
        (a slow resolver is the runner's, never an ingress timeout)."""
        assert self.transport is not None
        self.due, self.dispatched, self.sent = due, dispatched, sent
        if self.lost:  # closed by the peer before the request could be written
            self._finish(outcomes.CONNECTION_RESET, None)
            return
        self.body.clear()
        self.headers_done = self.complete = False
        self.transport.write(self.engine.request)
        self.timer = self.engine.loop.call_at(max(sent, resolved or sent) + self.engine.timeout,
                                              self._timed_out)

    def _finish(self, outcome: int, pod: str | None) -> None:
        assert self.due is not None
        if self.timer is not None:
            self.timer.cancel()
        self.engine.record(self.due, self.dispatched, self.sent, now(),
                           outcome, pod)
        self.due = None

    def _timed_out(self) -> None:
        self._finish(outcomes.TIMEOUT, None)
        assert self.transport is not None
        self.transport.abort()  # the connection may still deliver a late answer: drop it

    # response: httptools callbacks ------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self.headers_done = True
        # Asked now: once the message is complete llhttp has reset and always says False.
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if len(self.body) < _BODY_KEPT:
            self.body += body[:_BODY_KEPT - len(self.body)]

    def on_message_complete(self) -> None:
        self.complete = True

    # transport ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.engine.connected(+1)

    def data_received(self, data: bytes) -> None:
        if self.due is None:
            return  # bytes after a timed-out request; the connection is being closed
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._finish(outcomes.BAD_RESPONSE, None)
            assert self.transport is not None
            self.transport.abort()
            return
        if self.complete:
            status = self.parser.get_status_code()
            reusable = self.engine.keepalive and self.keep_alive
            self._finish(status, serving_pod(bytes(self.body)))
            self.engine.release(self, reusable=reusable)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.due is not None:
            if self.headers_done and exc is None:
                # A body delimited by the close (no length, not chunked): complete now.
                self._finish(self.parser.get_status_code(), serving_pod(bytes(self.body)))
            else:  # closed or reset before a whole response
                self._finish(outcomes.CONNECTION_RESET if exc is None else classify_error(exc),
                             None)
        self.engine.forget(self)


class RawHTTPEngine:
    """A pool of ``connections`` keep-alive connections, grown up to ``max_connections`` when
    every one is busy; past the cap a request waits for a connection."""

    def __init__(self, url: str, *, connections: int, max_connections: int, timeout: float,
                 keepalive: bool, record: Record, headers: Mapping[str, str],
                 resolver: Resolver) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.resolver = resolver
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        extra = "".join(f"{name}: {value}\r\n"
                        for name, value in {**basic_auth(parts), **headers}.items())
        self.request = (f"GET {target} HTTP/1.1\r\nHost: {host_header(parts)}\r\n"
                        "User-Agent: pytest-ingress-chaos\r\nAccept: */*\r\n"
                        f"{'' if keepalive else 'Connection: close' + chr(13) + chr(10)}"
                        f"{extra}\r\n").encode("latin-1")
        self.pool_size = connections
        self.max_connections = max_connections
        self.peak_connections = 0
        self.timeout = timeout
        self.keepalive = keepalive
        self.record = record
        self.loop = asyncio.get_running_loop()
        self.idle: list[_Connection] = []
        self.open = 0  # connections open or opening: the slots the cap limits
        self.established = 0  # connections open
        self.waiting: deque[tuple[float, float]] = deque()  # (due, dispatched)
        self.busy: set[_Connection] = set()
        self._connecting: set[asyncio.Task[None]] = set()

    async def open_pool(self) -> None:
        """Open the pool before the window, as wrk2 does, so the first requests do not pay
        for connecting. A connection that fails now is simply not pooled: the requests will
        meet the failure themselves."""
        if not self.keepalive:
            return

        async def one() -> None:
            self._opened()
            try:
                connection, _ = await self._open_connection()
            except (OSError, asyncio.TimeoutError, NameNotResolved):
                self.open -= 1
                return
            if not connection.lost:  # else forget() has already freed its slot
                self.idle.append(connection)

        await asyncio.gather(*(one() for _ in range(self.pool_size)))

    def _opened(self) -> None:
        self.open += 1

    def connected(self, change: int) -> None:
        """A connection opened (+1) or closed (-1). Only these count in the peak: a connect
        that fails took a slot, but no connection ever opened."""
        self.established += change
        self.peak_connections = max(self.peak_connections, self.established)

    def send(self, due: float) -> None:
        stamp = now()
        if self.idle:
            connection = self.idle.pop()
            self.busy.add(connection)
            connection.start(due, stamp, stamp)
        elif self.open < self.max_connections:
            self._connect(due, stamp)
        else:
            self.waiting.append((due, stamp))

    def _connect(self, due: float, dispatched: float) -> None:
        self._opened()
        # A request on a new connection is under way from the moment it is decided on: any
        # later delay is connecting (the target's) or the loop's (the generator's), never a
        # wait for a connection.
        task = self.loop.create_task(self._open_and_send(due, dispatched, now()))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _open_connection(self) -> tuple[_Connection, float]:
        """Resolve within the resolver's deadline, then connect within the timeout: a slow
        resolver is a DNS failure, never a connect timeout. Returns the connection and when
        its name resolved."""
        address = await self.resolver.resolve(self.host, self.port)
        resolved = now()
        _, connection = await asyncio.wait_for(
            self.loop.create_connection(lambda: _Connection(self), address, self.port),
            self.timeout)
        return connection, resolved

    async def _open_and_send(self, due: float, dispatched: float, sent: float) -> None:
        try:
            connection, resolved = await self._open_connection()
        except (OSError, asyncio.TimeoutError, NameNotResolved) as exc:
            self.open -= 1
            self.record(due, dispatched, sent, now(), classify_error(exc), None)
            self._next_waiting()
            return
        if connection.lost:  # forget() has already freed its slot
            connection.start(due, dispatched, sent)  # records the reset at once
            return
        self.busy.add(connection)
        connection.start(due, dispatched, sent, resolved)

    def release(self, connection: _Connection, *, reusable: bool) -> None:
        if not reusable:
            assert connection.transport is not None
            connection.transport.close()  # forget() follows in connection_lost
            return
        self.busy.discard(connection)
        if self.waiting:
            self.busy.add(connection)
            due, dispatched = self.waiting.popleft()
            connection.start(due, dispatched, now())
        else:
            self.idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        """The connection closed: free its slot for a waiting request."""
        if connection in self.idle:
            self.idle.remove(connection)
        self.busy.discard(connection)
        self.open -= 1
        self.connected(-1)
        self._next_waiting()

    def _next_waiting(self) -> None:
        if self.waiting and self.open < self.max_connections:
            self._connect(*self.waiting.popleft())

    async def drain(self, deadline: float) -> int:
        while (self.busy or self._connecting or self.waiting) and now() < deadline:
            await asyncio.sleep(0.01)
        not_sent = len(self.waiting)
        self.waiting.clear()
        return not_sent

    async def close(self) -> None:
        for task in list(self._connecting):
            task.cancel()
        await asyncio.gather(*self._connecting, return_exceptions=True)
        for connection in [*self.idle, *self.busy]:
            if connection.due is not None:  # cut off by the shutdown, not by the ingress
                connection._finish(outcomes.ABANDONED, None)
            if connection.transport is not None:
                connection.transport.abort()
        self.resolver.close()
        await asyncio.sleep(0)  # let connection_lost callbacks run before the loop closes


# --- the httpx engine -------------------------------------------------------------------------


class HttpxEngine:
    """One task per request on an ``httpx.AsyncClient`` (TLS, full HTTP client); at most
    ``max_connections`` requests in flight, the rest wait for a slot."""

    def __init__(self, url: str, *, connections: int, max_connections: int, timeout: float,
                 keepalive: bool, record: Record, headers: Mapping[str, str],
                 resolver: Resolver, ca_bundle: str | None) -> None:
        self.url = url  # httpx sends its userinfo as Basic auth, and keeps it out of Host
        self.resolver = resolver
        self.timeout = timeout
        self.record = record
        self.max_connections = max_connections
        self.peak_connections = 0
        self.loop = asyncio.get_running_loop()
        self.slots = asyncio.Semaphore(max_connections)
        self.active = 0
        self.in_flight: set[asyncio.Task[None]] = set()
        self.not_sent = 0
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=connections if keepalive else 0)
        self.client = httpx.AsyncClient(
            transport=_ResolvingTransport(resolver, self.connected, tls=tls_context(ca_bundle),
                                          limits=limits),
            limits=limits,
            timeout=None,
            headers={**({} if keepalive else {"Connection": "close"}), **headers},
        )

        self.established = 0  # connections open

    def connected(self, change: int) -> None:
        """A connection opened (+1) or closed (-1); a connect that fails counts nowhere."""
        self.established += change
        self.peak_connections = max(self.peak_connections, self.established)

    async def open_pool(self) -> None:
        """httpx opens its connections as requests need them."""

    def send(self, due: float) -> None:
        task = self.loop.create_task(self._request(due, now()))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _request(self, due: float, dispatched: float) -> None:
        try:
            await self.slots.acquire()
        except asyncio.CancelledError:
            self.not_sent += 1  # still waiting for a connection when the window closed
            return
        self.active += 1
        try:
            sent = now()
            pod = None
            deadline = _RequestDeadline(self.timeout)
            token = _DEADLINE.set(deadline)  # the request's task sees it, in a copy
            request = self.loop.create_task(self.client.get(self.url))
            _DEADLINE.reset(token)
            deadline.arm(request)
            try:
                response = await request
                outcome = response.status_code
                pod = serving_pod(response.content)
            except (httpx.HTTPError, OSError, NameNotResolved) as exc:
                outcome = classify_error(exc)
            except asyncio.CancelledError:
                if not deadline.expired:  # cut off by the shutdown, not by the ingress
                    self.record(due, dispatched, sent, now(), outcomes.ABANDONED, None)
                    raise
                outcome = outcomes.TIMEOUT
            finally:
                deadline.disarm()
            self.record(due, dispatched, sent, now(), outcome, pod)
        finally:
            self.active -= 1
            self.slots.release()

    async def drain(self, deadline: float) -> int:
        if self.in_flight:
            _, stuck = await asyncio.wait(set(self.in_flight),
                                          timeout=max(0.0, deadline - now()))
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        return self.not_sent

    async def close(self) -> None:
        await self.client.aclose()
        self.resolver.close()


class _RequestDeadline:
    """The timeout of one httpx request, paused while its connection's name resolves (under
    the resolver's own deadline) and counted afresh from the resolved address, as the raw
    engine counts it: a slow resolver is never an ingress timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.expired = False
        self._request: asyncio.Task[httpx.Response] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def arm(self, request: asyncio.Task[httpx.Response]) -> None:
        self._request = request
        self.restart()

    def restart(self) -> None:
        self.disarm()
        self._timer = asyncio.get_running_loop().call_later(self.timeout, self._expire)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self.expired = True
        assert self._request is not None
        self._request.cancel()


_DEADLINE: contextvars.ContextVar[_RequestDeadline | None] = \
    contextvars.ContextVar("ingress_load_request_deadline", default=None)


class _ResolvingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with name resolution of our own, under its deadline, before
    connecting; TLS still verifies (and sends SNI for) the URL's host name."""

    def __init__(self, resolver: Resolver, connected: Callable[[int], None]) -> None:
        self.resolver = resolver
        self.connected = connected
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        deadline = _DEADLINE.get()
        if deadline is not None:
            deadline.disarm()
        address = await self.resolver.resolve(host, port)
        if deadline is not None:
            deadline.restart()
        stream = await self.inner.connect_tcp(address, port, timeout, local_address,
                                              socket_options)
        return _CountedStream(stream, self.connected)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        return await self.inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _ResolvingTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on :class:`_ResolvingBackend`. httpx offers no parameter for the
    network backend, so the connection pool its methods use (``_pool``, as httpx has named it
    since 0.18) is built here with the backend; httpx still maps the pool's exceptions to its
    own."""

    def __init__(self, resolver: Resolver, connected: Callable[[int], None], *,
                 tls: ssl.SSLContext, limits: httpx.Limits
                 ) -> None:  # no super().__init__(): it builds the pool
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_ResolvingBackend(resolver, connected),
        )


class _CountedStream(httpcore.AsyncNetworkStream):
    """A TCP connection httpcore opened, counted open until it closes (``connected``). TLS
    hands the count over to the stream it returns; a failed handshake has closed this one."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, connected: Callable[[int], None],
                 *, counted: bool = False) -> None:
        self.inner = inner
        self.connected = connected
        self.open = True
        if not counted:
            connected(+1)

    def _closed(self) -> None:
        if self.open:
            self.open = False
            self.connected(-1)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self.inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self.inner.write(buffer, timeout)

    async def aclose(self) -> None:
        self._closed()
        await self.inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        try:
            tls = await self.inner.start_tls(ssl_context, server_hostname, timeout)
        except BaseException:
            self._closed()
            raise
        self.open = False  # the TLS stream is the same connection, and counts it from now
        return _CountedStream(tls, self.connected, counted=True)

    def get_extra_info(self, info: str) -> object:
        return self.inner.get_extra_info(info)
