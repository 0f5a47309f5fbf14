"""Request records of one load window, compact enough for an hour at thousands per second.

One array per field instead of one Python object per request (28 bytes a request), plus
HdrHistograms filled as requests finish, so percentiles need no pass over the records. Records
of several load processes merge into one log (``export``/``merge``).
"""

from __future__ import annotations

from array import array
from typing import Any

from hdrh.histogram import HdrHistogram

from .stats import new_histogram, record_seconds

# A request sent later than this after its scheduled time counts as sent late.
LATE_SEND_THRESHOLD = 0.050
_ARRAYS = {"intended": "d", "sent": "d", "end": "d", "outcome": "h", "pod": "h"}


class RequestLog:
    def __init__(self) -> None:
        self.intended = array("d")  # when the schedule said to send (monotonic seconds)
        self.sent = array("d")  # when it was actually sent
        self.end = array("d")  # when the response (or the failure) arrived
        self.outcome = array("h")  # HTTP status, or a negative outcomes.* code
        self.pod = array("h")  # index into pod_names, -1 when unknown
        self.pod_names: list[str] = []
        self._pod_index: dict[str, int] = {}
        # Latency from the scheduled send (what a user waits: corrected for coordinated
        # omission), from the actual send (wrk2 -U), and the lag between the two.
        self.corrected = new_histogram()
        self.uncorrected = new_histogram()
        self.send_lag = new_histogram()
        self.late = 0

    def add(self, intended: float, sent: float, end: float, outcome: int, pod: str | None) -> None:
        if pod is None:
            index = -1
        elif (index := self._pod_index.get(pod, -1)) < 0:
            index = self._pod_index[pod] = len(self.pod_names)
            self.pod_names.append(pod)
        self.intended.append(intended)
        self.sent.append(sent)
        self.end.append(end)
        self.outcome.append(outcome)
        self.pod.append(index)
        record_seconds(self.corrected, end - intended)
        record_seconds(self.uncorrected, end - sent)
        record_seconds(self.send_lag, sent - intended)
        self.late += sent - intended > LATE_SEND_THRESHOLD

    def __len__(self) -> int:
        return len(self.outcome)

    def export(self) -> dict[str, Any]:
        """Plain bytes and strings, to send from a load process to its parent."""
        return {
            "arrays": {name: getattr(self, name).tobytes() for name in _ARRAYS},
            "pod_names": list(self.pod_names),
            "histograms": {name: getattr(self, name).encode()
                           for name in ("corrected", "uncorrected", "send_lag")},
            "late": self.late,
        }

    def merge(self, exported: dict[str, Any]) -> None:
        """Append another log's records (pod indices remapped to this log's names)."""
        arrays = {name: array(code, exported["arrays"][name]) for name, code in _ARRAYS.items()}
        remap = array("h", (self._pod_slot(name) for name in exported["pod_names"]))
        arrays["pod"] = array("h", (remap[i] if i >= 0 else -1 for i in arrays["pod"]))
        for name in _ARRAYS:
            getattr(self, name).extend(arrays[name])
        for name, encoded in exported["histograms"].items():
            getattr(self, name).add(HdrHistogram.decode(encoded))
        self.late += exported["late"]

    def _pod_slot(self, name: str) -> int:
        if name not in self._pod_index:
            self._pod_index[name] = len(self.pod_names)
            self.pod_names.append(name)
        return self._pod_index[name]
