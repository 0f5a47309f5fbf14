"""Nothing the sim backend starts outlives the pytest process that started it: not after a
normal end, a Ctrl-C (SIGINT), a SIGTERM or a SIGKILL of pytest, nor when an xdist worker dies
(``os._exit``) in the middle of a test, nor when ``pytest -n 2`` itself is killed.

Each case runs a real ``python -m pytest`` holding a load window open (the simulator, its pod
processes and, with ``processes=2``, a load worker process), records every process below it
from the process table while it runs (pid and start time), ends it, and then checks the
process table: every recorded process has ended, and the ALB's and the pods' addresses no
longer answer. Then, at the unit level: tearing down twice is harmless.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_ingress_chaos.backends.sim.client import SimBackend
from pytest_ingress_chaos.base.backend import ProvisionRequest
from pytest_ingress_chaos.base.clock import TestClock
from pytest_ingress_chaos.base.specs import AlbSpec, LoadSpec, ServiceSpec, SLOSpec
from pytest_ingress_chaos.core.load.workers import LoadWorkers
from pytest_ingress_chaos.core.loadwindow import IngressLoad
from pytest_ingress_chaos.core.timeline import Timeline

from .processtree import ProcessTree, Recorded

TIME_SCALE = 0.2
START_WITHIN = 90.0  # wall seconds for the inner run to reach its window on a loaded machine
# A load worker first finishes the requests in flight (their timeout); an xdist worker whose
# controller was killed is interrupted by execnet after 5 s, and exits after 15 s at most.
GONE_WITHIN = 30.0

INNER_HELPERS = """
    import json, os, pathlib, time
    import pytest

    def wait_for(name):
        while not pathlib.Path(name).exists():
            time.sleep(0.02)

    def tell(name, ingress_service):
        addresses = [ingress_service.url.split("//")[1]]
        addresses += [pod.address for pod in ingress_service.pods()]
        pathlib.Path(name + ".tmp").write_text(json.dumps({"pid": os.getpid(),
                                                           "addresses": addresses}))
        os.replace(name + ".tmp", name)
"""


def holds_a_window(duration: str, processes: int, name: str = "test_holds_a_window",
                   told: str = "open") -> str:
    """A test that opens its load window, tells the outer test, and holds the window open
    until the outer test says ``go``."""
    return INNER_HELPERS + f"""
    @pytest.mark.sample_service(replicas=3)
    @pytest.mark.ingress_load(rate=30, duration="{duration}", processes={processes})
    @pytest.mark.kill_pods(at="1s")
    @pytest.mark.ingress_slo(max_errors=None)  # the story is the cleanup, not the verdict
    def {name}(ingress_load, ingress_service):
        ingress_load.start()
        ingress_load.sleep("2s")  # the killed pod's address is now refusing or blackholed
        tell("{told}", ingress_service)
        wait_for("go")
        ingress_load.run()
"""


def answering(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


class InnerRun:
    """``python -m pytest`` in a session of its own, its output in a file."""

    def __init__(self, path: Path, *args: str) -> None:
        self.path = path
        self.log = path / "inner-output.txt"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pytest", "-p", "no:benchmark", "-p", "no:cacheprovider",
                 "-p", "no:randomly", "--ingress-time-scale", str(TIME_SCALE), *args],
                cwd=path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.tree = ProcessTree(self.process.pid)

    def told(self, name: str) -> dict[str, object]:
        told: dict[str, object] = json.loads((self.path / name).read_text())
        return told

    def wait_for(self, name: str, **kinds: int) -> None:
        """Until the inner test wrote ``name`` and at least as many processes of each kind
        (``pod=3``) were seen below pytest."""
        def reached() -> bool:
            assert self.process.poll() is None, f"pytest ended early:\n{self.output()}"
            return (self.path / name).exists() and all(
                self.tree.count(kind.replace("_", " ")) >= n for kind, n in kinds.items())

        assert self.tree.wait_until(reached, START_WITHIN), \
            f"{name} / {kinds} not reached; seen: {list(map(str, self.tree.recorded.values()))}"

    def go(self, name: str = "go") -> None:
        (self.path / name).touch()

    def wait(self, timeout: float = 120.0) -> int:
        """Wait for pytest to end, sampling the process table meanwhile."""
        if not self.tree.wait_until(lambda: self.process.poll() is not None, timeout):
            pytest.fail(f"pytest still running after {timeout:g} s:\n{self.output()}")
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        """After a failed test: end pytest and whatever is left of its session."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for process in self.tree.survivors():
            process.kill()


@pytest.fixture
def inner(pytester: pytest.Pytester) -> Iterator[list[InnerRun]]:
    runs: list[InnerRun] = []
    yield runs
    for run in runs:
        run.close()


ENDINGS = {"normal end": None, "SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM,
           "SIGKILL": signal.SIGKILL}
EXIT_CODES = {"normal end": 0, "SIGINT": pytest.ExitCode.INTERRUPTED,
              "SIGTERM": -signal.SIGTERM, "SIGKILL": -signal.SIGKILL}


@pytest.mark.parametrize("processes", [1, 2], ids=["1 load process", "2 load processes"])
@pytest.mark.parametrize("ending", list(ENDINGS))
def test_nothing_outlives_pytest(pytester: pytest.Pytester, inner: list[InnerRun],
                                 ending: str, processes: int) -> None:
    duration = "20s" if ending == "normal end" else "600s"  # 4 s of wall time; 2 minutes
    pytester.makepyfile(test_story=textwrap.dedent(holds_a_window(duration, processes)))
    run = InnerRun(pytester.path)
    inner.append(run)
    run.wait_for("open", simulator=1, pod=3, load_worker=processes - 1)
    addresses = run.told("open")["addresses"]
    assert isinstance(addresses, list) and len(addresses) >= 4, addresses
    assert answering(addresses[0]), "the ALB should be serving inside the window"
    signum = ENDINGS[ending]
    if signum is None:
        run.go()
    else:
        os.kill(run.process.pid, signum)
    assert run.wait() == EXIT_CODES[ending], run.output()
    if ending == "normal end":
        assert re.search(r"\b1 passed\b", run.output()), run.output()
    run.tree.assert_all_gone(GONE_WITHIN)
    # And so nothing listens on their addresses (blackholed ones included) any more.
    assert [address for address in addresses if answering(address)] == []


DIES_AND_LIVES = INNER_HELPERS + """
    @pytest.mark.sample_service(replicas=2)
    @pytest.mark.ingress_load(rate=30, duration="600s", processes=2)
    def test_dies(ingress_load, ingress_service):
        ingress_load.start()
        tell("dies-open", ingress_service)
        wait_for("go")
        os._exit(1)

    @pytest.mark.sample_service(replicas=2)
    @pytest.mark.ingress_load(rate=30, duration="20s", processes=2)
    def test_lives(ingress_load, ingress_service):
        wait_for("dies-open")  # the two tests run at once, on the two workers
        ingress_load.start()
        tell("lives-open", ingress_service)
        wait_for("crashed")  # the other worker died while this window was open
        ingress_load.run()
"""


def test_a_worker_that_dies_leaves_nothing(pytester: pytest.Pytester,
                                           inner: list[InnerRun]) -> None:
    """``os._exit(1)`` in a test under ``-n 2`` while the other worker holds a window open: no
    teardown runs in the dead worker, yet its simulator, pods and load worker end; the run
    goes on, reports the crash, and the other test passes."""
    pytester.makepyfile(test_story=textwrap.dedent(DIES_AND_LIVES))
    run = InnerRun(pytester.path, "-n", "2")
    inner.append(run)
    run.wait_for("lives-open", simulator=2, pod=4, load_worker=2)
    run.wait_for("dies-open")
    dying = run.told("dies-open")["pid"]
    addresses = run.told("dies-open")["addresses"]
    assert isinstance(addresses, list)
    worker = next(p for p in run.tree.recorded.values() if p.pid == dying)
    run.go()
    assert run.tree.wait_until(lambda: not worker.alive(), 60), "the worker did not die"
    run.go("crashed")
    assert run.wait() == pytest.ExitCode.TESTS_FAILED, run.output()
    output = run.output()
    assert re.search(r"crashed while running .*test_dies", output), output
    assert re.search(r"\b1 failed, 1 passed\b", output), output
    run.tree.assert_all_gone(GONE_WITHIN)
    assert [address for address in addresses if answering(address)] == []


def test_a_killed_xdist_controller_leaves_nothing(pytester: pytest.Pytester,
                                                 inner: list[InnerRun]) -> None:
    """SIGKILL to ``pytest -n 2`` while both workers hold a window open: the workers notice
    their controller is gone (execnet interrupts them within seconds), and what each started
    ends with it."""
    pytester.makepyfile(test_story=textwrap.dedent(holds_a_window("600s", 2)) + textwrap.dedent(
        holds_a_window("600s", 1, name="test_holds_another", told="another-open")
        .removeprefix(INNER_HELPERS)))
    run = InnerRun(pytester.path, "-n", "2")
    inner.append(run)
    run.wait_for("open", simulator=2, pod=6, load_worker=1)
    run.wait_for("another-open")
    os.kill(run.process.pid, signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    run.tree.assert_all_gone(GONE_WITHIN)


# --- tearing down twice is harmless ---------------------------------------------------------


def new_descendants(tree: ProcessTree, before: set[tuple[int, float]]) -> list[Recorded]:
    tree.sample()
    return [process for key, process in tree.recorded.items() if key not in before]


def test_closing_the_backend_and_tearing_down_a_service_twice_is_harmless() -> None:
    tree = ProcessTree(os.getpid())
    tree.sample()
    before = set(tree.recorded)
    backend = SimBackend(time_scale=TIME_SCALE)
    service = backend.provision(ProvisionRequest(
        test="twice", mode="ip", service=ServiceSpec(replicas=1), alb=AlbSpec(), extras={},
        seed=1, events=lambda **event: None, timeout=60.0))
    started = new_descendants(tree, before)
    assert sorted(process.kind for process in started) == ["pod", "simulator"], started
    service.teardown()
    service.teardown()
    backend.close()
    backend.close()
    service.teardown()  # after the backend's close: nothing to do, and no error
    assert [process for process in started if process.alive()] == []


def test_killing_load_workers_twice_is_harmless() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # never answers: no matter
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        workers = LoadWorkers(url, LoadSpec(processes=3), TestClock(TIME_SCALE), {})
        assert len(workers.processes) == 2
        workers.kill()
        workers.kill()
        workers.stop()  # to processes already gone: nothing, no BrokenPipeError
    assert [process.poll() for process in workers.processes] == [-signal.SIGKILL] * 2


def test_closing_a_load_window_twice_is_harmless() -> None:
    tree = ProcessTree(os.getpid())
    tree.sample()
    before = set(tree.recorded)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        window = IngressLoad(url, LoadSpec(rate=10, duration=60.0, processes=2), SLOSpec(),
                             Timeline(TestClock(TIME_SCALE)), None, render=lambda result: "")
        window.close()  # never started
        window.start()
        started = new_descendants(tree, before)
        assert [process.kind for process in started] == ["load worker"], started
        window.close()
        window.close()
    assert [process for process in started if process.alive()] == []
