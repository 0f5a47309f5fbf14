"""``ingress-sim``: the simulated ingress on its own, for any HTTP client (curl, wrk, a browser).

Runs one simulated service (pods as processes, kube-proxy, an ALB with target type ``ip`` or
``instance``) in this process, prints where its ALB listens, optionally kills pods on a
schedule, and prints every event of the simulation as it happens::

    $ ingress-sim --mode ip --kill-pods-at 5s --duration 25s
    ingress: http://127.0.0.1:41375
       -0.03  cluster    pod kubia-x1k9q created on node-1, serving at 127.0.0.1:40021
       ...
        5.00  chaos      kill_pods: deleting pod kubia-x1k9q on node-1 (grace 30s)

The first line on stdout is always ``ingress: <url>``, so a script can read it and aim its
load there. Times are test seconds from that moment (provisioning happened just before it, at
negative times); ``--time-scale`` turns test seconds into wall seconds for every simulated
timing, the chaos offsets and ``--duration`` alike. The run ends after ``--duration``, or on
Ctrl-C or SIGTERM, with exit code 0; every pod process is stopped and every socket closed
before the process exits. Exit code 2 is a usage error, 1 a simulator that could not start.

This module never imports pytest: it is the simulator, not the plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from ...specs import DEFAULT_MODE, MODES, SIGTERM_BEHAVIOURS
from ...units import (
    DURATION_FORMS,
    count_at_least_one,
    count_at_least_zero,
    duration,
    format_seconds,
    positive_duration,
    positive_number,
)
from .cluster import Cluster, DeploymentSpec
from .server import ServiceStack, raise_fd_limit
from .timings import SimTimings

PROG = "ingress-sim"
EXIT_OK, EXIT_FAILED = 0, 1  # argparse itself exits 2 on a usage error

T = TypeVar("T")


# --- command line -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """The validated command line. Every duration is in test seconds."""

    mode: str
    deployment: DeploymentSpec
    time_scale: float
    seed: int
    kill_at: tuple[float, ...]
    kill_count: int
    duration: float | None
    events: str | None
    quiet: bool
    port: int

    def wall(self, test_seconds: float) -> float:
        return test_seconds * self.time_scale


def _arg_type(parse: Callable[[object], T], name: str) -> Callable[[str], T]:
    """Adapt a settings parser to argparse, keeping its message (which says what is accepted):
    argparse would replace a plain ValueError with a bare "invalid value"."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name  # argparse names the type in some messages
    return convert


def _port(value: object) -> int:
    port = count_at_least_zero(value)
    if port > 65535:
        raise ValueError(f"expected a port number from 0 to 65535, got {value!r}")
    return port


_DURATION = _arg_type(duration, "duration")
_POSITIVE_DURATION = _arg_type(positive_duration, "duration")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run the simulated ingress (an AWS ALB in front of a small cluster) on "
                    "127.0.0.1 until --duration or Ctrl-C, and point any HTTP client at it.",
        epilog=f"Durations: {DURATION_FORMS}, in test seconds (see --time-scale). The first "
               "line on stdout is 'ingress: <url>'; event lines follow.")
    service = parser.add_argument_group("the sample service (as the sample_service marker)")
    service.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                         help=f"ALB target type (default {DEFAULT_MODE})")
    service.add_argument("--replicas", type=_arg_type(count_at_least_one, "count"), default=3,
                         metavar="N", help="pods of the sample app (default 3)")
    service.add_argument("--nodes", type=_arg_type(count_at_least_one, "count"), default=3,
                         metavar="N", help="nodes the pods are spread over (default 3)")
    service.add_argument("--prestop-sleep", type=_DURATION, default=0.0, metavar="DURATION",
                         help="preStop sleep before SIGTERM (default 0s)")
    service.add_argument("--grace-period", type=_DURATION, default=30.0, metavar="DURATION",
                         help="terminationGracePeriodSeconds (default 30s)")
    service.add_argument("--on-sigterm", choices=SIGTERM_BEHAVIOURS, default="exit",
                         help="what the app does on SIGTERM (default exit)")
    service.add_argument("--keepalive-timeout", type=_POSITIVE_DURATION, default=None,
                         metavar="DURATION",
                         help="the app closes keep-alive connections idle this long "
                              "(default: never; Node.js uses 5s)")
    chaos = parser.add_argument_group("chaos (as the kill_pods marker)")
    chaos.add_argument("--kill-pods-at", type=_DURATION, action="append", default=[],
                       metavar="DURATION",
                       help="delete running pods this long after the ingress is up; repeatable")
    chaos.add_argument("--kill-count", type=_arg_type(count_at_least_one, "count"), default=1,
                       metavar="N", help="pods deleted at each --kill-pods-at (default 1)")
    run = parser.add_argument_group("the run")
    run.add_argument("--time-scale", type=_arg_type(positive_number, "number"), default=1.0,
                     metavar="FACTOR",
                     help="wall seconds per test second; 0.1 runs ten times faster (default 1)")
    run.add_argument("--seed", type=_arg_type(count_at_least_zero, "seed"), default=None,
                     metavar="N", help="seed for pod names and victims (default: random, "
                                       "printed so a run can be replayed)")
    run.add_argument("--duration", type=_POSITIVE_DURATION, default=None, metavar="DURATION",
                     help="stop after this long (default: run until Ctrl-C)")
    run.add_argument("--port", type=_arg_type(_port, "port"), default=0, metavar="PORT",
                     help="ALB port on 127.0.0.1 (default: an ephemeral one)")
    run.add_argument("--events", default=None, metavar="FILE",
                     help="also write the events as JSON lines to FILE ('-': stdout, in place "
                          "of the human-readable lines)")
    run.add_argument("--quiet", action="store_true",
                     help="print only the 'ingress: <url>' line on stdout")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Parse and cross-check the command line; exits with status 2 and a message if bad."""
    parser = build_parser()
    args = parser.parse_args(argv)
    late = [at for at in args.kill_pods_at if args.duration is not None and at >= args.duration]
    if late:
        parser.error(f"argument --kill-pods-at: {format_seconds(late[0])} is not before "
                     f"--duration {format_seconds(args.duration)}; that kill would never fire")
    return Options(
        mode=args.mode,
        deployment=DeploymentSpec(replicas=args.replicas, nodes=args.nodes,
                                  prestop_sleep=args.prestop_sleep,
                                  grace_period=args.grace_period, on_sigterm=args.on_sigterm,
                                  keepalive_timeout=args.keepalive_timeout),
        time_scale=args.time_scale,
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000),
        kill_at=tuple(sorted(args.kill_pods_at)),
        kill_count=args.kill_count,
        duration=args.duration,
        events=args.events,
        quiet=args.quiet,
        port=args.port,
    )


# --- output ---------------------------------------------------------------------------------------


class Stdout:
    """Line-at-a-time stdout that survives its reader going away (``| head -1``): the
    simulator keeps serving the clients that read the URL."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.gone = False

    def line(self, text: str) -> None:
        if self.gone:
            return
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            self.gone = True
            # Point the descriptor at /dev/null so the interpreter's final flush stays quiet.
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.stream.fileno())
                os.close(devnull)


class Timeline:
    """Every event of the run on one clock, in test seconds from the moment the ingress is up.

    Events that happen before that moment (provisioning) are held back, so that the first line
    on stdout is the URL, and written once the clock starts.
    """

    def __init__(self, time_scale: float, sinks: Sequence[Callable[[dict[str, Any]], None]]
                 ) -> None:
        self.time_scale = time_scale
        self.sinks = sinks
        self.zero: float | None = None
        self.muted = False  # set at shutdown: the teardown is not part of the story
        self._held: list[tuple[float, str, str, str, str]] = []

    def record(self, source: str, kind: str, subject: str, message: str) -> None:
        stamped = (time.monotonic(), source, kind, subject, message)
        if self.zero is None:
            self._held.append(stamped)
        else:
            self._write(*stamped)

    def record_simulator(self, source: str, kind: str, subject: str, message: str) -> None:
        """The simulator's ``emit``. Silent once shutdown began: a Ctrl-C in a terminal also
        reaches the pod processes, and their exits are not crashes worth reporting."""
        if not self.muted:
            self.record(source, kind, subject, message)

    def start(self) -> float:
        """Make now test second 0 and write what was held back."""
        self.zero = time.monotonic()
        held, self._held = self._held, []
        for stamped in held:
            self._write(*stamped)
        return self.zero

    def _write(self, t: float, source: str, kind: str, subject: str, message: str) -> None:
        assert self.zero is not None
        event = {"t": round((t - self.zero) / self.time_scale, 4), "source": source,
                 "kind": kind, "subject": subject, "message": message}
        for sink in self.sinks:
            sink(event)


def human_line(event: dict[str, Any]) -> str:
    t = event["t"] if abs(event["t"]) >= 0.005 else 0.0  # no "-0.00"
    return f"{t:8.2f}  {event['source']:<10} {event['message']}"


def json_line(event: dict[str, Any]) -> str:
    return json.dumps(event)


def _line_sink(write: Callable[[str], None], render: Callable[[dict[str, Any]], str]
               ) -> Callable[[dict[str, Any]], None]:
    return lambda event: write(render(event))


def _file_writer(stream: IO[str]) -> Callable[[str], None]:
    def write(text: str) -> None:
        stream.write(text + "\n")
        stream.flush()  # a reader tailing the file (or a killed run) sees every event

    return write


def make_sinks(options: Options, stdout: Stdout, events_file: IO[str] | None
               ) -> list[Callable[[dict[str, Any]], None]]:
    sinks = []
    if options.events == "-":
        sinks.append(_line_sink(stdout.line, json_line))
    elif not options.quiet:
        sinks.append(_line_sink(stdout.line, human_line))
    if events_file is not None:
        sinks.append(_line_sink(_file_writer(events_file), json_line))
    return sinks


# --- the run --------------------------------------------------------------------------------------


class StopRequest:
    """Why the run should end: a signal, set from the event loop's signal handlers."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    async def wait(self, timeout: float | None, timeout_reason: str) -> str:
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except asyncio.TimeoutError:
            return timeout_reason
        return self.reason


def kill_pods(cluster: Cluster, count: int, rng: random.Random, timeline: Timeline) -> None:
    """Delete ``count`` running pods chosen with the seeded RNG, as the plugin's kill_pods
    does: the pods listed in creation order, ``rng.sample`` of them."""
    running = [pod for pod in cluster.pods.values() if pod.running]
    victims = rng.sample(running, min(count, len(running)))
    if len(victims) < count:
        timeline.record("chaos", "kill_pods", "kubia",
                        f"kill_pods: {count} pods asked for, only {len(running)} running")
    grace = format_seconds(cluster.spec.grace_period)
    for pod in victims:
        timeline.record("chaos", "kill_pods", pod.name,
                        f"kill_pods: deleting pod {pod.name} on {pod.node} (grace {grace})")
        cluster.delete_pod(pod.name, None, False)


async def run_chaos(options: Options, cluster: Cluster, timeline: Timeline, zero: float) -> None:
    # An RNG of its own, so victims do not depend on how much traffic kube-proxy has seen.
    rng = random.Random(options.seed)
    for at in options.kill_at:
        await asyncio.sleep(max(0.0, zero + options.wall(at) - time.monotonic()))
        kill_pods(cluster, options.kill_count, rng, timeline)


def describe(options: Options, url: str) -> str:
    spec = options.deployment
    chaos = ", ".join(format_seconds(at) for at in options.kill_at)
    chaos_text = f", kill_pods x{options.kill_count} at {chaos}" if chaos else ""
    until = format_seconds(options.duration) if options.duration else "Ctrl-C"
    return (f"ingress {url}: target type {options.mode}, {spec.replicas} replicas on "
            f"{spec.nodes} nodes, preStop {format_seconds(spec.prestop_sleep)}, grace "
            f"{format_seconds(spec.grace_period)}, {spec.on_sigterm} on SIGTERM{chaos_text}; "
            f"seed {options.seed}, time scale {options.time_scale:g}; runs until {until}")


async def serve(options: Options, stdout: Stdout, timeline: Timeline) -> int:
    loop = asyncio.get_running_loop()
    stop = StopRequest()

    def on_signal(name: str) -> None:
        timeline.muted = True  # at once: a terminal's Ctrl-C is reaching the pods right now
        stop.set(f"{name} received")

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signal.Signals(signum).name)
    timings = SimTimings(time_scale=options.time_scale)
    service = ServiceStack(options.mode, options.deployment, timings, options.seed,
                         timeline.record_simulator, port=options.port or 0)
    try:
        try:
            await service.start()
        except (OSError, RuntimeError) as exc:
            print(f"{PROG}: error: the simulated ingress could not start: {exc}",
                  file=sys.stderr)
            return EXIT_FAILED
        await run_until_stopped(options, service, stdout, timeline, stop)
    finally:
        timeline.muted = True
        await service.close()
    return EXIT_OK


async def run_until_stopped(options: Options, service: ServiceStack, stdout: Stdout,
                            timeline: Timeline, stop: StopRequest) -> None:
    stdout.line(f"ingress: {service.url}")  # first, before the held-back events
    zero = timeline.start()
    timeline.record("sim", "sim.started", "ingress", describe(options, service.url))
    chaos = asyncio.get_running_loop().create_task(
        run_chaos(options, service.cluster, timeline, zero))
    duration = options.duration
    reason = await stop.wait(None if duration is None else options.wall(duration),
                             f"--duration {format_seconds(duration or 0)} reached")
    timeline.muted = True
    chaos.cancel()
    await asyncio.gather(chaos, return_exceptions=True)
    timeline.record("sim", "sim.stopping", "ingress",
                    f"stopping ({reason}): stopping every pod, closing every socket")


def open_events(options: Options) -> IO[str] | None:
    if options.events in (None, "-"):
        return None
    try:
        return open(options.events, "w", encoding="utf-8")  # main() closes it
    except OSError as exc:
        build_parser().error(f"argument --events: cannot write {options.events!r}: "
                             f"{exc.strerror}")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    events_file = open_events(options)
    stdout = Stdout(sys.stdout)
    timeline = Timeline(options.time_scale, make_sinks(options, stdout, events_file))
    raise_fd_limit()
    try:
        return asyncio.run(serve(options, stdout, timeline))
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place: nothing ran
        return EXIT_OK
    finally:
        if events_file is not None:
            events_file.close()


if __name__ == "__main__":
    sys.exit(main())
