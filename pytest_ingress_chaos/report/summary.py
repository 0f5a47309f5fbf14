"""One line of the session's summary table: a typed record that crosses xdist as plain data.

Each load window leaves one :class:`SummaryRow`, written where the test ran. Under pytest-xdist
the test runs in a worker and the table is printed by the controller, so each row travels with
its test's report as soon as the test ends (a worker that dies later loses none), and execnet
carries only plain values (dicts, lists, strings, numbers): the record turns itself into such a
dict and back, and refuses one it did not write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

# The verdict column, as pytest names the test's outcome (a void window is neither a pass nor
# a failure of the ingress; nor is a window Ctrl-C interrupted).
VERDICT_LABELS = ("ok", "FAILED", "VOID", "xfail", "XPASS", "CRASHED", "interrupted")


@dataclass(frozen=True)
class SummaryRow:
    test: str  # the pytest node id
    mode: str  # ip, instance, or url for an explicit endpoint
    requests: int
    errors: int
    by_outcome: Mapping[str, int]  # outcome ("200", "502", "timeout") -> requests
    windows: tuple[tuple[float, float], ...]  # error windows, seconds from load start
    disruption: str  # the disruption column (terminal.disruption_cell)
    verdict: str  # one of VERDICT_LABELS
    dereg_lag: str  # the dereg lag column (terminal.lag_cell): the ALB's lag behind the chaos
    note: str = ""  # said after the test id: why a row has no (whole) figures: a crashed
    # worker, a window interrupted

    def __post_init__(self) -> None:
        if self.verdict not in VERDICT_LABELS:
            raise ValueError(f"summary row of {self.test}: verdict {self.verdict!r} is not one "
                             f"of {', '.join(VERDICT_LABELS)}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict: what execnet can carry from an xdist worker."""
        return {"test": self.test, "mode": self.mode, "requests": self.requests,
                "errors": self.errors, "by_outcome": dict(self.by_outcome),
                "windows": [[start, end] for start, end in self.windows],
                "disruption": self.disruption, "verdict": self.verdict,
                "dereg_lag": self.dereg_lag, "note": self.note}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SummaryRow:
        """The row :meth:`to_json` wrote; a ValueError when a key is missing or unknown (a
        worker running another version of the plugin)."""
        expected = {f.name for f in fields(cls)}
        if set(data) != expected:
            raise ValueError(f"not a summary row: keys {sorted(data)}, expected "
                             f"{sorted(expected)}")
        return cls(test=str(data["test"]), mode=str(data["mode"]),
                   requests=int(data["requests"]), errors=int(data["errors"]),
                   by_outcome={str(k): int(n) for k, n in data["by_outcome"].items()},
                   windows=tuple((float(a), float(b)) for a, b in data["windows"]),
                   disruption=str(data["disruption"]), verdict=str(data["verdict"]),
                   dereg_lag=str(data["dereg_lag"]), note=str(data["note"]))

    @classmethod
    def crashed(cls, test: str, worker: str) -> SummaryRow:
        """The row of a test whose xdist worker died in it: no figures reached the controller."""
        return cls(test=test, mode="-", requests=0, errors=0, by_outcome={}, windows=(),
                   disruption="-", verdict="CRASHED", dereg_lag="-",
                   note=f"worker {worker} died in this test; no figures")
