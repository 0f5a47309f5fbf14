"""One test's load window: the load generator, the chaos schedule inside it, and the verdict.

This is what the ``ingress_load`` fixture returns. It is pytest-free: a broken SLO is raised as
:class:`IngressSLOViolation` and a void run as :class:`IngressVerdictVoid` (both
``AssertionError``, so pytest reports a failure); the plugin only trims their traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Mapping

from ..base import units
from ..base.errors import (
    IngressSLOViolation,
    IngressVerdict,
    IngressVerdictVoid,
    LoadGeneratorError,
    SettingsError,
)
from ..base.specs import LoadSpec, SLOSpec
from .chaos import ChaosSchedule
from .load.generator import LoadGenerator
from .result import LoadResult, summarize
from .timeline import Timeline
from .verdict import FAIL, INTERRUPTED, VOID, judge

# Test seconds a sleep may end past the window's end: sleeps that add up to the duration also
# wait for the chaos calls between them, which take time of their own.
SLEEP_OVERRUN = 1.0


class IngressLoad:
    """Constant-rate load against the ingress for ``spec.duration`` seconds, with chaos.

    ``run()`` is the whole story in one call. For imperative chaos, ``start()`` the window,
    act (``sleep()`` moves along the test clock), then ``run()`` to finish it and get the
    verdict.
    """

    def __init__(
        self,
        url: str,
        spec: LoadSpec,
        slo: SLOSpec,
        timeline: Timeline,
        schedule: ChaosSchedule | None,
        render: Callable[[LoadResult], str],
        still_terminating: Callable[[], list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """``still_terminating`` names the provisioned pods still terminating, asked when the
        window ends: a window that ends before them has not seen the whole story.
        ``headers`` go with every request (the service's ``request_headers``)."""
        self.url = url
        self.spec = spec
        self.slo = slo
        self.timeline = timeline
        self.result: LoadResult | None = None
        # The FAIL or VOID verdict run() raised, kept for whoever applies it: the thread that
        # called run() or the code that caught its AssertionError may not be the test's.
        self.verdict_error: IngressVerdict | None = None
        self._running = threading.RLock()  # held by run(): one window, one run at a time
        self._schedule = schedule
        self._render = render
        self._still_terminating = still_terminating
        self._generator = LoadGenerator(
            url, spec, timeline,
            on_start=schedule.start if schedule is not None else None, headers=headers,
        )

    @property
    def started(self) -> bool:
        return self._generator.started

    @property
    def finished(self) -> bool:
        return self.result is not None

    def start(self) -> None:
        """Start the load window (and the chaos markers' schedule) without waiting for it."""
        self._generator.start()

    def sleep(self, duration: float | str) -> None:
        """Sleep for ``duration`` test seconds ("3s", "250ms", 3), scaled like the window,
        inside the started window: a sleep that would end more than
        :data:`SLEEP_OVERRUN` past its end is refused, as it would block after the load."""
        try:
            seconds = units.duration(duration)
        except ValueError as exc:
            raise SettingsError(f"ingress_load.sleep: {units.shown(duration)}: {exc}") from None
        if not self.started:
            raise LoadGeneratorError(f"ingress_load.sleep: {units.shown(duration)}: the load "
                                     "window has not started; call ingress_load.start() first "
                                     "(a sleep moves along the window)")
        left = self.timeline.clock.test(self._generator.remaining())
        if seconds > left + SLEEP_OVERRUN:
            raise SettingsError(
                f"ingress_load.sleep: {units.shown(duration)}: the window of duration="
                f"{units.format_seconds(self.spec.duration)} has {left:.2f} s left, and a sleep "
                "past its end would block after the load has stopped; sleep at most what is "
                "left, or lengthen ingress_load(duration=)")
        try:
            self.timeline.clock.sleep(seconds)
        except KeyboardInterrupt:
            self._keep_interrupted()
            raise

    def run(self) -> LoadResult:
        """Finish the load window (starting it if needed) and apply the SLO.

        Returns the result; raises :class:`IngressSLOViolation` if the ingress broke the SLO,
        :class:`IngressVerdictVoid` if the load generator could not hold its schedule.
        """
        __tracebackhide__ = True
        with self._running:
            return self._run()

    def finish(self) -> None:
        """Finish a started window unless it has finished: wait for a ``run()`` another thread
        is in, else run it here. A FAIL or VOID verdict is then in :attr:`verdict_error`."""
        with self._running:
            if self.result is None:
                with contextlib.suppress(IngressVerdict):
                    self._run()

    def _run(self) -> LoadResult:
        __tracebackhide__ = True
        if self.result is not None:
            raise LoadGeneratorError("this load window has already run; a test gets one window")
        if not self.started:
            self.start()
        try:
            self._generator.wait()
        except KeyboardInterrupt:
            self._keep_interrupted()
            raise
        finally:
            if self._schedule is not None:
                self._schedule.stop()
        terminating = self._still_terminating() if self._still_terminating else []
        result = summarize(self.timeline, self.spec.rate, ignore=self.slo.ignore,
                           recovered_after=self.slo.recovered_after)
        verdict = judge(result, self.slo, terminating)
        self.result = dataclasses.replace(result, verdict=verdict.kind.value,
                                          violations=verdict.violations)
        if verdict.kind == FAIL:
            self.verdict_error = IngressSLOViolation(self._render(self.result), self.result)
        elif verdict.kind == VOID:
            self.verdict_error = IngressVerdictVoid(self._render(self.result), self.result)
        if self.verdict_error is not None:
            raise self.verdict_error
        return self.result

    def _keep_interrupted(self) -> None:
        """Ctrl-C inside the window: stop the load (which stamps the window's end) and keep
        what was measured so far as :attr:`result`, marked interrupted, with no verdict: the
        window did not run its course, so it can neither pass nor fail the ingress."""
        try:
            self.close()
        finally:
            result = summarize(self.timeline, self.spec.rate, ignore=self.slo.ignore,
                               recovered_after=self.slo.recovered_after)
            self.result = dataclasses.replace(result, verdict=INTERRUPTED.value,
                                              interrupted=True)

    def close(self) -> None:
        """Stop the load and the schedule without a verdict (teardown after a failure)."""
        try:
            self._generator.stop()
        finally:
            if self._schedule is not None:
                self._schedule.stop()
