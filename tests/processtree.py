"""Every process a command starts, recorded while it runs, so a test can check afterwards that
none of them is left.

A process is known by its pid and its start time (a pid alone may be reused once it is gone;
a name alone matches other runs'). Descendants are found by walking the parent links from the
root down: the simulator, the load workers and the pods each start a session of their own, so
neither the process group nor the session of the root finds them. The walk only finds what is
still attached below the root, so :meth:`ProcessTree.sample` is called again and again while
the root lives: a process that has been reparented (its parent died) is still recorded from an
earlier sample.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Recorded:
    pid: int
    created: float  # psutil's create_time(): with the pid, one process for good
    argv: tuple[str, ...]

    @property
    def kind(self) -> str:
        words = " ".join(self.argv)
        for needle, kind in (("backends.sim.server", "simulator"), ("sampleapp.py", "pod"),
                             ("pytest_ingress_chaos.core.load", "load worker"),
                             ("execnet", "xdist worker"), ("exec(eval(", "xdist worker")):
            if needle in words:
                return kind
        return "other"

    def alive(self) -> bool:
        """Still running: the same process (pid and start time), and not a zombie waiting for
        its parent to reap it (a zombie runs nothing and holds no socket)."""
        try:
            process = psutil.Process(self.pid)
            return process.create_time() == self.created and \
                process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def kill(self) -> None:
        """SIGKILL, if it is still the recorded process."""
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(self.pid)
            if process.create_time() == self.created:
                process.kill()

    def __str__(self) -> str:
        return f"{self.kind} pid {self.pid}: {' '.join(self.argv)[:160]}"


class ProcessTree:
    """The descendants of ``root_pid`` (not the root itself), as sampled so far."""

    def __init__(self, root_pid: int) -> None:
        self.root = psutil.Process(root_pid)
        self.recorded: dict[tuple[int, float], Recorded] = {}

    def sample(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            children = self.root.children(recursive=True)
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    key = (child.pid, child.create_time())
                    argv = tuple(child.cmdline())
                    # Read again each time: a child seen between fork and exec still shows
                    # its parent's command line. A zombie's reads empty.
                    if argv or key not in self.recorded:
                        self.recorded[key] = Recorded(child.pid, key[1], argv)

    def count(self, kind: str) -> int:
        """How many processes of this kind were recorded (alive or not)."""
        return sum(1 for process in self.recorded.values() if process.kind == kind)

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Sample until ``condition()`` holds; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.sample()
            if condition():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def survivors(self) -> list[Recorded]:
        return [process for process in self.recorded.values() if process.alive()]

    def assert_all_gone(self, within: float) -> None:
        """Every recorded process has ended within ``within`` seconds (polled). On failure the
        survivors are killed, so that a failed test does not burden the next ones."""
        deadline = time.monotonic() + within
        while (left := self.survivors()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for process in left:
            process.kill()
        assert not left, "processes left behind:\n" + "\n".join(map(str, left))
