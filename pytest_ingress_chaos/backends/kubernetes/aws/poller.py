"""DescribeTargetHealth, polled while a test runs: every change of a target's state is one
``target.*`` event of source ``aws``, stamped at the middle of the call that saw it.

The rate is bounded (``interval``, a few calls per second) and backs off on throttling (ELBv2
throttles per account and region, shared by every caller): the interval doubles up to
``MAX_INTERVAL`` and halves back after each answered call. One poller per target group: each
test of a worker has its own Service, so its own target group. A failed call is no data, never
a failure of the test: the gap is one ``aws.gap`` event when it begins and one when data comes
back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ....base.events import EventKind
from . import faults

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.25  # seconds between calls: 4 a second
MAX_INTERVAL = 5.0
MIN_POLL_INTERVAL = 0.05  # wall seconds, however compressed the test's time
# AWS's states -> the contract's target events (base/events.py EventKind).
_KINDS = {"initial": EventKind.TARGET_REGISTERED, "healthy": EventKind.TARGET_HEALTHY,
          "unhealthy": EventKind.TARGET_UNHEALTHY, "draining": EventKind.TARGET_DRAINING,
          "unused": EventKind.TARGET_UNHEALTHY, "unavailable": EventKind.TARGET_UNHEALTHY}

Emit = Callable[[float, EventKind, str, str], None]  # at, kind, subject, message
State = tuple[str, str]  # AWS state, reason code


class TargetHealthPoller:
    """Polls one target group from a thread of its own until :meth:`stop`."""

    def __init__(self, client: Any, arn: str, emit: Emit, subject: Callable[[str], str], *,
                 interval: float = DEFAULT_INTERVAL) -> None:
        self.client = client
        self.arn = arn
        self.emit = emit
        self.subject = subject  # target Id -> the pod or node behind it
        self.base_interval = interval
        self.interval = interval
        self.states: dict[str, State] = {}
        self.problems: list[str] = []  # one line per distinct fault, for the report
        self.calls = 0
        self._gap_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"aws target health {arn.rsplit('/', 2)[-2]}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval)

    def poll_once(self) -> None:
        before = time.monotonic()
        self.calls += 1
        try:
            answer = self.client.describe_target_health(TargetGroupArn=self.arn)
        except Exception as exc:  # botocore's errors and the transport's: no data, said once
            self._fault(before, exc)
            return
        at = (before + time.monotonic()) / 2
        self.interval = max(self.base_interval, self.interval / 2)
        if self._gap_since is not None:
            self.emit(at, EventKind.AWS_GAP, "target health",
                      f"AWS target health again, after {at - self._gap_since:.1f} s without data")
            self._gap_since = None
        self._diff(at, answer.get("TargetHealthDescriptions") or [])

    def _fault(self, at: float, exc: BaseException) -> None:
        line = faults.describe("DescribeTargetHealth", exc)
        if faults.throttled(exc):
            self.interval = min(MAX_INTERVAL, self.interval * 2)
        else:
            self.interval = min(MAX_INTERVAL, max(self.interval, 1.0))
        if line not in self.problems:
            self.problems.append(line)
            log.warning("%s", line)
        if self._gap_since is None:
            self._gap_since = at
            self.emit(at, EventKind.AWS_GAP, "target health",
                      f"no AWS target health from here: {line}")

    def _diff(self, at: float, descriptions: list[dict[str, Any]]) -> None:
        now: dict[str, State] = {}
        for entry in descriptions:
            target, health = entry.get("Target") or {}, entry.get("TargetHealth") or {}
            now[str(target.get("Id"))] = (str(health.get("State", "")),
                                          str(health.get("Reason") or ""))
        for target_id, (state, reason) in now.items():
            old = self.states.get(target_id)
            if old == (state, reason):
                continue
            subject = self.subject(target_id)
            because = f" ({reason})" if reason else ""
            label = f"target {target_id} ({subject})"
            if old is None:
                self.emit(at, EventKind.TARGET_REGISTERED, subject,
                          f"{label} registered ({state}){because}, as AWS reports it")
            elif old[0] != state:
                self.emit(at, _KINDS.get(state, EventKind.TARGET_UNHEALTHY), subject,
                          f"{label} is {state}{because}, as AWS reports it")
        for target_id in set(self.states) - set(now):
            subject = self.subject(target_id)
            self.emit(at, EventKind.TARGET_REMOVED, subject,
                      f"target {target_id} ({subject}) deregistered: AWS no longer lists it")
        self.states = now
