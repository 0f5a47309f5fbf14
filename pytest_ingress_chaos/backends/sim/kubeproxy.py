"""kube-proxy on one node: the Service's NodePort, forwarding to a ready endpoint.

Like kube-proxy's iptables rules, each new connection is sent to one endpoint chosen at random
from the node's current view, and stays with it. That view follows the cluster's endpoints
after a short sync lag. A connection to a node with no endpoints, or to an endpoint that refuses,
is reset, which the ALB reports as 502.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct

from .cluster import Pod
from .listener import TrackedServer


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN, as a REJECT rule or a refused DNAT target does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass  # a reset on one side ends the forwarding, as it would for a DNATed flow


class KubeProxy:
    """``local_only`` is ``externalTrafficPolicy: Local``: forward only to pods on this node,
    and drop (never answer) connections when there is none, as kube-proxy's rules do."""

    def __init__(self, node: str, rng: random.Random, connect_timeout: float,
                 local_only: bool = False) -> None:
        self.node = node
        self.rng = rng
        self.connect_timeout = connect_timeout
        self.local_only = local_only
        self.endpoints: list[tuple[str, int]] = []
        self.server = TrackedServer(self._forward)

    async def start(self) -> int:
        """Open the NodePort; returns the port."""
        return await self.server.start()

    def sync(self, ready: list[Pod]) -> None:
        self.endpoints = [pod.address for pod in ready
                          if not self.local_only or pod.node == self.node]

    def node_gone(self) -> None:
        """The node went away: its NodePort refuses from now on, and the requests in flight
        through it end (the ALB answers them 502)."""
        self.server.stop()

    async def close(self) -> None:
        await self.server.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.endpoints and self.local_only:
            await reader.read()  # dropped: the client hears nothing until it gives up
            writer.close()
            return
        if not self.endpoints:
            reset(writer)
            return
        endpoint = self.rng.choice(self.endpoints)
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*endpoint), self.connect_timeout)
        except (OSError, asyncio.TimeoutError):
            reset(writer)
            return
        # Either side closing ends the connection: the ALB does not half-close, and a pod
        # that blackholes must not keep the proxy's task alive once the ALB gave up.
        pipes = {asyncio.ensure_future(_pipe(reader, up_writer)),
                 asyncio.ensure_future(_pipe(up_reader, writer))}
        try:
            _, pending = await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            for pipe in pending:
                pipe.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            up_writer.close()
            writer.close()
