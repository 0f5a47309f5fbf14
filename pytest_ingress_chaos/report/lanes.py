"""What the cluster did, as lanes under the chart: per pod, endpoint, target and node, the
states it was in (intervals) and what happened to it (points), from the report's events.

The events are the backends' (:class:`~..base.events.EventKind`); :data:`KIND_LANES` gives each
kind its lane. States are followed
from the first event on, provisioning included, so a pod Ready before load start is drawn Ready
from the left edge; only what lies on the time axis is kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base.events import EventKind

# kind -> (lane, state entered). A state runs until the subject's next state (or "end": the
# subject is gone, a point marks it). A None state is a point only, the state unchanged.
KIND_LANES: Mapping[str, tuple[str, str | None]] = {
    EventKind.POD_CREATED: ("pods", "starting"),
    EventKind.POD_GATED: ("pods", "gated"),
    EventKind.POD_READY: ("pods", "ready"),
    EventKind.POD_NOT_READY: ("pods", "not ready"),
    EventKind.POD_DELETED: ("pods", "terminating"),
    EventKind.POD_PRESTOP: ("pods", None),
    EventKind.POD_SIGNAL: ("pods", None),
    EventKind.POD_EXITED: ("pods", "exited"),
    EventKind.POD_CRASHED: ("pods", "crashed"),
    EventKind.POD_RESTARTED: ("pods", "starting"),
    EventKind.POD_GONE: ("pods", "end"),
    EventKind.ADDRESS_RELEASED: ("pods", None),
    EventKind.ADDRESS_KEPT: ("pods", None),
    EventKind.ENDPOINT_READY: ("endpoints", "ready"),
    EventKind.ENDPOINT_NOT_READY: ("endpoints", "not ready"),
    EventKind.ENDPOINT_REMOVED: ("endpoints", "end"),
    EventKind.ENDPOINTS_UPDATED: ("endpoints", None),
    EventKind.KUBE_PROXY_SYNCED: ("endpoints", None),
    EventKind.ALB_READY: ("ALB targets", None),
    EventKind.TARGET_REGISTERED: ("ALB targets", "initial"),
    EventKind.TARGET_HEALTHY: ("ALB targets", "healthy"),
    EventKind.TARGET_UNHEALTHY: ("ALB targets", "unhealthy"),
    EventKind.TARGET_DRAINING: ("ALB targets", "draining"),
    EventKind.TARGET_REMOVED: ("ALB targets", "end"),
    EventKind.TARGET_UNREACHABLE: ("ALB targets", "unreachable"),
    EventKind.AWS_NOTE: ("ALB targets", None),
    EventKind.AWS_GAP: ("ALB targets", None),
    EventKind.ROLLOUT_STARTED: ("workload", "rollout"),
    EventKind.ROLLOUT_DONE: ("workload", "end"),
    EventKind.DEPLOYMENT_SCALED: ("workload", None),
    EventKind.NODE_LABELLED: ("nodes", "excluded"),
    EventKind.NODE_CORDONED: ("nodes", "cordoned"),
    EventKind.NODE_TERMINATING: ("nodes", "shutting down"),
    EventKind.NODE_TERMINATED: ("nodes", "end"),
    EventKind.NODE_NOT_READY: ("nodes", "not ready"),
}
LANE_ORDER = ("chaos", "pods", "endpoints", "ALB targets", "nodes", "workload", "other")
STATE_COLOURS: Mapping[str, str] = {
    "starting": "#c5e1a5",
    "gated": "#dce775",
    "ready": "#66bb6a",
    "not ready": "#ffca28",
    "terminating": "#ff7043",
    "exited": "#8d6e63",
    "crashed": "#d32f2f",
    "initial": "#90caf9",
    "healthy": "#42a5f5",
    "unhealthy": "#ef5350",
    "draining": "#ab47bc",
    "unreachable": "#b71c1c",
    "rollout": "#b0bec5",
    "excluded": "#80cbc4",
    "cordoned": "#ffb74d",
    "shutting down": "#e57373",
}
# A target registered in a steady state says which in its message, "registered (healthy)".
_REGISTERED_STATE = re.compile(r"registered \((initial|healthy|unhealthy)\)")


@dataclass(frozen=True)
class Mark:
    """A point: one event."""

    at: float
    kind: str
    message: str


@dataclass(frozen=True)
class Interval:
    """A state from ``start`` to ``end`` (``open``: still in it when the events end), with the
    event that started it."""

    start: float
    end: float
    state: str
    message: str
    open: bool = False


@dataclass
class Row:
    subject: str
    label: str = ""  # what the page writes for the row, when the subject alone does not say
    intervals: list[Interval] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)


@dataclass
class Lane:
    name: str
    rows: list[Row] = field(default_factory=list)


def _state(kind: str, message: str, state: str) -> str:
    if kind == EventKind.TARGET_REGISTERED:
        match = _REGISTERED_STATE.search(message)
        return match.group(1) if match else state
    return state


def lanes(events: Sequence[Mapping[str, Any]], start: float, end: float) -> list[Lane]:
    """The lanes of ``events`` (dicts with at, source, kind, subject, message) on the axis
    [start, end]: chaos actions first, then pods, endpoints, targets, nodes, workload and any
    event kind this version does not know ("other", by source)."""
    rows: dict[tuple[str, str], Row] = {}
    opened: dict[tuple[str, str], tuple[float, str, str]] = {}  # row -> (since, state, message)

    def row(lane: str, subject: str) -> Row:
        return rows.setdefault((lane, subject), Row(subject))

    # The Service's full endpoint list shares its lane with the per-pod endpoints: its row is
    # named as the whole Service, not mistaken for a pod called after it.
    services = {str(e["subject"]) for e in events if e.get("kind") == EventKind.ENDPOINTS_UPDATED
                and e.get("source") != "chaos"}

    def close(key: tuple[str, str], at: float) -> None:
        since, state, message = opened.pop(key)
        if at >= start and since <= end:
            row(*key).intervals.append(Interval(max(since, start), min(at, end), state, message))

    for event in sorted(events, key=lambda e: float(e["at"])):
        at, kind = float(event["at"]), str(event["kind"])
        subject, message = str(event["subject"]), str(event["message"])
        if event.get("source") == "chaos":
            lane, state = "chaos", None
            subject = "actions"
        else:
            lane, state = KIND_LANES.get(kind, ("other", None))
            if lane == "other":
                subject = str(event.get("source", "?"))
        key = (lane, subject)
        if state is not None and key in opened:
            close(key, at)
        if state is not None and state != "end":
            opened[key] = (at, _state(kind, message, state), f"{at:.2f}s {message}")
        # Chaos actions show wherever they happened; the rest only on the axis.
        if state in (None, "end") and (lane == "chaos" or start <= at <= end):
            row(lane, subject).marks.append(Mark(at, kind, message))
    for key, (since, state, message) in opened.items():
        if since <= end:
            row(*key).intervals.append(Interval(max(since, start), end, state, message, True))
    by_lane: dict[str, Lane] = {}
    for (lane, subject), found in rows.items():
        if lane == "endpoints" and subject in services:
            found.label = f"Service {subject}: all endpoints"
        if found.intervals or found.marks:
            by_lane.setdefault(lane, Lane(lane)).rows.append(found)
    return [by_lane[name] for name in LANE_ORDER if name in by_lane]
