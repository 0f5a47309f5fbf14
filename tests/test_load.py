"""The load generator against real local servers: rate, outcomes, lifecycle."""

from __future__ import annotations

import asyncio
import functools
import itertools
import ssl
import threading
import time
from pathlib import Path

import pytest
import trustme

from pytest_ingress_chaos.base.errors import LoadGeneratorError
from pytest_ingress_chaos.base.specs import LoadSpec, SLOSpec
from pytest_ingress_chaos.core.load.generator import LoadGenerator
from pytest_ingress_chaos.core.load.records import RequestLog
from pytest_ingress_chaos.core.load.schedule import Schedule
from pytest_ingress_chaos.core.result import summarize
from pytest_ingress_chaos.core.timeline import Timeline
from pytest_ingress_chaos.core.verdict import PASS, VOID, judge

from .localservers import (
    answer_ok,
    close_at_once,
    closed_port,
    never_answer,
    reset_after_request,
    serve,
    serve_frozen,
)


def _run(url: str, **spec: object) -> tuple[Timeline, LoadGenerator]:
    timeline = Timeline()
    generator = LoadGenerator(url, LoadSpec(**spec), timeline)  # type: ignore[arg-type]
    generator.start()
    generator.wait()
    return timeline, generator


def test_sends_the_scheduled_requests_and_records_each() -> None:
    with serve(answer_ok) as url:
        timeline, _ = _run(url, rate=200, duration=1.0)
    result = summarize(timeline, 200)
    assert result.requests == 200
    assert result.by_outcome == {"200": 200}
    assert result.per_pod == {"local": 200}
    assert result.achieved_rate == pytest.approx(200, rel=0.02)
    intended = sorted(timeline.requests.intended)
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(intended)}
    assert gaps == {0.005}  # exactly the open-model schedule, whatever the server did


@pytest.mark.parametrize(("handler", "outcome"), [
    (never_answer, "timeout"),
    (reset_after_request, "reset"),
])
def test_transport_failures_are_classified(handler: object, outcome: str) -> None:
    with serve(handler) as url:  # type: ignore[arg-type]
        timeline, _ = _run(url, rate=20, duration=0.25, timeout=0.2)
    assert summarize(timeline, 20).by_outcome == {outcome: 5}


@pytest.mark.parametrize("connections", [1, 10])
def test_a_server_that_accepts_and_closes_resets_every_request_at_once(connections: int) -> None:
    """A connection the peer closes before the engine has pooled it, or before the request on
    it is written, is a reset there and then: not a request left waiting for its timeout."""
    with serve(close_at_once) as url:
        timeline, _ = _run(url, rate=20, duration=0.5, timeout=2.0, connections=connections)
    assert summarize(timeline, 20).by_outcome == {"reset": 10}
    log = timeline.requests
    slowest = max(end - intended for end, intended in zip(log.end, log.intended, strict=True))
    assert slowest < 1.0  # none waited out its 2 s timeout


def test_refused_connections_are_classified() -> None:
    timeline, _ = _run(f"http://127.0.0.1:{closed_port()}/", rate=20, duration=0.25)
    assert summarize(timeline, 20).by_outcome == {"connection refused": 5}


def test_latency_counts_from_the_scheduled_time_when_connections_run_out() -> None:
    """A cap of one connection, a server taking 50 ms, 40 requests/s: requests queue behind
    each other, the latency a user would see includes the queueing (coordinated omission),
    and the wait is the connection cap's, not the generator's own lag."""
    slow = functools.partial(answer_ok, delay=0.05)
    with serve(slow) as url:
        timeline, _ = _run(url, rate=40, duration=0.5, connections=1, max_connections=1)
    result = summarize(timeline, 40)
    assert result.requests == 20
    assert result.latency["max"] > 400  # last request waited ~19 x 25 ms for the connection
    assert result.late == 0 and result.waited_for_connection > 10 and not result.held_rate
    assert (result.max_connections, result.max_connections_reason) == (1, "max_connections")


def test_keep_alive_connections_are_reused() -> None:
    """40 requests, one at a time, over one kept-alive connection: the server accepts exactly
    one connection (a new connection per request would hide keep-alive races from tests)."""
    accepted = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await answer_ok(reader, writer)

    with serve(counting) as url:
        timeline, _ = _run(url, rate=40, duration=1.0, connections=1)
    assert summarize(timeline, 40).by_outcome == {"200": 40}
    assert accepted == 1


def test_a_busy_pool_grows_instead_of_queueing() -> None:
    """The same slow server without a cap: every request goes out on time, on a new
    connection when the pool is busy, and the latency is the server's own 50 ms."""
    slow = functools.partial(answer_ok, delay=0.05)
    with serve(slow) as url:
        timeline, _ = _run(url, rate=40, duration=0.5, connections=1)
    result = summarize(timeline, 40)
    assert result.requests == 20 and result.held_rate
    assert result.waited_for_connection == 0
    assert result.latency["max"] < 200
    assert result.peak_connections >= 2
    assert result.max_connections == 1 + 80  # the pool + rate x timeout (40/s x 2 s)


def test_a_frozen_target_shows_as_latency_and_not_as_a_lagging_generator() -> None:
    """A target that answers nothing for 1 s, then everything, under 1,000 requests/s and a
    5 s timeout: the pool of 100 connections grows to carry every request on time, nothing
    is void, and the corrected p99 is what coordinated-omission theory predicts: the requests
    due in the freeze wait for its end, so the slowest 1 % of a 5 s window waited at least
    1 s - 1 % x 5 s = 0.95 s."""
    rate, window, freeze = 1000, 5.0, 1.0
    start = time.monotonic() + 1.0  # the schedule's start, after the pool has opened
    with serve_frozen(start + 2.0, start + 2.0 + freeze) as server:
        timeline = Timeline()
        generator = LoadGenerator(server.url, LoadSpec(rate=rate, duration=window,
                                                       timeout=5.0), timeline)
        generator.start(at=start)
        generator.wait()
        # On a loaded machine the server wakes a little late: the freeze it really had.
        freeze = server.resumed_at() - (start + 2.0)
    result = summarize(timeline, rate)
    # What this is about: the frozen target never made a request wait for a connection.
    assert result.by_outcome == {"200": rate * window}
    assert result.waited_for_connection == 0 and result.peak_connections > 100
    verdict = judge(result, SLOSpec())
    if verdict.kind == VOID and result.late and not result.waited_for_connection:
        # The machine itself starved the generator (a loaded CI runner: its own loop stalled,
        # recorded as such); the verdict says so rightly, and there is nothing to measure.
        pytest.skip(f"the load generator itself was starved of CPU: {verdict.violations[0]}")
    assert verdict.kind == PASS, verdict.violations
    expected_p99 = (freeze - 0.01 * window) * 1000
    # A stall of the generator's own loop delays reading answers by up to its length.
    stalled_ms = sum(stall.end - stall.start for stall in result.stalls) * 1000
    assert expected_p99 * 0.90 <= result.latency["p99"] <= expected_p99 * 1.10 + stalled_ms


def test_a_generator_starved_of_cpu_is_called_out() -> None:
    """A busy loop holding the GIL in the load thread's process for about a second: the
    generator cannot send on time, and the verdict says so (void) instead of judging the
    ingress on figures it could not measure."""
    with serve(answer_ok) as url:
        timeline = Timeline()
        generator = LoadGenerator(url, LoadSpec(rate=200, duration=3.0), timeline)
        generator.start()
        time.sleep(0.5)
        hogged = time.monotonic()
        sum(range(60_000_000))  # C code that never releases the GIL
        hogged = time.monotonic() - hogged
        generator.wait()
    result = summarize(timeline, 200)
    assert hogged > 0.3, "the busy loop was too short to starve anything"
    assert result.late > 0.01 * result.scheduled
    assert result.stalls and max(s.end - s.start for s in result.stalls) > 0.25
    verdict = judge(result, SLOSpec())
    assert verdict.kind == VOID
    assert "handed out more than 50 ms late by the generator itself" in verdict.violations[0]


def test_stop_ends_the_window_early() -> None:
    with serve(answer_ok) as url:
        timeline = Timeline()
        generator = LoadGenerator(url, LoadSpec(rate=50, duration=60), timeline)
        generator.start()
        threading.Event().wait(0.2)
        generator.stop()
        assert generator.finished
    assert 5 <= len(timeline.requests) <= 20


def test_an_exception_in_the_thread_is_raised_in_the_caller() -> None:
    def explode(_start: float) -> None:
        raise ValueError("boom")

    with serve(answer_ok) as url:
        generator = LoadGenerator(url, LoadSpec(rate=10, duration=1), Timeline(),
                                  on_start=explode)
        with pytest.raises(LoadGeneratorError, match="boom") as info:
            generator.start()
            generator.wait()
    assert isinstance(info.value.__cause__, ValueError)


def test_a_window_starts_once() -> None:
    with serve(answer_ok) as url:
        generator = LoadGenerator(url, LoadSpec(rate=10, duration=0.1), Timeline())
        generator.start()
        with pytest.raises(LoadGeneratorError, match="already started"):
            generator.start()
        generator.wait()


# --- the schedule, with a fake clock --------------------------------------------------------


def test_schedule_takes_what_is_due_and_nothing_more() -> None:
    schedule = Schedule(start=100.0, rate=10, window=1.0)
    assert schedule.take_due(99.99) == []
    assert schedule.take_due(100.0) == [100.0]
    assert schedule.next_due == pytest.approx(100.1)
    # A late wake-up gets every overdue request at once (open model: none are skipped).
    assert schedule.take_due(100.35) == pytest.approx([100.1, 100.2, 100.3])
    assert schedule.remaining() == 6
    assert len(schedule.take_due(1000.0)) == 6
    assert schedule.next_due is None and schedule.remaining() == 0


def test_shares_of_a_schedule_cover_it_exactly_once() -> None:
    whole = Schedule(start=0.0, rate=7, window=3.0).take_due(10.0)
    shares = [Schedule(start=0.0, rate=7, window=3.0, offset=k, stride=3).take_due(10.0)
              for k in range(3)]
    assert len(whole) == 21
    assert sorted(t for share in shares for t in share) == whole
    assert [len(share) for share in shares] == [7, 7, 7]


def test_merged_logs_keep_records_pods_and_histograms() -> None:
    first, second = RequestLog(), RequestLog()
    first.add(1.0, 1.001, 1.001, 1.011, 200, "kubia-a")
    second.add(1.5, 1.5, 1.5, 1.6, 200, "kubia-b")
    second.add(2.0, 2.1, 2.1, 2.2, 502, None)
    second.add(2.5, 2.5, 2.6, 2.61, 200, "kubia-a")
    second.stalled(2.0, 2.1)
    first.merge(second.export())
    assert len(first) == 4
    assert first.pod_names == ["kubia-a", "kubia-b"]
    assert [first.pod_names[i] if i >= 0 else None for i in first.pod] == [
        "kubia-a", "kubia-b", None, "kubia-a"]
    assert list(first.outcome) == [200, 200, 502, 200]
    assert first.corrected.get_total_count() == 4
    assert first.late == 1  # the request handed out 100 ms after its time
    assert first.waited == 1  # the request that waited 100 ms for a connection
    assert first.stalls == [(2.0, 2.1)]
    assert first.corrected.get_max_value() == pytest.approx(200_000, rel=1e-3)


def test_several_processes_share_one_schedule() -> None:
    with serve(answer_ok) as url:
        timeline, _ = _run(url, rate=300, duration=1.0, processes=2)
    result = summarize(timeline, 300)
    assert result.by_outcome == {"200": 300}
    intended = sorted(timeline.requests.intended)
    assert {round(b - a, 6) for a, b in itertools.pairwise(intended)} == {round(1 / 300, 6)}
    assert result.achieved_rate == pytest.approx(300, rel=0.02)


ROUTE = ("X-Ingress-Chaos-Route", "ns-1/kubia-1")


async def answer_if_routed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """200 for requests that carry ROUTE (any case in its name, as HTTP has it), else 404: a
    load balancer rule with an http-header condition."""
    wanted = f"{ROUTE[0]}: {ROUTE[1]}".lower().encode()
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            routed = wanted in head.lower().split(b"\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\nYou've hit local\n"
                         if routed else b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.mark.parametrize("processes", [1, 2])
def test_every_request_carries_the_services_route_headers(processes: int) -> None:
    """The service's request_headers (an ALB rule's condition) go with every request, from
    every load process; without them the rule is not met."""
    with serve(answer_if_routed) as url:
        for headers, outcome in (({}, "404"), (dict([ROUTE]), "200")):
            timeline = Timeline()
            generator = LoadGenerator(url, LoadSpec(rate=100, duration=0.5,
                                                    processes=processes),
                                      timeline, headers=headers)
            generator.start()
            generator.wait()
            assert summarize(timeline, 100).by_outcome == {outcome: 50}, headers


def test_https_goes_through_httpx_with_tls(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    """``https://`` targets take the httpx engine: real TLS against a local server whose
    certificate comes from a throwaway CA that the client is told to trust."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # httpx trusts it (trust_env)
    with serve(answer_ok, ssl_context=server_context) as url:
        timeline, _ = _run(url.replace("http://", "https://"), rate=50, duration=0.4)
    result = summarize(timeline, 50)
    assert result.by_outcome == {"200": 20}
    assert result.per_pod == {"local": 20}
    # The route headers go through httpx too.
    with serve(answer_if_routed, ssl_context=server_context) as url:
        timeline = Timeline()
        generator = LoadGenerator(url.replace("http://", "https://"),
                                  LoadSpec(rate=50, duration=0.4), timeline,
                                  headers=dict([ROUTE]))
        generator.start()
        generator.wait()
    assert summarize(timeline, 50).by_outcome == {"200": 20}
