"""The chart of one load window in plain numbers, shared by the HTML page and the PNG: requests
per bucket stacked by outcome, latency percentiles per bucket, error windows and chaos actions,
on one time axis (test seconds from load start), from the JSON report's dict.

Nothing here draws: the page turns this into SVG, the PNG into matplotlib calls, so both show
the same bars in the same colours.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..base import outcomes
from ..base.clock import TestClock
from ..core.result import BUCKET

# More bars than this are merged, k buckets to a bar: an hour at 100 ms would be 36,000 bars,
# a page of megabytes no one can read.
MAX_BARS = 1200
PERCENTILES = ("p50", "p90", "p99")
SUCCESS = "2xx"  # every 2xx status is one band: success is success
# A report written before buckets counted outcomes has only "ok" and "errors".
UNSPLIT_ERRORS = "errors"

# Fixed colours for the outcomes a story usually has, so a 502 is the same red in every page.
_FIXED_COLOURS: Mapping[str, str] = {
    SUCCESS: "#43a047",
    "500": "#6d0f0f",
    "502": "#d32f2f",
    "503": "#f06292",
    "504": "#ad1457",
    "timeout": "#fb8c00",
    "connection refused": "#6a1b9a",
    "reset": "#795548",
    "invalid response": "#fdd835",
    "error": "#37474f",
    UNSPLIT_ERRORS: "#e53935",
    "not sent": "#bdbdbd",
    "runner error": "#9e9e9e",
    "dns failure": "#757575",
    "abandoned": "#e0e0e0",
}
# Other codes take a colour of their class, chosen by a stable hash of the label (not Python's
# hash(), which changes per process), so the same code keeps its colour from page to page.
_CLASS_PALETTES: Mapping[str, tuple[str, ...]] = {
    "1": ("#80cbc4",),
    "2": ("#66bb6a",),
    "3": ("#4db6ac", "#26a69a", "#00897b"),
    "4": ("#1e88e5", "#3949ab", "#039be5", "#5c6bc0", "#0277bd", "#283593"),
    "5": ("#c62828", "#e57373", "#880e4f", "#ef6c00", "#b71c1c", "#ff5252"),
}
_OTHER_PALETTE = ("#8d6e63", "#26c6da", "#9ccc65", "#ab47bc", "#ffa726", "#78909c")
PERCENTILE_COLOURS: Mapping[str, str] = {"p50": "#1e88e5", "p90": "#8e24aa", "p99": "#212121"}
CHAOS_COLOUR = "#212121"
ERROR_WINDOW_COLOUR = "#e53935"


def _pick(palette: Sequence[str], label: str) -> str:
    return palette[zlib.crc32(label.encode()) % len(palette)]


def outcome_colour(label: str) -> str:
    """The colour of an outcome label ("2xx", "502", "timeout", ...), the same in every report."""
    if label in _FIXED_COLOURS:
        return _FIXED_COLOURS[label]
    if label.isdigit():
        return _pick(_CLASS_PALETTES.get(label[0], _OTHER_PALETTE), label)
    return _pick(_OTHER_PALETTE, label)


def outcome_band(label: str) -> str:
    """The band a bucket's outcome label is drawn in: every 2xx status is "2xx"."""
    return SUCCESS if outcomes.is_success_label(label) else label


def _order_key(label: str) -> tuple[int, int, str]:
    if label == SUCCESS:
        return (0, 0, label)
    if label.isdigit():
        return (1, int(label), label)
    code = outcomes.LABEL_CODES.get(label)
    if code is not None:  # transport failures, the ingress's first, then the runner's
        return (3 if code in outcomes.RUNNER_SIDE else 2, -code, label)
    return (2, 99, label)  # a label this version does not know


def order_outcomes(labels: Iterable[str]) -> list[str]:
    """Stacking order, bottom up: 2xx, other statuses by code, failures, runner-side ones."""
    return sorted(set(labels), key=_order_key)


def is_runner_side(label: str) -> bool:
    return label in outcomes.RUNNER_SIDE_LABELS


@dataclass(frozen=True)
class Bar:
    """One bar: ``width`` test seconds from ``at``, requests by band (bottom up)."""

    at: float
    width: float
    counts: Mapping[str, int]
    latency_ms: Mapping[str, float]  # p50, p90, p99 (and max); empty without requests

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def segments(self, order: Sequence[str]) -> list[tuple[str, int, int]]:
        """(band, bottom, top) of each non-empty band of the stack, in ``order``."""
        stack, bottom = [], 0
        for band in order:
            n = self.counts.get(band, 0)
            if n:
                stack.append((band, bottom, bottom + n))
                bottom += n
        return stack


@dataclass(frozen=True)
class Span:
    """An error window: failed requests from ``start`` to ``end`` (by scheduled send)."""

    start: float
    end: float
    count: int
    by_outcome: Mapping[str, int]
    recovered: bool


@dataclass(frozen=True)
class Action:
    """A chaos action, a vertical line across the chart and the lanes."""

    at: float
    kind: str
    subject: str
    message: str


@dataclass(frozen=True)
class ChartData:
    start: float  # the time axis, test seconds from load start
    end: float
    bucket: float  # seconds per bar
    bands: list[str]  # outcome bands, in stacking order
    bars: list[Bar]
    peak: int  # the highest bar
    error_windows: list[Span]
    actions: list[Action]
    has_latency: bool  # False for a report written before buckets had latency
    time_scale: float = 1.0  # times are test seconds; the buckets' latencies wall-clock ms

    @property
    def bucket_ms(self) -> int:
        return round(self.bucket * 1000)

    @property
    def requests_label(self) -> str:
        test = " test" if self.time_scale != 1 else ""
        return f"requests per {self.bucket_ms}{test} ms"

    @property
    def latency_unit(self) -> str:
        return "test ms" if self.time_scale != 1 else "ms"

    @property
    def latency_label(self) -> str:
        return f"latency, {self.latency_unit}"

    def _test_ms(self, wall_ms: float) -> float:
        # Drawn in test seconds, as the time axis and the request timeout are: under a time
        # scale a request that times out sits at the timeout, not the scale times lower.
        return TestClock(self.time_scale).test(wall_ms)

    def latency_lines(self, percentile: str) -> list[list[tuple[float, float]]]:
        """(bar middle, test ms) of one percentile, split where bars have no requests: a line
        does not pretend to know the latency of a bucket that sent nothing."""
        lines: list[list[tuple[float, float]]] = []
        current: list[tuple[float, float]] = []
        for bar in self.bars:
            value = bar.latency_ms.get(percentile)
            if value is None:
                if current:
                    lines.append(current)
                current = []
            else:
                current.append((bar.at + bar.width / 2, self._test_ms(float(value))))
        if current:
            lines.append(current)
        return lines

    def latency_range(self) -> tuple[float, float]:
        values = [self._test_ms(v) for bar in self.bars for p in PERCENTILES
                  if (v := bar.latency_ms.get(p)) is not None]
        return (min(values), max(values)) if values else (1.0, 1000.0)


def _bucket_counts(bucket: Mapping[str, Any]) -> dict[str, int]:
    split = bucket.get("outcomes")
    if split is None:
        return {SUCCESS: int(bucket.get("ok", 0)), UNSPLIT_ERRORS: int(bucket.get("errors", 0))}
    counts: dict[str, int] = {}
    for label, n in split.items():
        band = outcome_band(str(label))
        counts[band] = counts.get(band, 0) + int(n)
    return counts


def _merge(buckets: Sequence[Mapping[str, Any]], width: float) -> Bar:
    counts: dict[str, int] = {}
    for bucket in buckets:
        for band, n in _bucket_counts(bucket).items():
            counts[band] = counts.get(band, 0) + n
    # Several buckets to a bar: each percentile's worst bucket, so a slow 100 ms still shows.
    latencies = [b.get("latency_ms") or {} for b in buckets]
    latency = {p: max(float(lat[p]) for lat in latencies if p in lat)
               for p in (*PERCENTILES, "max") if any(p in lat for lat in latencies)}
    return Bar(at=float(buckets[0]["at"]), width=width * len(buckets), counts=counts,
               latency_ms=latency)


def bars(buckets: Sequence[Mapping[str, Any]], bucket: float = BUCKET,
         max_bars: int = MAX_BARS) -> tuple[list[Bar], float]:
    """The report's buckets as bars, merged ``k`` to a bar when there are more than
    ``max_bars``; returns the bars and the seconds each one covers."""
    k = max(1, math.ceil(len(buckets) / max_bars))
    return ([_merge(buckets[i:i + k], bucket) for i in range(0, len(buckets), k)], bucket * k)


def chart_data(report: Mapping[str, Any]) -> ChartData:
    """The chart of a JSON report (``{"context": ..., "result": ...}``)."""
    result = report["result"]
    buckets: list[Mapping[str, Any]] = list(result.get("buckets", []))
    merged, width = bars(buckets)
    actions = [Action(float(e["at"]), str(e["kind"]), str(e["subject"]), str(e["message"]))
               for e in result.get("events", []) if e.get("source") == "chaos"]
    windows = [Span(float(w["start"]), float(w["end"]), int(w["count"]),
                    dict(w.get("by_outcome", {})), bool(w.get("recovered", True)))
               for w in result.get("error_windows", [])]
    # The axis starts at load start, or earlier for chaos done before it (ingress_chaos before
    # run()), and ends with the window or its last bar.
    start = min([0.0, *(a.at for a in actions)])
    end = max([float(result.get("duration", 0.0)), *(b.at + b.width for b in merged), start + 1])
    return ChartData(
        start=start, end=end, bucket=width,
        bands=order_outcomes(band for bar in merged for band, n in bar.counts.items() if n),
        bars=merged,
        peak=max((bar.total for bar in merged), default=0),
        error_windows=windows,
        actions=actions,
        has_latency=any("latency_ms" in b for b in buckets),
        time_scale=float(result.get("time_scale", 1.0)),
    )


# --- axes -------------------------------------------------------------------------------


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten from below ``low`` to above ``high`` (both > 0)."""
    first = math.floor(math.log10(max(low, 1e-3)))
    last = math.ceil(math.log10(max(high, low, 1e-3)))
    return [10.0 ** e for e in range(first, max(last, first + 1) + 1)]


@dataclass(frozen=True)
class Scale:
    """Maps a data range onto a pixel range, linearly or on a log10 scale."""

    low: float
    high: float
    to_low: float
    to_high: float
    log: bool = False

    def __call__(self, value: float) -> float:
        low, high, v = self.low, self.high, value
        if self.log:
            low, high, v = math.log10(low), math.log10(high), math.log10(max(value, self.low))
        fraction = (v - low) / (high - low) if high != low else 0.0
        fraction = min(1.0, max(0.0, fraction))
        return self.to_low + fraction * (self.to_high - self.to_low)
