"""The raw request records of one load window as CSV (``--ingress-records``).

One row per request the window recorded, with a header, so ``pandas.read_csv`` and any other
CSV tool load it as it is; the format is documented in ``docs/report-formats.md``. Times are
test seconds from load start (the conversion of :meth:`Timeline.offset`), like every time in the
JSON report.

An hour at 1,000 requests per second is 3.6 M rows: the rows are made and written a chunk at a
time from the record arrays, never held all at once.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..base import outcomes
from ..core.timeline import Timeline
from .jsonreport import file_stem

COLUMNS = ("scheduled", "dispatched", "sent", "end", "outcome", "pod")
SUFFIX = ".records.csv"
_CHUNK = 8192  # rows made and written at a time
# printf-style rows are faster than csv.writer row by row (an hour's 3.6 M rows: 16 s against
# 24 s on a busy 2-core machine): numbers need no quoting, and the outcome and pod columns,
# which might, are quoted by the csv module once per distinct pair.
_ROW = "%.6f,%.6f,%.6f,%.6f,%s"


def _quoted(*fields: str) -> str:
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(fields)
    return line.getvalue()


def write(directory: Path, test: str, timeline: Timeline) -> Path:
    """Write the window's records as ``<directory>/<test id made file-safe>.records.csv``,
    next to its JSON report; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{file_stem(test)}{SUFFIX}"
    log = timeline.requests
    start = timeline.load_start if timeline.load_start is not None else 0.0
    to_test = timeline.clock.test  # as Timeline.offset: test seconds from load start
    pods = [*log.pod_names, ""]  # index -1 (unknown) is the last one: empty
    tails: dict[tuple[int, int], str] = {}  # (outcome, pod) -> "200,kubia-...\n"

    def tail(code: int, pod: int) -> str:
        key = (code, pod)
        if key not in tails:
            tails[key] = _quoted(outcomes.label(code), pods[pod])
        return tails[key]

    with path.open("w", newline="", encoding="utf-8") as file:
        file.write(_quoted(*COLUMNS))
        for lo in range(0, len(log), _CHUNK):
            hi = lo + _CHUNK
            file.writelines([
                _ROW % (to_test(scheduled - start), to_test(dispatched - start),
                        to_test(sent - start), to_test(end - start),
                        tails.get((code, pod)) or tail(code, pod))
                for scheduled, dispatched, sent, end, code, pod in zip(
                    log.intended[lo:hi], log.dispatched[lo:hi], log.sent[lo:hi],
                    log.end[lo:hi], log.outcome[lo:hi], log.pod[lo:hi], strict=True)])
    return path
