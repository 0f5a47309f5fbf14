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

import pytest

from pytest_ingress_chaos.backends.sim import http11
from pytest_ingress_chaos.backends.sim.alb import HEALTHY, ALBListener, Target, TargetGroup
from pytest_ingress_chaos.backends.sim.cluster import LOOPBACK
from pytest_ingress_chaos.backends.sim.timings import SimTimings
from pytest_ingress_chaos.base.clock import TestClock

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n"
OK_THEN_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nhi\n"


@dataclass
class ToyTarget:
    """A target that answers every request with ``response`` (headers only to HEAD), after
    ``delay`` seconds, and, when ``close_after``, closes the connection right after the
    response, as an app whose keep-alive timer fires at that moment would (no
    ``Connection: close`` warns the ALB). It counts requests per connection."""

    response: bytes = OK
    close_after: bool = False
    delay: float = 0.0
    requests: list[int] = field(default_factory=list)  # per connection, in connection order
    closed_by_peer: list[int] = field(default_factory=list)  # connection numbers, from 1

    @property
    def connections(self) -> int:
        return len(self.requests)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests.append(0)
        number = len(self.requests)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_peer.append(number)
                    return
                self.requests[number - 1] += 1
                await asyncio.sleep(self.delay)
                if head.startswith(b"HEAD "):
                    writer.write(self.response.split(b"\r\n\r\n")[0] + b"\r\n\r\n")
                else:
                    writer.write(self.response)
                await writer.drain()
                if self.close_after or self.response is OK_THEN_CLOSE:
                    return
        finally:
            writer.close()


class Client:
    """One keep-alive client connection to the ALB."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, method: str = "GET") -> http11.Message:
        """One request; the response, read whole."""
        self.writer.write(f"{method} / HTTP/1.1\r\nHost: {LOOPBACK}\r\n\r\n".encode())
        return await http11.read_response(self.reader, method)

    async def get(self) -> int:
        return (await self.send()).status


@dataclass
class Rig:
    """The ALB in front of one healthy toy target, and a first client connection."""

    client: Client
    target: ToyTarget
    group: TargetGroup
    alb_port: int
    clients: list[Client] = field(default_factory=list)

    async def connect(self) -> Client:
        """Another client connection; the ALB puts each on its next node, in turn."""
        client = Client(*await asyncio.open_connection(LOOPBACK, self.alb_port))
        self.clients.append(client)
        return client


Scenario = Callable[[Rig], Awaitable[None]]


def run(scenario: Scenario, target: ToyTarget, *, keep_alive: bool = True,
        time_scale: float = 1.0, **timings: float) -> None:
    async def main() -> None:
        server = await asyncio.start_server(target.serve, LOOPBACK, 0)
        port = server.sockets[0].getsockname()[1]
        # No health checks during a test: their connections would count as the ALB's.
        sim_timings = SimTimings(clock=TestClock(time_scale), health_check_interval=1e6,
                                 **timings)
        group = TargetGroup(sim_timings, lambda *event: None)
        group.register(Target("toy", LOOPBACK, port), steady=HEALTHY)
        alb = ALBListener(group, sim_timings, keep_alive=keep_alive)
        alb_port = await alb.start()
        first = Client(*await asyncio.open_connection(LOOPBACK, alb_port))
        rig = Rig(first, target, group, alb_port, clients=[first])
        try:
            await scenario(rig)
        finally:
            for client in rig.clients:
                client.writer.close()
            await alb.close()
            await group.close()
            server.close()

    asyncio.run(main())


def test_alb_reuses_its_connection_to_a_target() -> None:
    async def scenario(rig: Rig) -> None:
        client, target = rig.client, rig.target
        assert [await client.get() for _ in range(20)] == [200] * 20
        assert target.connections == 1

    run(scenario, ToyTarget())


def test_target_asking_to_close_gets_a_new_connection_without_errors() -> None:
    async def scenario(rig: Rig) -> None:
        client, target = rig.client, rig.target
        assert [await client.get() for _ in range(5)] == [200] * 5
        assert target.connections == 5

    run(scenario, ToyTarget(response=OK_THEN_CLOSE))


def test_request_crossing_the_targets_keepalive_close_gets_502() -> None:
    """The target closes right after its response, with no warning. A request sent before
    the FIN can reach the ALB (``target_rtt``, widened here to half a second so the race is
    certain) goes out on the closed connection and gets 502; the ALB drops that connection,
    so the next request gets a new one. Once the FIN has arrived, the ALB does not reuse the
    closed connection at all."""

    async def scenario(rig: Rig) -> None:
        client, target = rig.client, rig.target
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

    async def scenario(rig: Rig) -> None:
        client, target = rig.client, rig.target
        for _ in range(5):
            await asyncio.sleep(0.05)
            assert await client.get() == 200
        assert target.connections == 5

    run(scenario, ToyTarget(close_after=True), target_rtt=0.001)


def test_alb_closes_connections_idle_longer_than_its_idle_timeout() -> None:
    """An idle timeout of 60 test seconds at time scale 0.005 is 0.3 s: an idle connection is
    closed by the ALB (the target sees EOF) and the next request opens a new one."""

    async def scenario(rig: Rig) -> None:
        client, target = rig.client, rig.target
        assert await client.get() == 200
        await asyncio.sleep(0.6)
        assert target.closed_by_peer == [1]
        assert await client.get() == 200
        assert target.connections == 2

    run(scenario, ToyTarget(), time_scale=0.005)


def test_the_most_recently_used_connection_is_reused() -> None:
    """Two requests at once through one ALB node open two connections; after them, requests
    one at a time all go on the connection that finished last (LIFO), and the other idles."""

    async def scenario(rig: Rig) -> None:
        rig.target.delay = 0.1
        await rig.connect()  # the second ALB node's client, unused
        same_node = await rig.connect()  # back to the first node
        assert await asyncio.gather(rig.client.get(), same_node.get()) == [200, 200]
        rig.target.delay = 0.0
        assert [await rig.client.get() for _ in range(10)] == [200] * 10
        assert sorted(rig.target.requests) == [1, 11]

    run(scenario, ToyTarget())


def test_each_alb_node_keeps_its_own_connections() -> None:
    """Clients on the two ALB nodes, taking turns: two target connections, each reused."""

    async def scenario(rig: Rig) -> None:
        other_node = await rig.connect()
        for _ in range(5):
            assert (await rig.client.get(), await other_node.get()) == (200, 200)
        assert rig.target.requests == [5, 5]

    run(scenario, ToyTarget())


def test_without_keep_alive_every_request_gets_its_own_connection() -> None:
    """Instance targets: the ALB asks for ``Connection: close`` and never reuses."""

    async def scenario(rig: Rig) -> None:
        assert [await rig.client.get() for _ in range(5)] == [200] * 5
        assert rig.target.requests == [1] * 5

    run(scenario, ToyTarget(), keep_alive=False)


def test_a_removed_target_loses_its_idle_connections() -> None:
    """After the deregistration delay the target leaves the group, and the ALB closes the
    connection it kept to it (the target sees EOF)."""

    async def scenario(rig: Rig) -> None:
        assert await rig.client.get() == 200
        (address,) = rig.group.targets
        rig.group.deregister(address)
        await asyncio.sleep(0.5)
        assert not rig.group.targets
        assert rig.target.closed_by_peer == [1]
        assert await rig.client.get() == 503  # nothing registered any more

    run(scenario, ToyTarget(), deregistration_delay=0.2)


def test_head_gets_the_targets_headers_and_no_body_on_a_kept_connection() -> None:
    """HEAD: the target's content-length comes back with no body, at once, and the
    connection is reused for the GET that follows."""

    async def scenario(rig: Rig) -> None:
        head = await asyncio.wait_for(rig.client.send("HEAD"), 5.0)
        assert (head.status, head.get("content-length")) == (200, "3")
        assert await rig.client.get() == 200
        assert rig.target.requests == [2]

    run(scenario, ToyTarget())


def test_the_albs_own_answer_to_head_has_no_body() -> None:
    """With no target registered the ALB answers 503 itself; to HEAD without the body, so
    the next answer on the connection is read correctly."""

    async def scenario(rig: Rig) -> None:
        (address,) = rig.group.targets
        rig.group.deregister(address)
        await asyncio.sleep(0.3)
        head = await rig.client.send("HEAD")
        assert head.status == 503 and int(head.get("content-length")) > 0
        assert await rig.client.get() == 503

    run(scenario, ToyTarget(), deregistration_delay=0.1)


# Responses whose framing cannot be trusted. RFC 9112 (6.3) has a proxy that gets one close its
# connection to the server, discard the response and answer 502: a parser that guessed (took
# the first of two lengths, skipped two bytes it did not check) would hand the rest of the
# stream to the next request on a reused connection.
MALFORMED = {
    "non-numeric content-length": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhi\n",
    "conflicting content-lengths":
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhi\nhi",
    "status line without a status": b"HTTP/1.1\r\nContent-Length: 3\r\n\r\nhi\n",
    "non-numeric status": b"HTTP/1.1 OK\r\nContent-Length: 3\r\n\r\nhi\n",
    "not HTTP at all": b"SSH-2.0-OpenSSH_9.6\r\n",
    "header line without a colon": b"HTTP/1.1 200 OK\r\nbogus\r\nContent-Length: 3\r\n\r\nhi\n",
    "non-hex chunk size":
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\n\r\n0\r\n\r\n",
    "chunk size with 0x":
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nhi\n\r\n0\r\n\r\n",
    "chunk data without its CRLF":
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhi\nXX0\r\n\r\n",
}


@pytest.mark.parametrize("response", MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_response_gets_502_and_its_connection_is_not_reused(response: bytes) -> None:
    """The client gets the ALB's own 502 at once (not a timeout, not the target's bytes),
    the ALB closes that connection to the target (the target sees EOF) and the next request
    goes on a new one. The idle timeout is short so that a parser that waits for more bytes
    fails the test in seconds (504) instead of a minute."""

    async def scenario(rig: Rig) -> None:
        client, target = rig.client, rig.target
        answer = await asyncio.wait_for(client.send(), 10.0)
        assert (answer.status, answer.get("server")) == (502, "awselb/2.0")
        target.response = OK
        assert await client.get() == 200
        assert target.requests == [1, 1]
        for _ in range(100):
            if target.closed_by_peer:
                break
            await asyncio.sleep(0.01)
        assert target.closed_by_peer == [1]

    run(scenario, ToyTarget(response=response), idle_timeout=2.0)


def test_chunked_response_reaches_the_client_and_keeps_the_connection() -> None:
    """Chunked framing (with a chunk extension and a trailer): the body arrives whole, with a
    content-length of the ALB's, and the connection to the target is reused."""

    async def scenario(rig: Rig) -> None:
        response = await rig.client.send()
        assert (response.status, response.body, response.get("transfer-encoding")) == \
            (200, b"hi\nthere\n", "")
        assert response.get("content-length") == "9"
        assert await rig.client.get() == 200
        assert rig.target.requests == [2]

    run(scenario, ToyTarget(response=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      b"3;ext=1\r\nhi\n\r\n6\r\nthere\n\r\n0\r\n"
                                      b"X-Trailer: 1\r\n\r\n"))


def test_response_framed_by_eof_is_read_to_the_end_and_not_reused() -> None:
    """Neither Content-Length nor chunked: the body is whatever comes until the target closes,
    and that connection cannot carry another request."""

    async def scenario(rig: Rig) -> None:
        for _ in range(2):
            response = await rig.client.send()
            assert (response.status, response.body) == (200, b"hi\nthere\n")
        assert rig.target.requests == [1, 1]

    run(scenario, ToyTarget(response=b"HTTP/1.1 200 OK\r\n\r\nhi\nthere\n", close_after=True))


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body_and_keep_the_connection(status: int) -> None:
    """A 204 or 304 ends with its head, whatever a stray Content-Length says: the ALB answers
    at once (no wait for a body or for EOF) and reuses the connection."""

    async def scenario(rig: Rig) -> None:
        for _ in range(2):
            response = await asyncio.wait_for(rig.client.send(), 5.0)
            assert (response.status, response.body) == (status, b"")
        assert rig.target.requests == [2]

    run(scenario, ToyTarget(response=f"HTTP/1.1 {status} X\r\n\r\n".encode()))


def test_an_interim_1xx_answer_is_not_the_response() -> None:
    """103 Early Hints before the 200: the interim answer has no body and is not forwarded as
    the response; the client gets the 200, and the connection stays in step for the next."""

    async def scenario(rig: Rig) -> None:
        for _ in range(2):
            response = await asyncio.wait_for(rig.client.send(), 5.0)
            assert (response.status, response.body) == (200, b"hi\n")
        assert rig.target.requests == [2]

    run(scenario, ToyTarget(response=b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload"
                                     b"\r\n\r\n" + OK))
