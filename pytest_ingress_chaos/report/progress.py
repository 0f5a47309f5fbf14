"""The live progress line of a running load window: what it says, and the thread that keeps it
fresh on a terminal.

A window can last an hour; without a sign of life a user cannot tell a slow test from a hung
one. Once a wall second the line says how far the window is, the rate the answers come back
at, the errors so far and the next scheduled chaos action:

    ingress 10.0s/20s | 12 req/s | errors 4 (timeout x4) | next chaos kill_pods at 15s (in 5.0s)

:class:`WindowProgress` reads the timeline while the load thread appends to it. That is safe
without a lock: ``len()`` of an ``array.array`` is atomic under the GIL, arrays only grow, and
``RequestLog.add`` appends ``outcome`` after the times, so every index below ``len(outcome)``
holds a whole outcome. Outcomes are counted incrementally, only the ones added since the last
refresh (1,000 requests per second for an hour is 3.6 M of them).

:class:`LiveProgress` is the thread; it writes through a ``write(text)`` callable (the pytest
glue gives it pytest's terminal writer) and leaves the cursor at the start of a fresh, empty
line, with the writer believing the same.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence

from ..base import outcomes
from ..base.errors import ProgressError
from ..base.specs import ChaosSpec, LoadSpec
from ..base.units import DurationStyle, format_duration, format_seconds
from ..core.timeline import Timeline

REFRESH = 1.0  # wall seconds between two refreshes of the line
STOP_TIMEOUT = 5.0  # wall seconds the thread gets to erase its line and end
LIVE = DurationStyle.LIVE
_KINDS_SHOWN = 2  # error kinds named on the line; the count covers them all
# The line is rewritten in place: back to its start, the text, erase the rest of the row.
_REWRITE = "\r{}\x1b[K"
# Erase it, then up one row and a newline: the cursor is back at the start of the erased row,
# and the text after the last newline the writer saw is empty, so a writer that tracks the
# width of its current line (pytest's does, to align "[100%]") counts 0, which is true.
_ERASE = "\r\x1b[K\x1b[A\n"


class WindowProgress:
    """What the live line says about one load window, read from its timeline and its chaos
    schedule (the markers' actions, test seconds from load start)."""

    def __init__(self, timeline: Timeline, spec: LoadSpec, chaos: Sequence[ChaosSpec]) -> None:
        self.timeline = timeline
        self.spec = spec
        self.chaos = sorted(chaos, key=lambda action: action.at)
        self._codes: Counter[int] = Counter()  # outcomes of records [0, _counted)
        self._counted = 0
        self._last: tuple[float, int] | None = None  # (instant, records) at the last line

    @property
    def over(self) -> bool:
        """The window's schedule has ended (its last answers may still be arriving)."""
        return self.timeline.load_end is not None

    def line(self, width: int, now: float | None = None) -> str | None:
        """The line at ``now`` (``time.monotonic()``), at most ``width`` characters; None
        before the window has started."""
        start = self.timeline.load_start
        now = self.timeline.clock.now() if now is None else now
        if start is None or now < start:  # load processes start together, a moment later
            return None
        log = self.timeline.requests
        done = len(log.outcome)
        # A slice is copied and counted at C speed: the new outcomes only.
        self._codes.update(log.outcome[self._counted:done])
        self._counted = done
        since, before = self._last or (start, 0)
        rate = (done - before) / (now - since) if now > since else 0.0
        self._last = (now, done)
        elapsed = min(self.timeline.offset(now), self.spec.duration)
        errors = Counter({outcomes.label(code): n for code, n in self._codes.items()
                          if not outcomes.is_success(code) and code not in outcomes.RUNNER_SIDE})
        runner = sum(n for code, n in self._codes.items() if code in outcomes.RUNNER_SIDE)

        rate_part = f"{rate:.0f} req/s"
        if self.spec.processes > 1:  # the other processes hand their records over at the end
            rate_part = f"load process 1 of {self.spec.processes}: {rate_part}"
        rest = [f"runner errors {runner}"] if runner else []
        upcoming = next((action for action in self.chaos if action.at > elapsed), None)
        if upcoming is not None:
            rest.append(f"next chaos {upcoming.kind} at {format_seconds(upcoming.at)} "
                        f"(in {format_duration(upcoming.at - elapsed, LIVE)})")
        elif self.chaos:
            rest.append("no chaos left")
        count = f"errors {sum(errors.values())}"
        kinds = outcomes.format_counts(errors.most_common(_KINDS_SHOWN))
        more = ", ..." if len(errors) > _KINDS_SHOWN else ""
        # The kinds of error go first when the terminal is narrow; then the end is cut.
        for errors_part in ([f"{count} ({kinds}{more})"] if errors else []) + [count]:
            line = " | ".join([f"ingress {format_duration(elapsed, LIVE)}/"
                               f"{format_seconds(self.spec.duration)}",
                               rate_part, errors_part, *rest])
            if len(line) <= width:
                return line
        return line[:max(0, width - 3)] + "..."


class LiveProgress:
    """Shows a window's progress line from a daemon thread, rewritten in place about once a
    wall second, until the window ends or :meth:`stop`; the line is erased before the thread
    ends.

    ``write`` must reach the terminal from this thread; ``width`` is the terminal's. With
    ``fresh_line`` False the cursor is in the middle of a line, and the progress starts on the
    next one.
    """

    def __init__(self, progress: WindowProgress, write: Callable[[str], None], width: int,
                 fresh_line: bool = False, interval: float = REFRESH) -> None:
        self.progress = progress
        self._write = write
        self._width = max(1, width - 1)  # never the last column: some terminals wrap there
        self._lead = "" if fresh_line else "\n"
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="ingress-progress", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        shown = False
        try:
            while not self._stop.wait(self._interval) and not self.progress.over:
                line = self.progress.line(self._width)
                if line is not None:
                    self._write((self._lead if not shown else "") + _REWRITE.format(line))
                    shown = True
        except BaseException as exc:  # re-raised in the test by stop()
            self._error = exc
        finally:
            if shown:
                try:
                    self._write(_ERASE)
                except BaseException as exc:
                    self._error = self._error or exc

    def end(self) -> None:
        """Erase the line and write no more (a debugger takes the terminal, say); what went
        wrong in the thread waits for :meth:`stop`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """End the thread, its line erased; re-raise what went wrong in it."""
        self.end()
        if self._thread is not None and self._thread.is_alive():
            raise ProgressError(f"the progress line's thread did not stop within "
                                f"{STOP_TIMEOUT:g} s (is the terminal blocked?)")
        if self._error is not None:
            error, self._error = self._error, None
            raise ProgressError(f"the progress line failed: {error!r}") from error
