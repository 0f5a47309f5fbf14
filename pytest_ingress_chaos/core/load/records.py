"""Request records of one load window, compact enough for an hour at thousands per second.

One array per field instead of one Python object per request (36 bytes a request), plus
HdrHistograms, so percentiles need no pass over the records. Adding a record only appends to
the arrays; the histograms take the records a few dozen at a time (``digest``) whenever the
generator's loop has a moment, so a burst of answers (a target that unfreezes) costs the
schedule as little as possible. Records of several load processes merge into one log
(``export``/``merge``).

Three instants tell apart who made a request late: ``intended`` (the schedule), ``dispatched``
(when the generator handed it to the engine: any gap is the generator's own lag: timers, CPU,
the GIL) and ``sent`` (when it went on the wire: any gap after dispatch is a wait for a
connection, once the connection cap is reached). Latency counts from ``intended``, as a user
would wait. ``stalls`` are the stretches in which the generator's event loop could not run on
time: errors that overlap them cannot be blamed on the ingress.
"""

from __future__ import annotations

from array import array
from typing import Any

from hdrh.histogram import HdrHistogram

from .stats import new_histogram, record_seconds

# A request handed to the engine (or sent) later than this after its time counts as late, and
# a loop that wakes up this late has stalled.
LATE_SEND_THRESHOLD = 0.050
_ARRAYS = {"intended": "d", "dispatched": "d", "sent": "d", "end": "d", "outcome": "h",
           "pod": "h"}
_HISTOGRAMS = ("corrected", "uncorrected", "send_lag", "connection_wait")


class RequestLog:
    def __init__(self) -> None:
        self.intended = array("d")  # when the schedule said to send (monotonic seconds)
        self.dispatched = array("d")  # when the generator handed it to the engine
        self.sent = array("d")  # when it went out (a new connection: when connecting began)
        self.end = array("d")  # when the response (or the failure) arrived
        self.outcome = array("h")  # HTTP status, or a negative outcomes.* code
        self.pod = array("h")  # index into pod_names, -1 when unknown
        self.pod_names: list[str] = []
        self._pod_index: dict[str, int] = {}
        # Latency from the scheduled send (what a user waits: corrected for coordinated
        # omission), from the actual send (wrk2 -U), the generator's own lag, and the wait for
        # a connection.
        self.corrected = new_histogram()
        self.uncorrected = new_histogram()
        self.send_lag = new_histogram()
        self.connection_wait = new_histogram()
        self.late = 0  # dispatched late: the generator lagged
        self.waited = 0  # sent late after dispatch: the connection cap was reached
        self._digested = 0  # records [0, _digested) are in the histograms and counts
        self.stalls: list[tuple[float, float]] = []  # (from, to): the loop could not run
        self.max_connections = 0  # the connection cap in force
        self.cap_reason = ""  # what set the cap: "rate x timeout", "max_connections", ...
        self.peak_connections = 0  # the most connections open at once

    def add(self, intended: float, dispatched: float, sent: float, end: float, outcome: int,
            pod: str | None) -> None:
        if pod is None:
            index = -1
        elif (index := self._pod_index.get(pod, -1)) < 0:
            index = self._pod_index[pod] = len(self.pod_names)
            self.pod_names.append(pod)
        self.intended.append(intended)
        self.dispatched.append(dispatched)
        self.sent.append(sent)
        self.end.append(end)
        self.outcome.append(outcome)
        self.pod.append(index)

    def digest(self, limit: int | None = None) -> None:
        """Put up to ``limit`` (None: all) records not yet counted into the histograms."""
        stop = len(self.outcome) if limit is None else min(len(self.outcome),
                                                            self._digested + limit)
        for i in range(self._digested, stop):
            intended, dispatched = self.intended[i], self.dispatched[i]
            sent, end = self.sent[i], self.end[i]
            record_seconds(self.corrected, end - intended)
            record_seconds(self.uncorrected, end - sent)
            record_seconds(self.send_lag, dispatched - intended)
            record_seconds(self.connection_wait, sent - dispatched)
            self.late += dispatched - intended > LATE_SEND_THRESHOLD
            self.waited += sent - dispatched > LATE_SEND_THRESHOLD
        self._digested = max(self._digested, stop)

    def stalled(self, since: float, until: float) -> None:
        """The generator's loop should have run at ``since`` and ran only at ``until``."""
        self.stalls.append((since, until))

    def __len__(self) -> int:
        return len(self.outcome)

    def export(self) -> dict[str, Any]:
        """Plain bytes and strings, to send from a load process to its parent."""
        self.digest()
        return {
            "arrays": {name: getattr(self, name).tobytes() for name in _ARRAYS},
            "pod_names": list(self.pod_names),
            "histograms": {name: getattr(self, name).encode() for name in _HISTOGRAMS},
            "late": self.late,
            "waited": self.waited,
            "stalls": list(self.stalls),
            "max_connections": self.max_connections,
            "peak_connections": self.peak_connections,
        }

    def merge(self, exported: dict[str, Any]) -> None:
        """Append another log's records (pod indices remapped to this log's names); they
        arrive with their histograms."""
        self.digest()
        arrays = {name: array(code, exported["arrays"][name]) for name, code in _ARRAYS.items()}
        remap = array("h", (self._pod_slot(name) for name in exported["pod_names"]))
        arrays["pod"] = array("h", (remap[i] if i >= 0 else -1 for i in arrays["pod"]))
        for name in _ARRAYS:
            getattr(self, name).extend(arrays[name])
        for name, encoded in exported["histograms"].items():
            getattr(self, name).add(HdrHistogram.decode(encoded))
        self.late += exported["late"]
        self.waited += exported["waited"]
        self._digested = len(self.outcome)
        self.stalls.extend(tuple(stall) for stall in exported["stalls"])
        self.max_connections += exported["max_connections"]
        self.peak_connections += exported["peak_connections"]

    def _pod_slot(self, name: str) -> int:
        if name not in self._pod_index:
            self._pod_index[name] = len(self.pod_names)
            self.pod_names.append(name)
        return self._pod_index[name]
