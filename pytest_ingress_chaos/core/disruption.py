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

The *deregistration lag* of an action is what the load balancer did about it: from the pod's
deletion (a node's cordon or exclusion label) to its target leaving the healthy set (draining,
unhealthy or removed), by the target events, AWS's own (source ``aws``) where there are any,
else the backend's. With it comes one sentence saying what happened and the known remedy with
the figure it needs (docs/aws-evidence.md).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..base import outcomes
from ..base.events import Event

# Chaos events of one kind this close together (test seconds) are one action: kill_pods(count=3)
# records one event per pod it kills.
ACTION_GAP = 0.25
# A chaos event of kind "<action>:<step>" is a later step of the action before it, on the same
# subjects (drain_node's drain after its exclusion wait), not an action of its own.
STEP = ":"


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
    # From the pod's deletion (node's cordon) to its target leaving the healthy set; None when
    # no target of the action's subjects was seen healthy then.
    deregistration_lag: float | None = None
    lag_source: str = ""  # whose target events: "aws" (the ALB's own view), "alb", ...
    explanation: str = ""  # what the load balancer did and the remedy, in one sentence or two


# What starts the lag, and what ends it (the target no longer takes new requests).
_LAG_STARTS = {"pod.deleted": "the pod was deleted", "node.cordoned": "the node was cordoned",
               "node.labelled": "the node was excluded from load balancers"}
_LAG_ENDS = frozenset({"target.draining", "target.unhealthy", "target.removed"})


def _up(event: Event) -> bool:
    """The target takes new requests: healthy, or registered in that state."""
    return event.kind == "target.healthy" or (
        event.kind == "target.registered" and "(healthy)" in event.message)

def chaos_actions(events: Sequence[Event]) -> list[Event]:
    """The chaos actions among ``events``: chaos events, those of one action merged, later
    steps of an action (kind ``<action>:<step>``) part of it."""
    actions: list[Event] = []
    for event in events:
        if event.source != "chaos":
            continue
        last = actions[-1] if actions else None
        action, _, step = event.kind.partition(STEP)
        if step and last is not None and last.kind == action and all(
                subject in last.subject.split(", ") for subject in event.subject.split(", ")):
            continue
        if step:  # a step whose start is not among the events: it stands for its action
            event = dataclasses.replace(event, kind=action)
        if last is not None and last.kind == event.kind and event.at - last.at <= ACTION_GAP:
            actions[-1] = Event(last.at, last.source, last.kind,
                                f"{last.subject}, {event.subject}", last.message)
        else:
            actions.append(event)
    return actions


def measure(actions: Sequence[Event], scheduled: Sequence[float], verdicts: Sequence[bool | None],
            codes: Sequence[int], interval: float, recovered_after: int,
            events: Sequence[Event] = ()) -> list[Disruption]:
    """One :class:`Disruption` per action.

    ``scheduled`` are the requests' scheduled sends (test seconds, sorted), ``verdicts`` for each
    True (success), False (a failure that counts) or None (skipped), ``codes`` their outcomes,
    ``interval`` the schedule's spacing (test seconds); ``events`` all of the window's, for the
    deregistration lag.
    """
    found = [_with_lag(d, events, scheduled, verdicts)
             for d in _measure(actions, scheduled, verdicts, codes, interval, recovered_after)]
    return found


def _measure(actions: Sequence[Event], scheduled: Sequence[float],
             verdicts: Sequence[bool | None], codes: Sequence[int], interval: float,
             recovered_after: int) -> list[Disruption]:
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


def _with_lag(disruption: Disruption, events: Sequence[Event], scheduled: Sequence[float],
              verdicts: Sequence[bool | None]) -> Disruption:
    """The disruption with the longest deregistration lag among its action's subjects."""
    action = disruption.action
    lags = [lag for subject in action.subject.split(", ")
            if (lag := _lag(subject, action.at, events)) is not None]
    if not lags:
        return disruption
    subject, started, ended, source, why = max(lags, key=lambda lag: lag[2] - lag[1])
    length = _us(ended - started)
    low, high = bisect.bisect_left(scheduled, started), bisect.bisect_right(scheduled, ended)
    errors = sum(1 for i in range(low, high) if verdicts[i] is False)
    what = "pod" if why.startswith("the pod") else "node"
    told = (f"target of {subject} stayed healthy {length:.1f} s after {why}"
            f"{' (as AWS reported it)' if source == 'aws' else ''}; "
            f"{errors} error{'s' if errors != 1 else ''} in that stretch")
    if errors:
        told += ". " + _remedy(what, length)
    return dataclasses.replace(disruption, deregistration_lag=length, lag_source=source,
                               explanation=told)


def _remedy(what: str, lag: float) -> str:
    """The known remedy, with the figure it needs (docs/aws-evidence.md)."""
    if what == "pod":
        sleep = math.ceil(lag * 1.5)
        return (f"Remedy: a preStop sleep longer than the {lag:.1f} s lag (sample_service("
                f"prestop_sleep=\"{sleep}s\", grace_period above it)) keeps the pod serving "
                "until the load balancer stops sending to it, or a readiness gate "
                "(target-health.elbv2.k8s.aws) holds the rollout until targets are healthy")
    return (f"Remedy: take the node out of the load balancer first (exclude_from_load_balancers"
            f", then wait more than the {lag:.1f} s lag before the drain), or on_sigterm=\"drain\""
            " so the pods finish their requests")


def _lag(subject: str, since: float, events: Sequence[Event]
         ) -> tuple[str, float, float, str, str] | None:
    """(subject, start, end, source, what started it) of one subject's lag, if its target
    was seen healthy when the lag started and left the healthy set afterwards."""
    start = next(((e.at, _LAG_STARTS[e.kind]) for e in events
                  if e.subject == subject and e.kind in _LAG_STARTS and e.at >= since), None)
    if start is None:
        return None
    targets = [e for e in events if e.subject == subject and e.kind.startswith("target.")]
    sources = {e.source for e in targets}
    source = "aws" if "aws" in sources else min(sources, default="")
    targets = [e for e in targets if e.source == source]
    before = [e for e in targets if e.at <= start[0]]
    if not before or not _up(before[-1]):
        return None
    end = next((e.at for e in targets if e.at > start[0] and e.kind in _LAG_ENDS), None)
    if end is None:
        return None
    return subject, start[0], end, source, start[1]


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
