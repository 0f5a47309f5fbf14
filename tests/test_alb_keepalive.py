"""The simulated ALB's keep-alive connections to its targets, against small real TCP targets
whose connection handling each test controls: reuse, the ALB's idle timeout, and the race
between a request and the target's keep-alive close (502).

The ALB runs in-process here (no plugin, no simulator process): one target group with one
healthy target, and a client that sends requests one at a time on one connection, so every
request goes through the same ALB node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pytest_ingress_chaos.backends.sim import http11
from pytest_ingress_chaos.backends.sim.alb import HEALTHY, ALBListener, Target, TargetGroup
from pytest_ingress_chaos.backends.sim.cluster import LOOPBACK
from pytest_ingress_chaos.backends.sim.timings import SimTimings

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n"
OK_THEN_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nhi\n"


@dataclass
class ToyTarget:
    """A target that answers every request with ``response`` and, when ``close_after``, closes
    the connection right after the response, as an app whose keep-alive timer fires at that
    moment would (no ``Connection: close`` warns the ALB)."""

    response: bytes = OK
    close_after: bool = False
    connections: int = 0
    closed_by_peer: list[int] = field(default_factory=list)  # connection numbers

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                try:
                    await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_peer.append(number)
                    return
                writer.write(self.response)
                await writer.drain()
                if self.close_after or self.response is OK_THEN_CLOSE:
                    return
        finally:
            writer.close()


Scenario = Callable[["Client", ToyTarget], Awaitable[None]]


class Client:
    """One keep-alive client connection to the ALB."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self) -> int:
        self.writer.write(f"GET / HTTP/1.1\r\nHost: {LOOPBACK}\r\n\r\n".encode())
        head = await http11.read_head(self.reader)
        await http11.read_body(self.reader, head, until_eof=False)
        return int(head.start_line.split(" ")[1])


def run(scenario: Scenario, target: ToyTarget, **timings: float) -> None:
    async def main() -> None:
        server = await asyncio.start_server(target.serve, LOOPBACK, 0)
        port = server.sockets[0].getsockname()[1]
        # No health checks during a test: their connections would count as the ALB's.
        sim_timings = SimTimings(health_check_interval=1e6, **timings)
        group = TargetGroup(sim_timings, lambda *event: None)
        group.register(Target("toy", LOOPBACK, port), steady=HEALTHY)
        alb = ALBListener(group, sim_timings, keep_alive=True)
        alb_port = await alb.start()
        reader, writer = await asyncio.open_connection(LOOPBACK, alb_port)
        try:
            await scenario(Client(reader, writer), target)
        finally:
            writer.close()
            await alb.close()
            await group.close()
            server.close()

    asyncio.run(main())


def test_alb_reuses_its_connection_to_a_target() -> None:
    async def scenario(client: Client, target: ToyTarget) -> None:
        assert [await client.get() for _ in range(20)] == [200] * 20
        assert target.connections == 1

    run(scenario, ToyTarget())


def test_target_asking_to_close_gets_a_new_connection_without_errors() -> None:
    async def scenario(client: Client, target: ToyTarget) -> None:
        assert [await client.get() for _ in range(5)] == [200] * 5
        assert target.connections == 5

    run(scenario, ToyTarget(response=OK_THEN_CLOSE))


def test_request_crossing_the_targets_keepalive_close_gets_502() -> None:
    """The target closes right after its response, with no warning. A request sent before
    the FIN can reach the ALB (``target_rtt``, widened here to half a second so the race is
    certain) goes out on the closed connection and gets 502; the ALB drops that connection,
    so the next request gets a new one. Once the FIN has arrived, the ALB does not reuse the
    closed connection at all."""

    async def scenario(client: Client, target: ToyTarget) -> None:
        assert await client.get() == 200
        assert await client.get() == 502  # crossed the close
        assert await client.get() == 200  # a new connection (closed after this response too)
        await asyncio.sleep(0.6)
        assert await client.get() == 200
        assert target.connections == 3

    run(scenario, ToyTarget(close_after=True), target_rtt=0.5)


def test_close_seen_in_time_costs_nothing() -> None:
    """The same target with a realistic round trip: by the time the next request comes the
    ALB knows the connection is closed, opens another one, and every request succeeds."""

    async def scenario(client: Client, target: ToyTarget) -> None:
        for _ in range(5):
            await asyncio.sleep(0.05)
            assert await client.get() == 200
        assert target.connections == 5

    run(scenario, ToyTarget(close_after=True), target_rtt=0.001)


def test_alb_closes_connections_idle_longer_than_its_idle_timeout() -> None:
    """An idle timeout of 60 test seconds at time scale 0.005 is 0.3 s: an idle connection is
    closed by the ALB (the target sees EOF) and the next request opens a new one."""

    async def scenario(client: Client, target: ToyTarget) -> None:
        assert await client.get() == 200
        await asyncio.sleep(0.6)
        assert target.closed_by_peer == [1]
        assert await client.get() == 200
        assert target.connections == 2

    run(scenario, ToyTarget(), time_scale=0.005)
