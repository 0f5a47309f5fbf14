"""``ingress-sim``: the simulated ingress on its own, for any HTTP client (curl, wrk, a browser).

Runs one simulated service (pods as processes, kube-proxy, an ALB with target type ``ip`` or
``instance``) through the same parts the plugin uses: the ``sim`` backend
(:class:`~.client.SimBackend`, which starts the simulator as a process of its own), a
:class:`~...backends.base.ProvisionRequest` built from the options, and the chaos schedule
(:class:`~...chaos.Chaos`, :class:`~...chaos.ChaosSchedule`) on a :class:`~...timeline.Timeline`.
It prints where its ALB listens, optionally kills pods on a schedule, and prints every event of
the simulation as it reaches the command::

    $ ingress-sim --mode ip --kill-pods-at 5s --duration 25s
    ingress: http://127.0.0.1:41375
       -0.03  cluster    pod kubia-x1k9q created on node-1, serving at 127.0.0.1:40021
       ...
        5.00  chaos      kill_pods: deleting pod kubia-x1k9q on node-1 (the pod's grace period)

The first line on stdout is ``ingress: <url>``, so a script can read it and aim its load there.
With ``--events -`` stdout carries only the events, one JSON object a line with the field
names of the plugin's JSON report (``at``, ``source``, ``kind``, ``subject``, ``message``), and
the ``ingress: <url>`` line goes to stderr. Times (``at``) are test seconds from the moment the
ingress is up (provisioning happened just before it, at negative times); ``--time-scale`` turns
test seconds into wall seconds for every simulated timing, the chaos offsets and ``--duration``
alike. Events are written in the order they reach the command: the simulator's in the order it
reported them, the chaos actions' as they are carried out.

The run ends after ``--duration``, or on Ctrl-C or SIGTERM: at any moment once the command has
taken the signals (the console script takes them before it imports this module, see
``ingress_sim.py``; ``python -m`` once :func:`main` runs), while the simulator starts too, and
more of them while the run stops change nothing. Every pod process and the simulator are
stopped, every socket closed, before the process exits.

Exit codes: 0; 1 if the simulated ingress could not start, or if a chaos action could not be
carried out (fewer running pods than ``--kill-count``, when the replicas a kill took are not
back by the next one: said on stderr when it happens; the
later actions are cancelled and the ingress serves on until the end of the run); 2 for a usage
error; 130 (SIGINT) or 143 (SIGTERM) if the run was stopped before the ingress was up (after
the ``ingress: <url>`` line, stopping is the normal end of a run: 0).

This module never imports pytest: it shares the plugin's backend and chaos, not the plugin.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from ...base.backend import Capability, ProvisionRequest, Service
from ...base.clock import TIME_SCALE, TestClock
from ...base.errors import ChaosError, IngressChaosError
from ...base.events import Event, timeline_line
from ...base.specs import (
    DEFAULT_MODE,
    MODES,
    SIGTERM_BEHAVIOURS,
    AlbSpec,
    ChaosSpec,
    KillPods,
    ServiceSpec,
    field_parser,
)
from ...base.stopsignals import StopSignals
from ...base.units import (
    DURATION_FORMS,
    Count,
    argparse_type,
    count_at_least_zero,
    duration,
    format_seconds,
    positive_duration,
)
from ...core.chaos import Chaos, ChaosSchedule
from ...core.timeline import Timeline
from ...settings.options import MAX_SEED
from .spec import SimSpec

if TYPE_CHECKING:  # imported by Run.run(): see there
    from .client import SimBackend, SimService

PROG = "ingress-sim"
EXIT_OK, EXIT_FAILED = 0, 1  # argparse itself exits 2 on a usage error
EXIT_SIGNALLED = 128  # plus the signal's number: stopped before the ingress was up
# How long (wall seconds) provisioning may take before the backend says what it saw; a signal
# ends the wait at once.
PROVISION_TIMEOUT = 120.0



# --- command line -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """The validated command line. Every duration is in test seconds."""

    mode: str
    service: ServiceSpec
    nodes: int
    time_scale: float
    seed: int
    kill_at: tuple[float, ...]
    kill_count: int
    duration: float | None
    events: str | None
    quiet: bool
    port: int

    def chaos(self) -> list[ChaosSpec]:
        return [KillPods(at=at, count=self.kill_count) for at in self.kill_at]


def _port(value: object) -> int:
    port = count_at_least_zero(value)
    if port > 65535:
        raise ValueError(f"expected a port number from 0 to 65535, got {value!r}")
    return port


_DURATION = argparse_type(duration, "duration")
_POSITIVE_DURATION = argparse_type(positive_duration, "duration")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run the simulated ingress (an AWS ALB in front of a small cluster) on "
                    "127.0.0.1 until --duration or Ctrl-C, and point any HTTP client at it.",
        epilog=f"Durations: {DURATION_FORMS}, in test seconds (see --time-scale). The first "
               "line on stdout is 'ingress: <url>' (on stderr with --events -); event lines "
               "follow. Exit status 1: the ingress could not start, or a chaos action could "
               "not be carried out; 130 (143): Ctrl-C (SIGTERM) before the ingress was up.")
    service = parser.add_argument_group("the sample service (as the sample_service marker)")
    service.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                         help=f"ALB target type (default {DEFAULT_MODE})")
    service.add_argument("--replicas", type=argparse_type(field_parser(ServiceSpec, "replicas"),
                                                      "count"),
                         default=3, metavar="N", help="pods of the sample app (default 3)")
    service.add_argument("--nodes", type=argparse_type(field_parser(SimSpec, "nodes"), "count"),
                         default=3, metavar="N", help="nodes the pods are spread over (default 3)")
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
    chaos.add_argument("--kill-count", type=argparse_type(field_parser(KillPods, "count"), "count"),
                       default=1, metavar="N",
                       help="pods deleted at each --kill-pods-at (default 1); fewer running pods "
                            "fail the run (exit status 1)")
    run = parser.add_argument_group("the run")
    run.add_argument("--time-scale", type=argparse_type(TIME_SCALE, "number"), default=1.0,
                     metavar="FACTOR",
                     help="wall seconds per test second; 0.1 runs ten times faster (default 1)")
    run.add_argument("--seed", type=argparse_type(Count(0, MAX_SEED), "seed"), default=None,
                     metavar="N", help="seed for pod names and victims (default: random, "
                                       "printed so a run can be replayed)")
    run.add_argument("--duration", type=_POSITIVE_DURATION, default=None, metavar="DURATION",
                     help="stop after this long (default: run until Ctrl-C)")
    run.add_argument("--port", type=argparse_type(_port, "port"), default=0, metavar="PORT",
                     help="ALB port on 127.0.0.1 (default: an ephemeral one)")
    run.add_argument("--events", default=None, metavar="FILE",
                     help="also write the events as JSON lines to FILE ('-': stdout, in place "
                          "of the human-readable lines, and the 'ingress: <url>' line goes to "
                          "stderr)")
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
    if args.kill_pods_at and args.kill_count > args.replicas:
        # The ReplicaSet brings the replicas back between kills, so each kill sees at most
        # --replicas pods; more could never be done.
        parser.error(f"argument --kill-count: {args.kill_count} is more than --replicas "
                     f"{args.replicas}: at most {args.replicas} pods can be killed at once")
    return Options(
        mode=args.mode,
        service=ServiceSpec(replicas=args.replicas, prestop_sleep=args.prestop_sleep,
                            grace_period=args.grace_period, on_sigterm=args.on_sigterm,
                            keepalive_timeout=args.keepalive_timeout),
        nodes=args.nodes,
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


class Output:
    """The command's stdout and stderr, written a whole line at a time from any thread (events
    arrive on the simulator client's reader thread, chaos on the schedule's)."""

    def __init__(self, stdout: IO[str], stderr: IO[str]) -> None:
        self._streams = {"stdout": stdout, "stderr": stderr}
        self._gone: set[str] = set()
        self._lock = threading.Lock()

    def out(self, text: str) -> None:
        self._line("stdout", text)

    def err(self, text: str) -> None:
        self._line("stderr", text)

    def _line(self, name: str, text: str) -> None:
        """Survives its reader going away (``| head -1``): the simulator keeps serving the
        clients that read the URL."""
        with self._lock:
            if name in self._gone:
                return
            stream = self._streams[name]
            try:
                stream.write(text + "\n")
                stream.flush()
            except (BrokenPipeError, ValueError):
                self._gone.add(name)
                # Point the descriptor at /dev/null so the interpreter's final flush stays quiet.
                with contextlib.suppress(OSError, ValueError):
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, stream.fileno())
                    os.close(devnull)


Sink = Callable[[dict[str, Any]], None]


class LiveTimeline(Timeline):
    """The run's timeline, as the plugin keeps it, that also writes each event as it is recorded.

    Test second 0 is the moment the ingress is up (the timeline's ``load_start``): the events
    recorded before it (provisioning) are held back and written once :meth:`start` has set it,
    after the URL line. :meth:`finish` records the last event; the teardown that follows is not
    part of the story, and its events are dropped.
    """

    def __init__(self, clock: TestClock, sinks: Sequence[Sink]) -> None:
        super().__init__(clock)
        self._sinks = sinks
        self._held: list[tuple[float, str, str, str, str]] = []
        self._finished = False
        self._writing = threading.Lock()  # events are written in the order they are recorded

    def record(self, stamp: float, source: str, kind: str, subject: str, message: str) -> None:
        with self._writing:
            if self._finished:
                return
            super().record(stamp, source, kind, subject, message)
            if self.load_start is None:
                self._held.append((stamp, source, str(kind), subject, message))
            else:
                self._write(stamp, source, str(kind), subject, message)

    def start(self, announce: Callable[[], None]) -> float:
        """Make now test second 0: ``announce()`` (the URL line), then what was held back."""
        with self._writing:
            self.load_start = self.clock.now()
            announce()
            held, self._held = self._held, []
            for event in held:
                self._write(*event)
            return self.load_start

    def finish(self, source: str, kind: str, subject: str, message: str) -> None:
        """Record the last event and drop every later one."""
        with self._writing:
            if not self._finished and self.load_start is not None:
                # Stamped inside the lock: no event written before it has a later time.
                t = self.clock.now()
                super().record(t, source, kind, subject, message)
                self._write(t, source, kind, subject, message)
            self._finished = True

    def _write(self, t: float, source: str, kind: str, subject: str, message: str) -> None:
        event = dataclasses.asdict(Event(round(self.offset(t), 4), source, kind, subject,
                                         message))
        for sink in self._sinks:
            sink(event)


def human_line(event: dict[str, Any]) -> str:
    return timeline_line(event["at"], event["source"], event["message"])


def json_line(event: dict[str, Any]) -> str:
    return json.dumps(event)


def _line_sink(write: Callable[[str], None], render: Callable[[dict[str, Any]], str]) -> Sink:
    return lambda event: write(render(event))


def _file_writer(stream: IO[str]) -> Callable[[str], None]:
    def write(text: str) -> None:
        stream.write(text + "\n")
        stream.flush()  # a reader tailing the file (or a killed run) sees every event

    return write


def make_sinks(options: Options, output: Output, events_file: IO[str] | None) -> list[Sink]:
    sinks = []
    if options.events == "-":
        sinks.append(_line_sink(output.out, json_line))
    elif not options.quiet:
        sinks.append(_line_sink(output.out, human_line))
    if events_file is not None:
        sinks.append(_line_sink(_file_writer(events_file), json_line))
    return sinks


# --- the run --------------------------------------------------------------------------------------


class ReportingChaos(Chaos):
    """The plugin's chaos, saying on stderr the moment an action cannot be carried out (the
    schedule then cancels the later ones and keeps the error for the end of the run)."""

    def __init__(self, service: Service, timeline: Timeline, rng: random.Random,
                 capabilities: frozenset[Capability], *,
                 report: Callable[[ChaosSpec, Exception], None]) -> None:
        super().__init__(service, timeline, rng, capabilities)
        self._report = report

    def run(self, action: ChaosSpec) -> None:
        try:
            super().run(action)
        except Exception as exc:
            self._report(action, exc)
            raise


def describe(options: Options, url: str) -> str:
    spec = options.service
    chaos = ", ".join(format_seconds(at) for at in options.kill_at)
    chaos_text = f", kill_pods x{options.kill_count} at {chaos}" if chaos else ""
    until = format_seconds(options.duration) if options.duration else "Ctrl-C"
    return (f"ingress {url}: target type {options.mode}, {spec.replicas} replicas on "
            f"{options.nodes} nodes, preStop {format_seconds(spec.prestop_sleep)}, grace "
            f"{format_seconds(spec.grace_period)}, {spec.on_sigterm} on SIGTERM{chaos_text}; "
            f"seed {options.seed}, time scale {options.time_scale:g}; runs until {until}")


class Run:
    """One run of the command, from starting the simulator to stopping it."""

    def __init__(self, options: Options, signals: StopSignals, output: Output,
                 events_file: IO[str] | None) -> None:
        self.options = options
        self.signals = signals
        self.output = output
        self.clock = TestClock(options.time_scale)
        self.timeline = LiveTimeline(self.clock, make_sinks(options, output, events_file))
        self.actions = sorted(options.chaos(), key=lambda action: action.at)  # as scheduled
        self.chaos_failure: str | None = None

    def error(self, message: str) -> None:
        self.output.err(f"{PROG}: error: {message}")

    def stopped_early(self) -> int:
        """A signal came before the URL line: the run never happened, and the exit status
        says so as a shell would (128 + the signal's number: 130 for Ctrl-C)."""
        self.output.err(f"{PROG}: stopped ({self.signals.reason}) before the ingress was up")
        return EXIT_SIGNALLED + (self.signals.signum or 0)

    def run(self) -> int:
        # Imported only now, with the signal handlers in place: the client (and asyncio, which
        # it imports) is the bulk of the command's start-up time, in which a Ctrl-C would still
        # have been Python's KeyboardInterrupt.
        from .client import SimBackend

        if self.signals.reason is not None:
            return self.stopped_early()
        try:
            backend = SimBackend(time_scale=self.options.time_scale)
        except OSError as exc:
            self.error(f"the simulator could not start: {exc}")
            return EXIT_FAILED
        try:
            service = self.provision(backend)
            if service is None:
                return self.stopped_early() if self.signals.reason is not None else EXIT_FAILED
            try:
                self.serve(backend, service)
            finally:
                with contextlib.suppress(IngressChaosError):  # the simulator stops it anyway
                    service.teardown()
        finally:
            self.close(backend)
        if self.chaos_failure is not None:
            self.output.err(f"{PROG}: exit status 1, a chaos action failed: "
                            f"{self.chaos_failure}")
            return EXIT_FAILED
        return EXIT_OK

    def close(self, backend: SimBackend) -> None:
        """Stop the simulator, which stops every pod before it exits; close() waits for it.
        Idempotent."""
        try:
            backend.close()
        except IngressChaosError as exc:  # it stops anyway once this process has exited
            self.error(f"the simulator did not stop cleanly: {exc}")

    def provision(self, backend: SimBackend) -> SimService | None:
        """The service, once in its steady state; None if the run is over already (a signal
        came first, or provisioning failed: said on stderr)."""
        options = self.options
        request = ProvisionRequest(
            test=PROG, mode=options.mode, service=options.service, alb=AlbSpec(),
            extras={"sim": SimSpec(nodes=options.nodes)}, seed=options.seed,
            events=self.timeline.record, timeout=PROVISION_TIMEOUT)
        outcome: list[SimService | BaseException] = []

        def provision() -> None:  # on a thread, so that the main thread can wait for signals
            try:
                outcome.append(backend.provision(request, port=options.port))
            except BaseException as exc:
                outcome.append(exc)
            finally:
                self.signals.wake()

        worker = threading.Thread(target=provision, name="ingress-sim-provision", daemon=True)
        worker.start()
        if self.signals.wait(until=lambda: bool(outcome)):
            # Stopping the simulator ends the provisioning in progress, with its pods.
            self.close(backend)
            worker.join(timeout=30)
            return None
        result = outcome[0]
        if isinstance(result, (IngressChaosError, OSError)):
            self.error(f"the simulated ingress could not start: {result}")
            return None
        if isinstance(result, BaseException):
            raise result
        return result

    def serve(self, backend: SimBackend, service: SimService) -> None:
        """From the URL line to the end of the run: --duration, or a signal."""
        options, timeline = self.options, self.timeline
        announce = self.output.err if options.events == "-" else self.output.out
        zero = timeline.start(lambda: announce(f"ingress: {service.url}"))
        timeline.record(self.clock.now(), "sim", "sim.started", "ingress",
                        describe(options, service.url))
        # Victims come from an RNG of their own, seeded: the same seed replays the same run.
        chaos = ReportingChaos(service, timeline, random.Random(options.seed),
                               backend.capabilities, report=self.chaos_failed)
        schedule = ChaosSchedule(chaos, self.actions)
        schedule.start(zero)
        deadline = None if options.duration is None else zero + self.clock.wall(options.duration)
        try:
            if self.signals.wait(deadline=deadline):
                reason = str(self.signals.reason)
            else:
                reason = f"--duration {format_seconds(options.duration or 0)} reached"
        finally:
            try:
                schedule.stop()
            except ChaosError as exc:  # an action's failure was said when it happened
                if self.chaos_failure is None:
                    self.chaos_failure = str(exc)
                    self.error(str(exc))
        timeline.finish("sim", "sim.stopping", "ingress",
                        f"stopping ({reason}): stopping every pod, closing every socket")

    def chaos_failed(self, action: ChaosSpec, exc: Exception) -> None:
        what = f"{action.kind} at {format_seconds(action.at)} could not be carried out: {exc}"
        if self.chaos_failure is None:
            self.chaos_failure = what
        position = next(i for i, scheduled in enumerate(self.actions) if scheduled is action)
        later = len(self.actions) - position - 1
        later_text = "" if not later else \
            f"; {later} later chaos action{'s are' if later > 1 else ' is'} cancelled"
        self.error(f"{what}{later_text}; the ingress serves on until the end of the run, which "
                   "will exit with status 1")


def open_events(options: Options) -> IO[str] | None:
    if options.events in (None, "-"):
        return None
    try:
        return open(options.events, "w", encoding="utf-8")  # main() closes it
    except OSError as exc:
        build_parser().error(f"argument --events: cannot write {options.events!r}: "
                             f"{exc.strerror}")


def main(argv: Sequence[str] | None = None, signals: StopSignals | None = None) -> int:
    """The command. Returns its exit status; the process is meant to exit right after.
    ``signals``: taken already, before this module was imported (``ingress_sim.py``)."""
    if signals is None:
        signals = StopSignals()  # first: from now on a signal only asks the run to stop
    try:
        options = parse_args(argv)
        events_file = open_events(options)
        try:
            return Run(options, signals, Output(sys.stdout, sys.stderr), events_file).run()
        finally:
            if events_file is not None:
                events_file.close()
    finally:
        signals.block()


if __name__ == "__main__":
    sys.exit(main())
