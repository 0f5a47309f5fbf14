"""Disruption per chaos action: how long the service was broken after each thing the test did.

OpenShift's disruption monitoring judges an availability test by the length, in seconds, of each
disruption; this module measures the same for every chaos action of a load window. The
disruption after an action begins at the first failed request (by scheduled send) at or after
the action and before the next one, and lasts until ``recovered_after`` consecutive requests
succeed: its ``end`` is the last failure before them, its ``length`` the span from the first
failure to the last, plus one request interval (a single failed request disrupts one slot of
the schedule, not zero seconds).

Only failures charged to the ingress count: runner-side outcomes, uncertified ones (the load
generator itself stalled) and the outcomes the SLO ignores are neither failures nor successes
here, they are skipped.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..base import outcomes
from ..base.events import Event

# Chaos events of one kind this close together (test seconds) are one action: kill_pods(count=3)
# records one event per pod it kills.
ACTION_GAP = 0.25


@dataclass(frozen=True)
class Disruption:
    """What one chaos action did to the users, in test seconds from load start."""

    action: Event  # the action (subjects of a multi-pod action joined by ", ")
    start: float | None  # the first failed request after the action (None: none failed)
    end: float | None  # the last failed request before the service recovered
    length: float  # end - start + one request interval; 0.0 when nothing failed
    errors: int  # failed requests in [start, end]
    by_outcome: dict[str, int]
    recovered: bool  # False when the window ended before recovered_after successes
    recovered_at: float | None  # when the recovered_after-th consecutive success was scheduled


def chaos_actions(events: Sequence[Event]) -> list[Event]:
    """The chaos actions among ``events``: chaos events, those of one action merged."""
    actions: list[Event] = []
    for event in events:
        if event.source != "chaos":
            continue
        last = actions[-1] if actions else None
        if last is not None and last.kind == event.kind and event.at - last.at <= ACTION_GAP:
            actions[-1] = Event(last.at, last.source, last.kind,
                                f"{last.subject}, {event.subject}", last.message)
        else:
            actions.append(event)
    return actions


def measure(actions: Sequence[Event], scheduled: Sequence[float], verdicts: Sequence[bool | None],
            codes: Sequence[int], interval: float, recovered_after: int) -> list[Disruption]:
    """One :class:`Disruption` per action.

    ``scheduled`` are the requests' scheduled sends (test seconds, sorted), ``verdicts`` for each
    True (success), False (a failure that counts) or None (skipped), ``codes`` their outcomes,
    ``interval`` the schedule's spacing (test seconds).
    """
    found = []
    for number, action in enumerate(actions):
        following = actions[number + 1].at if number + 1 < len(actions) else float("inf")
        first = _first_failure(scheduled, verdicts, action.at, following)
        if first is None:
            found.append(Disruption(action, None, None, 0.0, 0, {}, True, None))
            continue
        last, recovered_at = _until_recovered(scheduled, verdicts, first, recovered_after)
        failed = [i for i in range(first, last + 1) if verdicts[i] is False]
        kinds = Counter(outcomes.label(codes[i]) for i in failed)
        found.append(Disruption(
            action=action, start=_us(scheduled[first]), end=_us(scheduled[last]),
            length=_us(scheduled[last] - scheduled[first] + interval), errors=len(failed),
            by_outcome=dict(kinds.most_common()), recovered=recovered_at is not None,
            recovered_at=None if recovered_at is None else _us(recovered_at)))
    return found


def _us(seconds: float) -> float:
    """Rounded to the microsecond: offsets from float instants carry noise (3.1000000000000227)."""
    return round(seconds, 6)


def _first_failure(scheduled: Sequence[float], verdicts: Sequence[bool | None], since: float,
                   before: float) -> int | None:
    for i in range(bisect.bisect_left(scheduled, since), len(scheduled)):
        if scheduled[i] >= before:
            return None
        if verdicts[i] is False:
            return i
    return None


def _until_recovered(scheduled: Sequence[float], verdicts: Sequence[bool | None], first: int,
                     recovered_after: int) -> tuple[int, float | None]:
    """The last failure from ``first`` on before ``recovered_after`` consecutive successes, and
    when the last of those successes was scheduled (None: the window ended first)."""
    last, streak = first, 0
    for i in range(first + 1, len(scheduled)):
        if verdicts[i] is False:
            last, streak = i, 0
        elif verdicts[i]:
            streak += 1
            if streak >= recovered_after:
                return last, scheduled[i]
    return last, None
