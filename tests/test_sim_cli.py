"""``ingress-sim`` (``python -m pytest_ingress_chaos.backends.sim``) as a user runs it: a real
process, read from its stdout and its --events file, aimed at with an HTTP client of its own.

Every run uses ``--time-scale 0.2`` (five times faster than real): offsets on the command line
and in the events are test seconds, waits in the test are wall seconds (``wall()``). The
simulator and every pod run in sessions of their own (a terminal's Ctrl-C reaches the command
only), so each sim's processes are found by a tag in their environment, which they all
inherit: a test checks that none outlives the command, and the fixture stops any a failed test
left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from .processtree import ProcessTree

SIM = [sys.executable, "-m", "pytest_ingress_chaos.backends.sim"]
SCALE = 0.2
WAIT = 30.0  # wall seconds any single step may take on a loaded two-core machine
URL_LINE = re.compile(r"^ingress: (http://127\.0\.0\.1:(\d+))$")
POD_ADDRESS = re.compile(r"serving at 127\.0\.0\.1:(\d+)")
EVENT_KEYS = {"at", "source", "kind", "subject", "message"}  # as in the plugin's JSON report
TAG = "INGRESS_SIM_TEST_TAG"  # in the environment of a sim and of every process it starts


def wall(test_seconds: float) -> float:
    return test_seconds * SCALE


# --- the process under test -----------------------------------------------------------------------


class Sim:
    """One ``ingress-sim`` process; stdout lines arrive on a queue as they are printed."""

    def __init__(self, args: list[str], workdir: Path, command: list[str] = SIM) -> None:
        self.events_path = workdir / f"events-{id(self)}.jsonl"
        self._stderr: IO[bytes] = (workdir / f"stderr-{id(self)}.txt").open("w+b")
        self.tag = uuid.uuid4().hex
        self.process = subprocess.Popen(
            [*command, "--time-scale", str(SCALE), "--events", str(self.events_path), *args],
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, start_new_session=True,
            env={**os.environ, TAG: self.tag})
        self.stdout: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.lines: list[str] = []

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout.put(line.rstrip("\n"))
        self.stdout.put(None)

    def next_line(self, timeout: float = WAIT) -> str | None:
        try:
            line = self.stdout.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no stdout line within {timeout:g} s; stderr: {self.stderr()}")
        if line is not None:
            self.lines.append(line)
        return line

    def url(self) -> str:
        """The URL of the first stdout line, which must be ``ingress: <url>``."""
        first = self.next_line()
        assert first is not None, f"stdout closed before the first line; {self.stderr()}"
        match = URL_LINE.match(first)
        assert match, f"first line is not 'ingress: <url>': {first!r}"
        return match.group(1)

    def url_on_stderr(self) -> str:
        """The URL of the ``ingress: <url>`` line on stderr (where it goes with --events -)."""
        found: list[str] = []

        def printed() -> bool:
            self._stderr.seek(0)
            found[:] = [m.group(1) for line in self._stderr.read().decode().splitlines()
                        if (m := URL_LINE.match(line))]
            return bool(found)

        assert wait_until(printed, WAIT), f"no 'ingress: <url>' line on stderr; {self.stderr()}"
        return found[0]

    def rest_of_stdout(self) -> list[str]:
        """Every line after those read so far, once the process has closed its stdout."""
        rest = []
        while (line := self.next_line()) is not None:
            rest.append(line)
        return rest

    def signal(self, signum: int, *, group: bool = False) -> None:
        if group:  # what a terminal does on Ctrl-C: the whole foreground process group
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)  # does nothing once the process has been reaped

    def wait(self, timeout: float = WAIT) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ingress-sim still running after {timeout:g} s; {self.stderr()}")

    def stderr(self) -> str:
        self._stderr.seek(0)
        return "stderr: " + self._stderr.read().decode(errors="replace")[-3000:]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.events_path.read_text().splitlines()]

    def pod_ports(self) -> list[int]:
        return [int(m.group(1)) for e in self.events() if e["kind"] == "pod.created"
                if (m := POD_ADDRESS.search(e["message"]))]

    def close(self) -> None:
        """Stop whatever is left of the run (after a failed test)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()  # its simulator sees its pipe close, and stops its pods
                self.process.wait()
        self._reader.join(timeout=5)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._stderr.close()


StartSim = Callable[..., Sim]


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[StartSim]:
    sims: list[Sim] = []

    def start(*args: str, command: list[str] = SIM) -> Sim:
        sim = Sim(list(args), tmp_path, command)
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        sim.close()
    left = {}
    for sim in sims:
        # Polls: a killed sim's simulator and pods need a moment to see their pipe close.
        if not wait_until(lambda sim=sim: not leftovers(sim), 5.0):
            left.update(leftovers(sim))
    for pid in left:  # so that one failed test does not burden the next ones
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert left == {}, f"processes left behind: {left}"


# --- checks ---------------------------------------------------------------------------------------


def leftovers(sim: Sim) -> dict[int, str]:
    """pid -> command line of every process still running with the sim's tag in its
    environment: its simulator and pods, whatever session they are in."""
    if not Path("/proc").is_dir():
        return {}  # nowhere to look; the port checks still apply
    tag = f"{TAG}={sim.tag}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:  # a zombie's environment reads empty: only running processes match
            if tag in (entry / "environ").read_bytes().split(b"\0"):
                found[int(entry.name)] = \
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            continue
    return found


def refuses(port: int) -> bool:
    """True if nothing listens on the port (a blackholed one would time out instead)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2.0).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def wait_until(condition: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def assert_nothing_left(sim: Sim, url: str) -> None:
    ports = [int(url.rsplit(":", 1)[1]), *sim.pod_ports()]
    assert len(ports) >= 4, f"expected the ALB and 3 pods in the events: {ports}"
    assert [port for port in ports if not refuses(port)] == []
    assert leftovers(sim) == {}  # the command waited for its simulator, which waited for its pods


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["kind"] for event in events]


# --- the first line and the ingress behind it -----------------------------------------------------


def test_first_line_is_the_url_and_it_serves_kubia(start_sim: StartSim) -> None:
    sim = start_sim()
    url = sim.url()
    response = httpx.get(url, timeout=WAIT)
    assert response.status_code == 200
    assert response.text.startswith("You've hit kubia-")
    sim.signal(signal.SIGTERM)
    assert sim.wait() == 0


def test_duration_ends_the_run_and_the_events_file_has_the_timeline(start_sim: StartSim) -> None:
    sim = start_sim("--duration", "2s")
    url = sim.url()
    started = time.monotonic()
    assert sim.wait() == 0
    assert time.monotonic() - started < wall(2.0) + 5.0
    events = sim.events()
    assert all(set(event) == EVENT_KEYS for event in events), events
    seen = kinds(events)
    assert seen.count("pod.created") == 3 and seen.count("pod.ready") == 3
    assert {"endpoints.updated", "target.registered", "alb.ready", "sim.started"} <= set(seen)
    assert seen[-1] == "sim.stopping"
    times = [event["at"] for event in events]
    # Events are written as they reach the command: the simulator's in the order it reported
    # them; the command's own may cross one of them in the pipe by a few milliseconds.
    simulator = [event["at"] for event in events if event["source"] not in ("sim", "chaos")]
    assert simulator == sorted(simulator)
    # Provisioning happens before test second 0 (the URL line); the run ends at --duration.
    assert times[0] < 0 and events[seen.index("sim.started")]["at"] >= 0
    assert times[-1] == max(times)
    assert 2.0 <= times[-1] < 2.0 + 2.0 / SCALE
    assert "--duration 2s reached" in events[-1]["message"]
    assert_nothing_left(sim, url)


@pytest.mark.parametrize("mode", ["ip", "instance"])
def test_duration_ends_the_run_after_serving_requests(start_sim: StartSim, mode: str) -> None:
    """A run that served traffic while health checks went on ends at --duration too (a
    health-check loop that swallowed its cancellation once kept it running forever)."""
    # Faster than the other runs: health checks every 0.75 s, the run 3 s of wall time.
    sim = start_sim("--mode", mode, "--duration", "60s", "--time-scale", "0.05", "--quiet")
    url = sim.url()
    started = time.monotonic()
    with httpx.Client(timeout=WAIT) as client:
        for _ in range(20):
            assert client.get(url).status_code == 200
            time.sleep(0.05)
    assert sim.wait() == 0
    assert time.monotonic() - started < 60.0 * 0.05 + 5.0
    assert_nothing_left(sim, url)


@pytest.mark.parametrize(("flags", "form"), [([], "human"), (["--quiet"], "none")],
                         ids=["default", "--quiet"])
def test_what_follows_the_first_line(start_sim: StartSim, flags: list[str], form: str) -> None:
    sim = start_sim("--duration", "1s", *flags)
    sim.url()
    rest = sim.rest_of_stdout()
    assert sim.wait() == 0
    if form == "none":
        assert rest == []
    else:
        assert all(re.match(r"^ *-?\d+\.\d\d  \S+ +\S", line) for line in rest), rest
        assert any("alb" in line and "ALB listening at" in line for line in rest), rest
        assert "stopping (--duration 1s reached)" in rest[-1]


def test_events_dash_writes_only_json_lines_on_stdout(start_sim: StartSim) -> None:
    """``--events - | jq``: every stdout line is one event with the JSON report's field names;
    the ``ingress: <url>`` line goes to stderr."""
    sim = start_sim("--mode", "ip", "--kill-pods-at", "500ms", "--duration", "1s",
                    "--events", "-")  # a later --events wins over the fixture's
    url = sim.url_on_stderr()
    lines = sim.rest_of_stdout()
    assert sim.wait() == 0, sim.stderr()
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line on stdout: {line!r}")
    assert events and all(set(event) == EVENT_KEYS for event in events), lines
    assert {"pod.created", "alb.ready", "sim.started", "kill_pods", "pod.deleted",
            "sim.stopping"} <= set(kinds(events))
    started = next(event for event in events if event["kind"] == "sim.started")
    assert url in started["message"] and started["at"] >= 0
    assert events[0]["at"] < 0 and "--duration 1s reached" in events[-1]["message"]


# --- chaos ----------------------------------------------------------------------------------------


def test_kill_pods_at_deletes_pods_on_schedule(start_sim: StartSim) -> None:
    sim = start_sim("--mode", "ip", "--kill-pods-at", "2s", "--kill-pods-at", "1s",
                    "--kill-count", "2", "--duration", "4s")
    sim.url()
    assert sim.wait() == 0
    events = sim.events()
    kills = [event for event in events if event["kind"] == "kill_pods"]
    assert [event["source"] for event in kills] == ["chaos"] * 4
    slack = 0.5 / SCALE  # half a wall second
    assert all(1.0 <= kill["at"] < 1.0 + slack for kill in kills[:2]), kills
    assert all(2.0 <= kill["at"] < 2.0 + slack for kill in kills[2:]), kills
    assert max(kill["at"] for kill in kills[:2]) < min(kill["at"] for kill in kills[2:])
    assert len({kill["subject"] for kill in kills}) == 4  # a terminating pod is not re-killed
    for kill in kills:  # each on the simulator's timeline right after its chaos event
        after = events[events.index(kill):]
        about_victim = [e["kind"] for e in after if e["subject"] == kill["subject"]]
        assert "pod.deleted" in about_victim and "pod.exited" in about_victim, (kill, events)
        assert kill["message"].startswith(f"kill_pods: deleting pod {kill['subject']} on node-")


def test_the_seed_replays_the_same_pods_and_victims(start_sim: StartSim) -> None:
    args = ("--mode", "ip", "--kill-pods-at", "500ms", "--duration", "1s")
    runs = [start_sim(*args, "--seed", seed) for seed in ("4242", "4242", "4343")]
    for sim in runs:
        assert sim.wait() == 0

    def story(sim: Sim) -> list[tuple[str, str]]:
        return [(e["kind"], e["subject"]) for e in sim.events()
                if e["kind"] in ("pod.created", "kill_pods")]

    first, again, other = map(story, runs)
    assert first == again
    assert any(kind == "kill_pods" for kind, _ in first)
    assert first != other
    assert "seed 4242" in next(e["message"] for e in runs[0].events()
                               if e["kind"] == "sim.started")


@pytest.mark.parametrize("end", ["SIGTERM", "--duration"])
def test_a_chaos_action_that_cannot_be_done_fails_the_run_with_1(start_sim: StartSim,
                                                                 end: str) -> None:
    """Kills of all three replicas, eight at the same instant: each finds its predecessor's
    victims terminating, and a replacement pod takes tens of ms to start while the next kill
    follows within a few, so one of them finds fewer than three running pods (all eight
    finding three would take seven rounds of three replacements each up within a few ms).
    Said on stderr when it happens; the ingress serves on until the end of the run, which then
    exits with 1, leaving nothing behind. (More pods than --replicas at once is refused before
    the run: see BAD_INPUT.)"""
    duration = ["--duration", "4s"] if end == "--duration" else []
    kills = [arg for _ in range(8) for arg in ("--kill-pods-at", "500ms")]
    sim = start_sim("--kill-count", "3", *kills, *duration)
    url = sim.url()
    said = re.compile(r"kill_pods count=3, but only [0-2] pods are running")
    assert wait_until(lambda: said.search(sim.stderr()) is not None, WAIT), sim.stderr()
    if end == "SIGTERM":
        assert sim.process.poll() is None, "the run must go on after a failed chaos action"
        # Once the replacements of the killed pods are up, the ingress serves again.
        assert wait_until(lambda: httpx.get(url, timeout=WAIT).status_code == 200, WAIT)
        sim.signal(signal.SIGTERM)
    assert sim.wait() == 1, sim.stderr()
    assert "Traceback" not in sim.stderr()
    events = sim.events()
    assert events[-1]["kind"] == "sim.stopping"
    assert_nothing_left(sim, url)


# --- the story: ip mode costs errors, instance mode does not --------------------------------------


@dataclass(frozen=True)
class Shot:
    at: float  # scheduled send time, wall seconds after the URL line was read
    outcome: str  # "200", "502", "timeout", ...


def fire(url: str, *, rate: float, seconds: float, timeout: float) -> list[Shot]:
    """An open-model client: ``rate`` requests/s on schedule, each on a worker thread, so a
    request that hangs does not delay the next one."""
    count = round(rate * seconds)
    start = time.monotonic()
    with httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=64)) as client, \
            ThreadPoolExecutor(max_workers=48) as pool:

        def shot(at: float) -> Shot:
            try:
                response = client.get(url)
            except httpx.TimeoutException:
                return Shot(at, "timeout")
            except httpx.TransportError as exc:
                return Shot(at, type(exc).__name__)
            from_kubia = response.text.startswith("You've hit kubia-")
            if response.status_code == 200 and not from_kubia:
                return Shot(at, "200 with a foreign body")
            return Shot(at, str(response.status_code))

        futures = []
        for i in range(count):
            at = i / rate
            time.sleep(max(0.0, start + at - time.monotonic()))
            futures.append(pool.submit(shot, at))
        return [future.result() for future in futures]


@pytest.mark.parametrize("mode", ["ip", "instance"])
def test_a_pod_kill_costs_errors_in_ip_mode_and_none_in_instance_mode(start_sim: StartSim,
                                                                     mode: str) -> None:
    kill_at = 1.0  # test seconds: 0.2 s of wall time into the client's 3 s
    sim = start_sim("--mode", mode, "--kill-pods-at", f"{kill_at:g}s")
    shots = fire(sim.url(), rate=40, seconds=3.0, timeout=0.5)
    sim.signal(signal.SIGINT)
    assert sim.wait() == 0
    events = sim.events()
    kills = [e for e in events if e["kind"] == "kill_pods"]
    assert len(kills) == 1, events
    victim = kills[0]["subject"]
    exited = next(e for e in events if e["kind"] == "pod.exited" and e["subject"] == victim)
    assert exited["at"] < 3.0 / SCALE, "the pod must die while the client is still sending"
    outcomes = Counter(shot.outcome for shot in shots)
    failed = [shot for shot in shots if shot.outcome != "200"]
    if mode == "instance":
        assert failed == [], outcomes  # kube-proxy routes around the pod before it dies
        return
    # ip: the ALB keeps sending to the dead pod's address until the controller deregisters it
    # 10 test seconds later: first refused (502), then blackholed (timeouts).
    assert len(failed) >= 5, outcomes
    assert set(outcomes) <= {"200", "502", "504", "timeout"}, outcomes
    assert failed[0].at >= wall(kill_at) - 0.05, f"errors before the kill: {failed[0]}"
    assert failed[-1].at <= wall(kill_at + 10.0) + 0.5, f"errors after deregistration: {failed}"


# --- ending the run: signals, and nothing left behind ---------------------------------------------


@pytest.mark.parametrize(("signum", "group"), [(signal.SIGINT, False), (signal.SIGTERM, False),
                                               (signal.SIGINT, True)],
                         ids=["SIGINT", "SIGTERM", "Ctrl-C-to-the-process-group"])
def test_a_signal_ends_the_run_with_0_and_leaves_nothing(start_sim: StartSim, signum: int,
                                                         group: bool) -> None:
    sim = start_sim("--mode", "ip", "--kill-pods-at", "500ms")
    url = sim.url()
    assert httpx.get(url, timeout=WAIT).status_code == 200
    assert wait_until(lambda: "address.released" in kinds(sim.events()), WAIT)  # a blackhole
    sim.signal(signum, group=group)
    assert sim.wait() == 0, sim.stderr()
    assert "Traceback" not in sim.stderr()
    name = signal.Signals(signum).name
    assert sim.events()[-1]["message"].startswith(f"stopping ({name} received)")
    assert_nothing_left(sim, url)  # the released address too: the blackhole socket is closed


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signals_during_shutdown_change_nothing(start_sim: StartSim, signum: int) -> None:
    """An impatient user hits Ctrl-C again and again while the run stops: no traceback, exit 0,
    nothing left behind."""
    sim = start_sim("--mode", "ip", "--kill-pods-at", "500ms")
    url = sim.url()
    assert wait_until(lambda: "pod.exited" in kinds(sim.events()), WAIT)
    deadline = time.monotonic() + WAIT
    sent = 0
    while sim.process.poll() is None and time.monotonic() < deadline:
        sim.signal(signum)  # the first one starts the shutdown, the rest land in it
        sent += 1
        time.sleep(0.002)
    assert sim.wait() == 0, sim.stderr()
    assert sent > 2
    assert "Traceback" not in sim.stderr() and "Exception" not in sim.stderr(), sim.stderr()
    assert sim.events()[-1]["kind"] == "sim.stopping"
    assert_nothing_left(sim, url)


def console_script(directory: Path) -> list[str]:
    """The ``ingress-sim`` command as pip installs it: a script that imports the entry point
    pyproject.toml declares and calls it. Written here, since the script installed next to
    Python may come from another checkout."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    entry = tomllib.loads(pyproject.read_text())["project"]["scripts"]["ingress-sim"]
    module, _, function = entry.partition(":")
    script = directory / "ingress-sim"
    script.write_text(  # pip's template for console scripts
        f"import re\nimport sys\nfrom {module} import {function}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({function}())\n")
    return [sys.executable, str(script)]


def catches(pid: int, signum: int) -> bool:
    """Whether the process has a handler for the signal now (Linux: SigCgt in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signum - 1)))


# When, during start-up, the signal is sent. Python itself catches SIGINT from the start (and
# raises KeyboardInterrupt), SIGTERM only once the command has installed its handler: the first
# moment at which the command can promise a clean exit.
START_UP_POINTS = {
    "as soon as it takes signals": ("handler", 0.0),
    "50 ms later, while it imports": ("handler", 0.05),
    "once the simulator has started": ("simulator", 0.0),
    "once a pod has started": ("pod", 0.0),
}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads SigCgt in /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("point", list(START_UP_POINTS))
@pytest.mark.parametrize("how", ["console script", "python -m"])
def test_a_signal_during_start_up_exits_128_plus_its_number_with_one_line(
        start_sim: StartSim, tmp_path: Path, how: str, point: str, signum: int) -> None:
    """Ctrl-C (or SIGTERM) before the ingress is up: no traceback, no URL line, one line on
    stderr, exit status 130 (143), and the simulator and every pod it had started are gone."""
    command = console_script(tmp_path) if how == "console script" else SIM
    sim = start_sim("--replicas", "8", command=command)  # eight pods: time to land in between
    tree = ProcessTree(sim.process.pid)
    waits_for, delay = START_UP_POINTS[point]
    if waits_for == "handler":
        reached = wait_until(lambda: catches(sim.process.pid, signal.SIGTERM)
                             or sim.process.poll() is not None, WAIT, every=0.001)
    else:
        reached = tree.wait_until(lambda: tree.count(waits_for) > 0
                                  or sim.process.poll() is not None, WAIT)
    assert reached and sim.process.poll() is None, sim.stderr()
    time.sleep(delay)
    sim.signal(signum)
    name = signal.Signals(signum).name
    assert sim.wait() == 128 + signum, sim.stderr()
    assert sim.rest_of_stdout() == []
    assert sim.stderr().removeprefix("stderr: ").splitlines() == [
        f"ingress-sim: stopped ({name} received) before the ingress was up"]
    tree.sample()
    tree.assert_all_gone(within=0.0)  # it waited for its simulator, which waited for its pods
    assert leftovers(sim) == {}


def test_the_console_script_takes_signals_before_it_imports_the_package() -> None:
    """What runs before the command's signal handler is Python's start-up and this import:
    Ctrl-C there is Python's own KeyboardInterrupt, so it must stay short."""
    code = ("import sys; import pytest_ingress_chaos.ingress_sim; "
            "print(sorted(m for m in sys.modules if m.startswith('pytest_ingress_chaos')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=WAIT, check=True)
    # base/__init__.py is a docstring only: importing the package costs nothing more.
    assert done.stdout.strip() == str(sorted(["pytest_ingress_chaos",
                                              "pytest_ingress_chaos.ingress_sim",
                                              "pytest_ingress_chaos.base",
                                              "pytest_ingress_chaos.base.stopsignals"]))


def test_pods_outlive_no_sigkilled_sim(start_sim: StartSim) -> None:
    sim = start_sim()
    url = sim.url()
    sim.signal(signal.SIGKILL)
    assert sim.wait() == -signal.SIGKILL
    # The simulator sees its stdin close and stops; the pods see theirs close and exit.
    ports = [int(url.rsplit(":", 1)[1]), *sim.pod_ports()]
    assert wait_until(lambda: all(refuses(port) for port in ports), 10.0), ports
    assert wait_until(lambda: not leftovers(sim), 10.0), leftovers(sim)


# --- options --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_port_chooses_the_alb_port(start_sim: StartSim) -> None:
    port = free_port()
    sim = start_sim("--port", str(port), "--duration", "1s")
    assert sim.url() == f"http://127.0.0.1:{port}"
    assert sim.wait() == 0


def test_a_port_in_use_is_an_error_not_a_traceback(start_sim: StartSim) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        sim = start_sim("--port", str(taken.getsockname()[1]))
        assert sim.wait() == 1
    assert sim.rest_of_stdout() == []
    assert "could not start" in sim.stderr() and "Traceback" not in sim.stderr()
    assert leftovers(sim) == {}  # the pods it had started are gone


BAD_INPUT = [
    (["--kill-pods-at", "soon"], "--kill-pods-at", '"250ms", "5s", "1m" or a number'),
    (["--mode", "nlb"], "--mode", "'ip', 'instance'"),
    (["--duration=-1s"], "--duration", '"250ms", "5s", "1m" or a number'),
    (["--duration", "0"], "--duration", "> 0"),
    (["--time-scale", "fast"], "--time-scale", "expected a number"),
    (["--replicas", "0"], "--replicas", "whole number from 1 to 100"),
    (["--on-sigterm", "drop"], "--on-sigterm", "'exit', 'drain', 'ignore'"),
    (["--keepalive-timeout", "0s"], "--keepalive-timeout", "> 0"),
    (["--kill-pods-at", "5s", "--duration", "2s"], "--kill-pods-at", "--duration 2s"),
    (["--kill-pods-at", "5s", "--kill-count", "4"], "--kill-count",
     "4 is more than --replicas 3: at most 3 pods can be killed at once"),
    (["--port", "65536"], "--port", "0 to 65535"),
    (["--seed", "-1"], "--seed", "whole number from 0 to 9007199254740991"),
    # Upper bounds, the markers' own: a run of a thousand pod processes would eat the machine.
    (["--replicas", "1000"], "--replicas", "whole number from 1 to 100"),
    (["--nodes", "1000"], "--nodes", "whole number from 1 to 100"),
    (["--kill-count", "1000"], "--kill-count", "whole number from 1 to 100"),
    (["--time-scale", "100"], "--time-scale", "a number from 0.01 to 10"),
    (["--time-scale", "0.0001"], "--time-scale", "a number from 0.01 to 10"),
    (["--grace-period", "48h"], "--grace-period", "from 0s to 24h"),
]


@pytest.mark.parametrize(("args", "option", "says"), BAD_INPUT,
                         ids=[" ".join(args) for args, _, _ in BAD_INPUT])
def test_bad_input_is_a_usage_error_naming_the_option(args: list[str], option: str,
                                                     says: str) -> None:
    done = subprocess.run([*SIM, *args], capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"ingress-sim: error: argument {option}: " in done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


def test_the_console_script(start_sim: StartSim) -> None:
    script = shutil.which("ingress-sim", path=sysconfig.get_path("scripts"))
    if script is None:
        pytest.skip("ingress-sim is not installed next to this Python; pip install -e .")
    sim = start_sim("--duration", "1s", "--quiet", command=[script])
    sim.url()
    assert sim.wait() == 0
