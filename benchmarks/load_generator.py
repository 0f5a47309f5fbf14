#!/usr/bin/env python3
"""How fast and how precise is the load generator, and how much memory do its records take?

Not part of the test suite: run it by hand (see ``benchmarks/README.md``)::

    python benchmarks/load_generator.py [--duration 10] [--rates 60,500,1000,2000]
                                        [--out benchmarks/results/load_generator.json]

It starts the project's sample app on 127.0.0.1 as the target, then

1. runs ``wrk -t1 -c10 -d10s --latency`` against it: a closed-model reference for what the
   target itself can serve (Debian's wrk 4.1 has no ``-R``, so it is not a rate reference);
2. runs the generator for ``--duration`` seconds at each ``--rates`` rate, in one process;
3. steps the rate up with shorter windows to find the highest rate one process holds (sent
   within the window within 1 % of the schedule, at most 1 % of the schedule sent more than
   50 ms late or not sent, no error), and confirms it with a full window;
4. runs ``processes=1`` and ``processes=2`` at the first rate one process did not hold;
5. in a fresh subprocess, fills a ``RequestLog`` with one hour at 1,000 requests/s of synthetic
   records, summarizes it, and reports the peak resident memory and the time taken.

Everything goes to a JSON file and a table. Loopback only; every loop is bounded in count and
time; the target processes and wrk are stopped on exit, Ctrl-C, SIGTERM or error.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_ingress_chaos.backends.sim import sampleapp
from pytest_ingress_chaos.base.errors import LoadGeneratorError
from pytest_ingress_chaos.base.specs import LoadSpec
from pytest_ingress_chaos.core.load.generator import LoadGenerator
from pytest_ingress_chaos.core.result import summarize
from pytest_ingress_chaos.core.timeline import Timeline

HOST = "127.0.0.1"  # loopback only: nothing here may send a request off the machine
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "load_generator.json"
# Rates tried above the listed ones when looking for the one-process maximum. Bounded: the
# search stops at the first rate that fails twice, or at the end of this list.
LADDER = (3000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 18000, 20000, 24000, 28000,
          32000, 40000, 48000, 56000, 64000)
# "Holds the rate" (the issue's criterion, wrk2's sense of it): sent inside the window within
# RATE_TOLERANCE of the schedule, and at most LATE_SHARE of the schedule sent more than LATE_S
# after its time or not sent at all. "Sent" is when the request went on the wire (for a new
# connection, when connecting began), so a wait for a connection counts as well as the
# generator's own lag.
RATE_TOLERANCE = 0.01
LATE_SHARE = 0.01
LATE_S = 0.050
LAG_LEVELS = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))
CONFIRM_ATTEMPTS = 6  # full-window confirmations of the maximum before giving up
# Before each run: samples of SETTLE_SAMPLE seconds (also a pause, so one run's sockets and
# CPU do not spill into the next) until other processes use at most QUIET_CORES.
SETTLE_SAMPLE = 1.0
QUIET_CORES = 0.25
TARGET_BUSY = 0.8  # share of a core per target process above which the target may be the limit
# After a LoadGeneratorError (an overloaded generator that did not stop by its deadline), how
# long to wait for its thread to end before giving up the whole benchmark: a thread still
# running would load the machine during the next runs.
THREAD_END_WAIT = 120.0
MEMORY_RECORDS = 3_600_000  # one hour at 1,000 requests/s
MEMORY_LIMIT_MB = 400  # the target for that hour


# --- the target: sample-app processes sharing one listening socket ----------------------------


class Target:
    """``processes`` sample-app processes accepting on one inherited listening socket.

    A shared socket (rather than one port per process) lets the kernel spread connections over
    the processes while the generator and wrk see a single URL.
    """

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.children: list[subprocess.Popen[bytes]] = []
        self.url = ""

    def __enter__(self) -> Target:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        # The sample app's asyncio.start_server(sock=...) calls listen(100) again, so the
        # accept queue holds 100 whatever is asked here (see README, "Findings").
        with socket.create_server((HOST, 0), backlog=1024) as listener:
            fd = listener.fileno()
            for k in range(self.processes):
                self.children.append(subprocess.Popen(
                    [sys.executable, sampleapp.__file__, "--fd", str(fd),
                     "--name", f"bench-{k}", "--exit-on-stdin-eof"],
                    pass_fds=(fd,), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    # Its own session: Ctrl-C reaches only this script, which stops the
                    # target after the generator. stdin EOF stops it if this script is killed.
                    start_new_session=True,
                ))
            self.url = f"http://{HOST}:{listener.getsockname()[1]}/"
        # The parent's copy is closed: if every target process dies, the port refuses.
        _wait_until_serving(self.url, deadline=time.monotonic() + 10)

    def check_alive(self) -> None:
        dead = [child.pid for child in self.children if child.poll() is not None]
        if dead:
            raise RuntimeError(f"target process(es) {dead} exited")

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the target processes so far (None where /proc is missing)."""
        total = 0.0
        for child in self.children:
            seconds = _proc_cpu_seconds(child.pid)
            if seconds is None:
                return None
            total += seconds
        return total

    def stop(self) -> None:
        for child in self.children:
            if child.stdin is not None:
                with contextlib.suppress(OSError):
                    child.stdin.close()  # --exit-on-stdin-eof: the polite way out
        for child in self.children:
            try:
                child.wait(timeout=2)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5)
        self.children.clear()


def _wait_until_serving(url: str, deadline: float) -> None:
    """One GET until it answers 200; the socket accepts before the app runs, so read."""
    port = int(url.rsplit(":", 1)[1].strip("/"))
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=2) as conn:
                conn.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if conn.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError as exc:
            last_error = exc
        time.sleep(0.1)
    raise RuntimeError(f"the target at {url} did not answer within 10 s: {last_error!r}")


def _proc_cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which may itself hold spaces and parentheses.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


# --- one generator run ------------------------------------------------------------------------


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _machine_busy_seconds() -> float | None:
    """CPU seconds every process on the machine has used since boot (None without /proc)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _listen_overflows() -> int | None:
    """Machine-wide count of connections dropped because an accept queue was full (each costs
    its client a SYN retransmission: about 1 s of latency). None without /proc."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(table.get("ListenOverflows", 0))
    return None


class CpuMeter:
    """CPU used from construction to :meth:`read`: this process, its reaped children, the
    target, and everything else on the machine (the noise of a shared machine, in cores)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.start = self._snapshot()

    def _snapshot(self) -> dict[str, float | None]:
        # RUSAGE_CHILDREN counts only children already reaped: the load workers are reaped
        # inside wait(), and nothing else (wrk, the target) is reaped while a run is going.
        return {"wall": time.monotonic(), "self": _cpu(resource.RUSAGE_SELF),
                "children": _cpu(resource.RUSAGE_CHILDREN),
                "target": self.target.cpu_seconds(), "machine": _machine_busy_seconds()}

    def read(self) -> dict[str, float | None]:
        end = self._snapshot()
        used = {name: _difference(end[name], self.start[name]) for name in end}
        ours = (used["self"] or 0.0) + (used["children"] or 0.0) + (used["target"] or 0.0)
        machine, wall = used["machine"], used["wall"] or 1e-9
        used["other_cores"] = None if machine is None else max(0.0, machine - ours) / wall
        return used


def _difference(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def settle(target: Target, limit: float) -> dict[str, float | None]:
    """Wait (at most ``limit`` seconds) until other processes use under QUIET_CORES: a run
    started while a neighbour's test suite has both cores measures the neighbour."""
    begin = time.monotonic()
    while True:
        meter = CpuMeter(target)
        time.sleep(SETTLE_SAMPLE)
        other = meter.read()["other_cores"]
        if other is None or other <= QUIET_CORES or time.monotonic() - begin >= limit:
            return {"settle_waited_s": round(time.monotonic() - begin, 1),
                    "other_cores_before": None if other is None else round(other, 2)}


def run_load(target: Target, rate: float, duration: float, *, processes: int, connections: int,
             timeout: float, label: str) -> dict[str, Any]:
    """Run the generator once and measure it; the figures of one table row."""
    target.check_alive()
    timeline = Timeline()
    spec = LoadSpec(rate=rate, duration=duration, connections=connections, timeout=timeout,
                    processes=processes)
    generator = LoadGenerator(target.url, spec, timeline)
    load_1m = os.getloadavg()[0]
    overflows = _listen_overflows()
    meter = CpuMeter(target)
    error = None
    try:
        generator.start()
        generator.wait()
    except LoadGeneratorError as exc:
        # Overloaded, the generator may miss its own stop deadline: the run does not hold,
        # and its records are summarized once the thread has ended.
        error = f"{exc}" + (f" ({exc.__cause__!r})" if exc.__cause__ else "")
        _wait_for_thread(generator)
    except BaseException:
        with contextlib.suppress(Exception):
            generator.stop()  # Ctrl-C or a failure: stop the thread and the workers first
        raise
    used = meter.read()
    run = {"label": label, "processes": processes, "target_rate": rate, "duration_s": duration}
    run.update(_figures(timeline, rate, duration, used, target.processes))
    run["error"] = error
    run["load_average_1m"] = round(load_1m, 2)
    after = _listen_overflows()
    run["listen_overflows"] = None if overflows is None or after is None else after - overflows
    run["holds"] = holds(run)
    return run


def _wait_for_thread(generator: LoadGenerator) -> None:
    deadline = time.monotonic() + THREAD_END_WAIT
    while not generator.finished:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the load thread still runs {THREAD_END_WAIT:g} s after its "
                               "error: the next runs would measure it too")
        time.sleep(0.5)


def _figures(timeline: Timeline, rate: float, duration: float, used: dict[str, float | None],
             target_processes: int) -> dict[str, Any]:
    result = summarize(timeline, rate)
    generator_cpu = (used["self"] or 0.0) + (used["children"] or 0.0)
    wall = used["wall"] or 1e-9
    scheduled = result.requests + result.not_sent
    sent_lag, sent_late = _sent_lag(timeline)
    return {
        "requests": result.requests,
        "scheduled": scheduled,
        "achieved_rate": round(result.achieved_rate, 2),
        "achieved_ratio": round(result.achieved_rate / rate, 5),
        # Counted here, the same way whatever summarize() counts: requests sent inside the
        # window / requests the window's schedule holds.
        "sent_in_window_ratio": round(_sent_in_window(timeline, duration) / (rate * duration), 5),
        # The generator's own lag (scheduled -> handed to the engine), as the plugin reports it,
        # and the wait for a connection at the cap (handed out -> on the wire).
        "send_lag_ms": result.send_lag,
        "connection_wait_ms": result.connection_wait,
        # Scheduled -> on the wire, from the records: both of the above together.
        "sent_lag_ms": sent_lag,
        "sent_late": sent_late,
        "late_share": round((sent_late + result.not_sent) / max(scheduled, 1), 5),
        "late": result.late,
        "waited_for_connection": result.waited_for_connection,
        "not_sent": result.not_sent,
        "peak_connections": result.peak_connections,
        "errors": result.errors,
        "by_outcome": result.by_outcome,
        "cpu_s": {"self": _round(used["self"]), "children": _round(used["children"]),
                  "total": round(generator_cpu, 3)},
        "cpu_s_per_1000_requests": round(generator_cpu / max(result.requests, 1) * 1000, 4),
        "target_cpu_share": (None if used["target"] is None else
                             round(used["target"] / wall / target_processes, 3)),
        "other_cores": _round(used["other_cores"]),
        "latency_ms": result.latency,
        "latency_uncorrected_ms": result.latency_uncorrected,
        "wall_s": round(wall, 3),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _sent_lag(timeline: Timeline) -> tuple[dict[str, float], int]:
    """Percentiles (ms) of scheduled -> sent over every record, and how many were sent more
    than LATE_S late. Exact (a sort), not from a histogram."""
    log = timeline.requests
    lags = sorted(sent - intended for intended, sent in zip(log.intended, log.sent, strict=True))
    if not lags:
        return {}, 0
    figures = {name: round(lags[min(len(lags) - 1, int(len(lags) * level / 100))] * 1000, 3)
               for name, level in LAG_LEVELS}
    figures["max"] = round(lags[-1] * 1000, 3)
    late = len(lags) - bisect.bisect_right(lags, LATE_S)
    return figures, late


def _sent_in_window(timeline: Timeline, duration: float) -> int:
    if timeline.load_start is None:
        return 0
    end = timeline.load_start + duration
    return sum(1 for sent in timeline.requests.sent if sent <= end)


def holds(run: dict[str, Any]) -> bool:
    """The issue's criterion, plus no request failed (a failing target is no pass) and no
    LoadGeneratorError."""
    return bool(abs(run["sent_in_window_ratio"] - 1) <= RATE_TOLERANCE
                and run["late_share"] <= LATE_SHARE and run["errors"] == 0
                and not run["error"])


CRITERION = (f"sent inside the window within {RATE_TOLERANCE:.0%} of the schedule, at most "
             f"{LATE_SHARE:.0%} of it sent more than {LATE_S * 1000:g} ms late or not sent, "
             f"no error")


# --- the one-process maximum ------------------------------------------------------------------


def find_max(target: Target, args: argparse.Namespace, start_above: float,
             runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Step up with short windows; a rate that fails is retried once (the machine is shared,
    one noisy second should not end the search). Then confirm the best with a full window."""
    passed: list[float] = []
    first_failed: float | None = None
    for rate in (r for r in LADDER if r > start_above):
        if _step(target, args, rate, runs):
            passed.append(rate)
        else:
            first_failed = rate
            break
    if passed and first_failed is not None:
        # One bisection step, to the nearest 500 requests/s, narrows the gap between steps.
        middle = round((passed[-1] + first_failed) / 2 / 500) * 500
        if passed[-1] < middle < first_failed:
            if _step(target, args, middle, runs):
                passed.append(middle)
            else:
                first_failed = middle
    confirmed = _confirm(target, args, passed, runs)
    return {
        "rate": confirmed,
        "reached_end_of_ladder": first_failed is None,
        "first_failed_rate": first_failed,
        "criterion": f"{CRITERION}; steps of {args.step_duration:g} s (a failed step retried "
                     f"once), confirmed with a {args.duration:g} s window",
    }


def _step(target: Target, args: argparse.Namespace, rate: float,
          runs: list[dict[str, Any]]) -> bool:
    for attempt in (1, 2):
        run = _run(target, args, rate, args.step_duration, processes=1,
                   label=f"step {rate:g} #{attempt}")
        runs.append(run)
        if run["holds"]:
            return True
    return False


def _confirm(target: Target, args: argparse.Namespace, passed: list[float],
             runs: list[dict[str, Any]]) -> float | None:
    for rate in list(reversed(passed))[:CONFIRM_ATTEMPTS]:
        run = _run(target, args, rate, args.duration, processes=1, label="max (1 process)")
        runs.append(run)
        if run["holds"]:
            return rate
    return None


def _run(target: Target, args: argparse.Namespace, rate: float, duration: float, *,
         processes: int, label: str) -> dict[str, Any]:
    quiet = settle(target, args.settle)
    run = run_load(target, rate, duration, processes=processes, connections=args.connections,
                   timeout=args.timeout, label=label)
    run.update(quiet)
    print(_row(run), flush=True)
    return run


# --- wrk: the target's own throughput and latency ---------------------------------------------

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def run_wrk(target: Target, duration: int, settle_limit: float) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": "wrk is not installed"}
    command = [wrk, "-t1", "-c10", f"-d{duration}s", "--latency", target.url]
    quiet = settle(target, settle_limit)
    meter = CpuMeter(target)
    # run() kills wrk if this script is interrupted while waiting; the timeout bounds it.
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30,
                          check=False)
    used = meter.read()
    figures = parse_wrk(done.stdout)
    figures["command"] = " ".join(["wrk", *command[1:]])
    figures["exit_code"] = done.returncode
    if used["target"] is not None:
        figures["target_cpu_share"] = round(used["target"] / (used["wall"] or 1e-9)
                                            / target.processes, 3)
    # wrk is reaped by now, so its CPU is in "children" and not among the others.
    figures["wrk_cpu_share"] = round((used["children"] or 0.0) / (used["wall"] or 1e-9), 3)
    figures["other_cores"] = _round(used["other_cores"])
    figures.update(quiet)
    if done.returncode != 0:
        figures["stderr"] = done.stderr[-500:]
    return figures


def parse_wrk(text: str) -> dict[str, Any]:
    """The figures of wrk 4.1's ``--latency`` output, latencies in ms."""
    figures: dict[str, Any] = {}
    if match := re.search(r"Requests/sec:\s+([\d.]+)", text):
        figures["requests_per_s"] = float(match.group(1))
    if match := re.search(r"(\d+) requests in ([\d.]+)(\w+)", text):
        figures["requests"] = int(match.group(1))
    if match := re.search(r"Latency\s+([\d.]+)(\w+)\s+([\d.]+)(\w+)\s+([\d.]+)(\w+)", text):
        mean, stdev, top = (_ms(match.group(i), match.group(i + 1)) for i in (1, 3, 5))
        figures.update(mean_ms=mean, stdev_ms=stdev, max_ms=top)
    figures["latency_ms"] = {
        f"p{level}": _ms(value, unit)
        for level, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(\w+)\s*$", text, re.M)}
    if match := re.search(r"Socket errors: (.*)", text):
        figures["socket_errors"] = match.group(1).strip()
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        figures["non_2xx"] = int(match.group(1))
    return figures


def _ms(value: str, unit: str) -> float:
    return round(float(value) * _UNIT_MS[unit], 4)


# --- the memory check -------------------------------------------------------------------------


def memory_check(records: int) -> dict[str, Any]:
    """Run :func:`memory_child` in a fresh interpreter, so the peak RSS is its own."""
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(records)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        return {"failed": done.stderr[-2000:]}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["limit_mb"] = MEMORY_LIMIT_MB
    figures["within_limit"] = figures["peak_rss_mb"] < MEMORY_LIMIT_MB
    return figures


def _peak_rss_mb() -> float:
    """This process's own peak resident memory.

    Linux's VmHWM belongs to the address space exec() created. ru_maxrss does not: a child
    started with vfork (as subprocess does) inherits the parent's peak, so a benchmark that has
    grown to 500 MB would see every child "peak" at 500 MB. ru_maxrss where there is no /proc.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return _maxrss_mb()


def _maxrss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def memory_child(records: int) -> None:
    """One hour of load at 1,000 requests/s: 200s, with a burst of 502s and timeouts every five
    minutes (a pod killed) and the pods replaced after each burst. Prints one JSON line."""
    baseline = _peak_rss_mb()
    timeline = Timeline()
    start = 1000.0
    timeline.load_start = start
    fill_start = time.perf_counter()
    _fill(timeline, records, start)
    fill = time.perf_counter() - fill_start
    timeline.load_end = start + records / 1000
    after_fill = _peak_rss_mb()
    digest_start = time.perf_counter()
    _digest(timeline)
    digest = time.perf_counter() - digest_start
    summarize_start = time.perf_counter()
    result = summarize(timeline, 1000.0)
    summarize_s = time.perf_counter() - summarize_start
    print(json.dumps({
        "records": records,
        "baseline_rss_mb": round(baseline, 1),
        "rss_after_fill_mb": round(after_fill, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "ru_maxrss_mb": round(_maxrss_mb(), 1),  # for comparison: may include the parent's
        "bytes_per_record": round((after_fill - baseline) * 1024 * 1024 / records, 1),
        "fill_s": round(fill, 2),
        "add_us_per_record": round(fill / records * 1e6, 2),
        # The histograms take the records apart from add(): digest() is what the load loop
        # does a few dozen records per tick. add() + digest() is the whole cost of a record.
        "digest_s": round(digest, 2),
        "record_us_per_record": round((fill + digest) / records * 1e6, 2),
        "summarize_s": round(summarize_s, 2),
        "by_outcome": result.by_outcome,
        "error_windows": len(result.error_windows),
        "pods": len(result.per_pod),
        "buckets": len(result.buckets),
    }))


def _digest(timeline: Timeline) -> None:
    timeline.requests.digest()  # what summarize() would do first


def _fill(timeline: Timeline, records: int, start: float) -> None:
    rng = random.Random(3)
    # Precomputed jitter and latencies, cycled: the loop then costs about what add() costs.
    lags = [rng.uniform(0.0, 0.001) for _ in range(4096)]
    latencies = [min(1.9, rng.lognormvariate(-6.2, 0.5)) for _ in range(4096)]  # ~2 ms
    add = timeline.requests.add
    pods: list[str] = []
    for i in range(records):
        intended = start + i / 1000
        sent = intended + lags[i & 4095]  # handed out and sent at once: the pool has room
        second = (i // 1000) % 300  # each five-minute cycle starts with a pod killed
        if i % 300_000 == 0:
            pods = _pod_names(rng)  # ... and its replacement (with new names) serving after
        if second < 2 and i % 10 == 0:
            add(intended, sent, sent, sent + 0.0008, 502, None)  # the ALB still routes to it
        elif second < 2 and i % 50 == 1:
            add(intended, sent, sent, sent + 2.0, -1, None)  # a timeout, at the 2 s default
        else:
            add(intended, sent, sent, sent + latencies[i & 4095], 200, pods[i % 3])


def _pod_names(rng: random.Random) -> list[str]:
    letters = "bcdfghjklmnpqrstvwxz2456789"
    return [f"kubia-{''.join(rng.choice(letters) for _ in range(5))}" for _ in range(3)]


# --- output -----------------------------------------------------------------------------------

_HEADER = (f"{'run':<17} {'proc':>4} {'target':>6} {'in win':>6} "
           f"{'lag p50':>7} {'p90':>5} {'p99':>6} {'p99.9':>6} {'max':>6} {'cw p99':>6} "
           f"{'sent p99':>8} {'late%':>6} {'unsent':>6} {'conns':>5} "
           f"{'cpu/1k':>7} {'tgt':>4} {'other':>5} {'lat p50':>7} {'p99':>6} "
           f"{'max':>6} {'unc p99':>7} {'ok':>3}")


def _row(run: dict[str, Any]) -> str:
    lag, lat = run["send_lag_ms"], run["latency_ms"]
    wait, sent = run["connection_wait_ms"], run["sent_lag_ms"]
    share, other = run["target_cpu_share"], run["other_cores"]
    return (f"{run['label']:<17} {run['processes']:>4} {run['target_rate']:>6g} "
            f"{run['sent_in_window_ratio']:>6.3f} "
            f"{lag['p50']:>7.3f} {lag['p90']:>5.2f} {lag['p99']:>6.2f} {lag['p99.9']:>6.2f} "
            f"{lag['max']:>6.1f} {_cell(wait, 'p99'):>6} {_cell(sent, 'p99'):>8} "
            f"{run['late_share']:>6.2%} {run['not_sent']:>6} "
            f"{run['peak_connections'] if run['peak_connections'] is not None else '-':>5} "
            f"{run['cpu_s_per_1000_requests'] * 1000:>5.0f}ms "
            f"{'-' if share is None else f'{share:.0%}':>4} "
            f"{'-' if other is None else f'{other:.2f}':>5} "
            f"{lat['p50']:>7.3f} {lat['p99']:>6.2f} {lat['max']:>6.1f} "
            f"{run['latency_uncorrected_ms']['p99']:>7.3f} "
            f"{'yes' if run['holds'] else 'ERR' if run['error'] else 'NO':>3}")


def _cell(figures: dict[str, float], name: str) -> str:
    return f"{figures[name]:.2f}" if name in figures else "-"


def print_report(report: dict[str, Any]) -> None:
    print()
    print("Load generator runs. Times in ms. in win: sent inside the window / scheduled; lag: "
          "the generator's own send lag (scheduled -> handed out); cw: wait for a connection; "
          "sent: scheduled -> on the wire; late%: sent > 50 ms late or not sent, of the "
          "schedule; conns: most connections open; cpu/1k: generator CPU per 1,000 requests; "
          "tgt: target CPU per target process; other: cores used by other processes meanwhile; "
          "lat: latency from the scheduled send; unc: from the actual send; ok: holds the rate")
    print(_HEADER)
    for run in report["runs"]:
        print(_row(run))
    for run in report["runs"]:
        if run["error"]:
            print(f"{run['label']} ({run['target_rate']:g}/s): {run['error']}")
    overflowed = [f"{run['label']}: {run['listen_overflows']}" for run in report["runs"]
                  if run.get("listen_overflows")]
    if overflowed:
        print("Accept-queue overflows during runs (machine-wide, so maybe another process's; "
              "one of ours costs a request a SYN retransmission, about 1 s, visible in the "
              f"latency max): {', '.join(overflowed)}")
    best = report["one_process_max"]
    found = (f"{best['rate']:g} requests/s" if best["rate"] is not None
             else "none found: no step above the listed rates held")
    print(f"\nOne-process maximum: {found}; criterion: {best['criterion']}"
          + ("; the ladder ended without a failure, so it is a lower bound"
             if best["reached_end_of_ladder"] else ""))
    print(f"Target: {report['target']['note']}")
    wrk = report["wrk"]
    if "requests_per_s" in wrk:
        latency = ", ".join(f"{name} {value:g}" for name, value in wrk["latency_ms"].items())
        print(f"wrk reference ({wrk['command']}): {wrk['requests_per_s']:.0f} requests/s, "
              f"latency ms {latency}, max {wrk.get('max_ms', '-')}; target CPU "
              f"{wrk.get('target_cpu_share', '-')}, wrk CPU {wrk['wrk_cpu_share']}, other "
              f"cores {wrk['other_cores']}")
    else:
        print(f"wrk reference: {wrk}")
    memory = report["memory"]
    if "peak_rss_mb" in memory:
        print(f"Memory: {memory['records']:,} records -> peak RSS {memory['peak_rss_mb']} MB "
              f"(baseline {memory['baseline_rss_mb']} MB, limit {memory['limit_mb']} MB: "
              f"{'ok' if memory['within_limit'] else 'OVER'}), add() "
              f"{memory['add_us_per_record']} us/record, digest {memory['digest_s']} s, "
              f"summarize {memory['summarize_s']} s")
    else:
        print(f"Memory check: {memory}")
    print(f"Load average: {report['host']['uptime_start']} -> {report['host']['uptime_end']}")


def _version(module: str) -> str | None:
    """The installed version of an optional speed-up (the generator uses it when present)."""
    try:
        return str(getattr(__import__(module), "__version__", "?"))
    except ImportError:
        return None


def _uptime() -> str:
    if shutil.which("uptime") is None:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    done = subprocess.run(["uptime"], capture_output=True, text=True, timeout=10, check=False)
    return done.stdout.strip()


def _target_note(target_processes: int, wrk: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """Say whether the target, not the generator, could have been the limit."""
    busiest = max((run["target_cpu_share"] or 0.0 for run in runs), default=0.0)
    highest = max((run["target_rate"] for run in runs), default=0.0)
    note = (f"{target_processes} sample-app process(es) sharing one listening socket; "
            f"busiest generator run used {busiest:.0%} of a core per target process")
    if "requests_per_s" in wrk:
        note += (f"; wrk got {wrk['requests_per_s']:.0f} requests/s from it, "
                 f"{wrk['requests_per_s'] / highest:.1f}x the highest rate tried")
    if busiest > TARGET_BUSY:
        note += ("; WARNING: the target was close to saturated, so the highest rates measure "
                 "it as much as the generator: try --target-processes 2")
    return note


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds per run at the listed rates and the maximum (default 10)")
    parser.add_argument("--rates", default="60,500,1000,2000",
                        help="comma-separated requests/s (default 60,500,1000,2000)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file")
    parser.add_argument("--step-duration", type=float, default=3.0,
                        help="seconds per step of the search for the maximum (default 3)")
    parser.add_argument("--target-processes", type=int, default=1,
                        help="sample-app processes sharing the listening socket (default 1)")
    parser.add_argument("--connections", type=int, default=LoadSpec().connections)
    parser.add_argument("--timeout", type=float, default=LoadSpec().timeout)
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds to wait at most, before each run, for other processes to "
                             f"use under {QUIET_CORES:g} cores (default 30)")
    parser.add_argument("--wrk-duration", type=int, default=10, help="seconds (default 10)")
    parser.add_argument("--memory-records", type=int, default=MEMORY_RECORDS,
                        help="records for the memory check; 0 skips it")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _raise_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks stop what was started."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    rates = [float(rate) for rate in args.rates.split(",") if rate.strip()]
    report: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "platform": platform.platform(),
                 "python": platform.python_version(), "uvloop": _version("uvloop"),
                 "httptools": _version("httptools"), "uptime_start": _uptime()},
        "settings": {"duration_s": args.duration, "rates": rates,
                     "step_duration_s": args.step_duration, "connections": args.connections,
                     "timeout_s": args.timeout, "target_processes": args.target_processes,
                     "settle_s": args.settle},
    }
    runs: list[dict[str, Any]] = []
    report["runs"] = runs
    with Target(args.target_processes) as target:
        report["wrk"] = run_wrk(target, args.wrk_duration, args.settle)
        print(_HEADER, flush=True)
        for rate in rates:
            runs.append(_run(target, args, rate, args.duration, processes=1,
                             label=f"{rate:g}/s"))
        listed_max = max((run["target_rate"] for run in runs if run["holds"]), default=0.0)
        report["one_process_max"] = find_max(target, args, listed_max, runs)
        above = report["one_process_max"]["first_failed_rate"] or LADDER[-1] * 1.25
        for processes in (1, 2):
            runs.append(_run(target, args, above, args.duration, processes=processes,
                             label=f"above max, {processes}p"))
        report["target"] = {"url": target.url, "processes": target.processes,
                            "note": _target_note(target.processes, report["wrk"], runs)}
    report["memory"] = (memory_check(args.memory_records) if args.memory_records
                        else {"skipped": "--memory-records 0"})
    report["host"]["uptime_end"] = _uptime()
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child is not None:
        memory_child(args.memory_child)
        return 0
    _raise_on_sigterm()
    report = benchmark(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"\nWrote {args.out}")
    return 0


@contextlib.contextmanager
def _interrupt_exit_code() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        print("\ninterrupted: everything started was stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    with _interrupt_exit_code():
        sys.exit(main())
