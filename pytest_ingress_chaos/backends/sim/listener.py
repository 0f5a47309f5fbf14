"""A loopback TCP server whose connection handlers end with it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .cluster import LOOPBACK
from .tasks import cancel_and_wait

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class TrackedServer:
    """``asyncio.start_server`` on 127.0.0.1 that remembers its connection tasks, so closing
    the server also ends every connection still being served (a blackholed one may wait for
    minutes otherwise)."""

    def __init__(self, handler: Handler, limit: int = 2 ** 16) -> None:
        self._handler = handler
        self._limit = limit
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> int:
        """Listen on ``port`` (0: an ephemeral one); returns the bound port."""
        self._server = await asyncio.start_server(self._track, LOOPBACK, port,
                                                  limit=self._limit)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    def stop(self) -> None:
        """Refuse new connections from now on, and end the open ones."""
        if self._server is not None:
            self._server.close()
        for task in self._connections:
            task.cancel()

    async def close(self) -> None:
        self.stop()
        await cancel_and_wait(list(self._connections))

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._handler(reader, writer)
        except asyncio.CancelledError:
            # Ended by stop(). Returning normally keeps Python 3.11's stream protocol from
            # logging the cancellation as an error; the connection is closed below.
            pass
        finally:
            writer.close()  # whatever the handler did; closing twice is harmless
            self._connections.discard(task)
