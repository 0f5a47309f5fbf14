"""SIGINT and SIGTERM, the one place the package handles them.

- :class:`StopSignals`: a request to stop, for a command that must end in order
  (``ingress-sim``, ``ingress-local-cluster``).
- :func:`interrupt_on_sigterm` / :func:`restore_sigterm`: SIGTERM raised as KeyboardInterrupt in
  the main thread, for code inside someone else's process (the kubernetes backend inside
  pytest), so that its cleanup runs as it does on Ctrl-C.

Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread is, in the middle
of an import or of a request to the simulator, and SIGTERM's default action ends the process at
once. :class:`StopSignals` replaces both with a handler that only notes the signal; the command
looks at it when it can act on it. This module imports nothing but the standard library, and
little of it, so that a command can take the signals before it imports anything else
(``ingress_sim.py``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """SIGINT and SIGTERM, turned into a request to stop that the main thread waits for.

    The handler only notes the first signal: it never raises and never blocks, so a signal at any
    moment (while the command imports, while the simulator starts, in the middle of a request to
    it, during the shutdown) interrupts nothing. The main thread sleeps in :meth:`wait` on a pipe
    that the interpreter writes to on every signal (``signal.set_wakeup_fd``), whichever thread
    the signal reached, and that other threads write to with :meth:`wake`.

    Only from the main thread (``signal.signal`` is refused elsewhere).
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        # While true, the first signal also raises KeyboardInterrupt in the main thread: a
        # command's start that cannot look at ``reason`` is interrupted once, then cleans up.
        self.interrupting = False
        self.signum: int | None = None
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        first = self.reason is None
        self._note(signum)
        if first and self.interrupting:
            raise KeyboardInterrupt(self.reason)

    def _note(self, signum: int) -> None:
        if self.reason is None:
            self.signum = signum
            self.reason = f"{signal.Signals(signum).name} received"

    def wake(self) -> None:
        """Wake :meth:`wait` (from any thread) to look at its condition again."""
        with contextlib.suppress(OSError):  # full: it will wake anyway
            os.write(self._write, b"\0")

    def wait(self, until: Callable[[], bool] = lambda: False,
             deadline: float | None = None) -> bool:
        """Sleep until a signal came, ``until()`` is true, or the ``deadline`` (a
        ``time.monotonic()`` instant, as everywhere in the package); return whether a signal
        came."""
        while self.reason is None and not until():
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                break
            readable, _, _ = select.select([self._read], [], [], timeout)
            if readable:
                with contextlib.suppress(BlockingIOError):
                    for byte in os.read(self._read, 512):
                        if byte:  # a signal number, written by the interpreter's C handler
                            self._note(byte)
        return self.reason is not None

    def block(self) -> None:
        """The run is over: from now on SIGINT and SIGTERM stay pending, so that one arriving
        while the interpreter exits (which restores their default action) cannot kill it."""
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


_previous: Any = None
_installed = False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}: cleaning up")


def interrupt_on_sigterm() -> None:
    """From now on SIGTERM raises KeyboardInterrupt in the main thread, unless someone else
    handles SIGTERM already (then theirs is kept). Only from the main thread; elsewhere, and a
    second time, nothing happens."""
    global _previous, _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            _previous = signal.signal(signal.SIGTERM, _interrupt)
            _installed = True


def restore_sigterm() -> None:
    """Undo :func:`interrupt_on_sigterm`, if SIGTERM's handler is still the one it set."""
    global _installed
    if not _installed or threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) is _interrupt:  # still ours
            signal.signal(signal.SIGTERM, _previous)
    _installed = False
