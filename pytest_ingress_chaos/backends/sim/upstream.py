"""The ALB's keep-alive connections to its targets.

After a response the ALB keeps the connection to the target open and reuses it for a later
request, most recently used first (LIFO): under steady load a few hot connections carry the
traffic and the others idle out. An idle connection ends when the first of two timers fires:
the ALB's idle timeout (it then closes the connection itself) or the target's keep-alive
timeout. When the target closes first, the ALB learns of it only when the target's FIN arrives;
a request sent on the connection before then crosses the FIN, the target's kernel answers it
with a reset and the ALB returns 502. That is the keep-alive mismatch AWS documents: keep the
app's keep-alive timeout longer than the ALB's idle timeout.

Only connections to ip targets (pods) are kept. A real ALB keeps its connections to instance
targets too, and kube-proxy's conntrack pins each one to the pod chosen when it was opened
([1184]), so a pod that exits at once on SIGTERM loses the requests in flight on them. By
estimate (20 req/s to the pod, half a millisecond in flight) that is about one kill in a
hundred at the field report's 60 req/s. Through this simulator's processes on a busy machine
a request is in flight several times longer, so modelling the pinning would fail zero-error
instance-mode tests at random, more often than the real thing. In instance mode the ALB here
opens a connection per request, which kube-proxy routes afresh; the README lists this under
what is not modelled.

On loopback a FIN arrives within microseconds, so the pool holds every FIN back from the ALB
for ``target_rtt`` (the ALB <-> target round trip in a VPC): requests sent from one network
delay before the close to one after it are the ones that cross it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from . import http11

Address = tuple[str, int]


class _CloseTimedReader(asyncio.StreamReader):
    """A stream reader that notes when the peer closed the connection (FIN or reset)."""

    closed_at: float | None = None

    def feed_eof(self) -> None:
        self._note_close()
        super().feed_eof()

    def set_exception(self, exc: Exception) -> None:
        self._note_close()
        super().set_exception(exc)

    def _note_close(self) -> None:
        if self.closed_at is None:
            self.closed_at = time.monotonic()


@dataclass(eq=False)
class UpstreamConnection:
    reader: _CloseTimedReader
    writer: asyncio.StreamWriter
    idle_timer: asyncio.TimerHandle | None = None  # the ALB's idle timeout, while pooled

    def stop_idle_timer(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def close(self) -> None:
        self.stop_idle_timer()
        self.writer.close()


class UpstreamPool:
    """Idle keep-alive connections per target address. Times are in wall seconds. Without
    ``reuse`` (instance targets), every connection carries one request."""

    def __init__(self, idle_timeout: float, target_rtt: float, *, reuse: bool) -> None:
        self.idle_timeout = idle_timeout
        self.target_rtt = target_rtt
        self.reuse = reuse
        self._idle: dict[Address, list[UpstreamConnection]] = {}

    async def connect(self, address: Address, timeout: float) -> UpstreamConnection:
        """A new connection; raises ``OSError`` (refused, reset) or ``asyncio.TimeoutError``."""
        loop = asyncio.get_running_loop()
        reader = _CloseTimedReader(limit=http11.MAX_HEAD, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await asyncio.wait_for(
            loop.create_connection(lambda: protocol, *address), timeout)
        return UpstreamConnection(reader, asyncio.StreamWriter(transport, protocol, reader, loop))

    def take(self, address: Address) -> UpstreamConnection | None:
        """The most recently used idle connection the ALB believes open, if any."""
        stack = self._idle.get(address, [])
        while stack:
            connection = stack.pop()
            if not stack:
                del self._idle[address]
            connection.stop_idle_timer()
            closed_at = connection.reader.closed_at
            if closed_at is not None and time.monotonic() - closed_at >= self.target_rtt:
                connection.close()  # the FIN has reached the ALB: not reused
                continue
            return connection
        return None

    def put(self, address: Address, connection: UpstreamConnection) -> None:
        """Keep a connection whose response allowed keep-alive, until the ALB's idle timeout."""
        loop = asyncio.get_running_loop()
        connection.idle_timer = loop.call_later(self.idle_timeout, self._expire, address,
                                                connection)
        self._idle.setdefault(address, []).append(connection)

    def _expire(self, address: Address, connection: UpstreamConnection) -> None:
        stack = self._idle.get(address, [])
        if connection in stack:
            stack.remove(connection)
            if not stack:
                del self._idle[address]
        connection.close()

    def discard(self, address: Address) -> None:
        """Close every idle connection to ``address`` (its target left the target group)."""
        for connection in self._idle.pop(address, []):
            connection.close()

    def close(self) -> None:
        for address in list(self._idle):
            self.discard(address)
