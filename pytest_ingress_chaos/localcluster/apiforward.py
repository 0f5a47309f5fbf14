"""The kube-apiserver as each node namespace sees it: ``127.0.0.1:PORT`` inside, forwarded.

The apiserver listens on the machine's loopback only, and a node's kubelet and kube-proxy run
inside the node's network namespace, whose loopback is its own. Rather than open the apiserver
on an address outside loopback, each node namespace gets a listening socket on *its* loopback,
at the apiserver's port, and every connection to it is relayed to the machine's
``127.0.0.1:PORT`` (bytes only: TLS runs end to end, and the apiserver's certificate, made for
127.0.0.1, stays valid). So the control plane's kubeconfig serves the nodes as it is.

The sockets are made inside the namespaces by a short-lived thread that enters each one
(``netns.in_netns``); they are served by one asyncio loop on a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Sequence

from .netns import in_netns

__all__ = ["ApiForwarder"]

_LOOPBACK = "127.0.0.1"
_CHUNK = 65536


def _listener_in(netns: str, port: int) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((_LOOPBACK, port))
        sock.listen(128)
        sock.setblocking(False)
        return sock

    result: list[socket.socket] = []
    errors: list[BaseException] = []

    def enter() -> None:
        try:
            result.append(in_netns(netns, make))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=enter, name=f"listen in {netns}")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


class ApiForwarder:
    """Relays ``127.0.0.1:port`` inside each of ``netns_names`` to the machine's."""

    def __init__(self, netns_names: Sequence[str], port: int) -> None:
        self.port = port
        self._sockets = [_listener_in(name, port) for name in netns_names]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="apiserver forwarder", daemon=True)
        self._servers: list[asyncio.base_events.Server] = []

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)

    async def _serve(self) -> None:
        for sock in self._sockets:
            self._servers.append(await asyncio.start_server(self._relay, sock=sock))

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(_LOOPBACK, self.port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def stop(self) -> None:
        if self._thread.is_alive():
            async def close() -> None:
                for server in self._servers:
                    server.close()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        for sock in self._sockets:
            sock.close()
        if not self._thread.is_alive():
            self._loop.close()
