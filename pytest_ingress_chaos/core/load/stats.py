"""Latency statistics with HdrHistogram, as wrk2 reports them."""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

# Microseconds, from 1 us to one hour, 3 significant digits: wrk2's resolution.
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 3_600_000_000, 3
PERCENTILES = {"p50": 50.0, "p75": 75.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9,
               "p99.99": 99.99}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


def record_seconds(histogram: HdrHistogram, seconds: float) -> None:
    histogram.record_value(min(_HIGHEST_US, max(_LOWEST_US, round(seconds * 1_000_000))))


def summary_ms(histogram: HdrHistogram) -> dict[str, float]:
    """Percentiles, max, mean and standard deviation in milliseconds (all 0 when empty)."""
    if histogram.get_total_count() == 0:
        return {**dict.fromkeys(PERCENTILES, 0.0), "max": 0.0, "mean": 0.0, "stdev": 0.0}
    figures = {name: histogram.get_value_at_percentile(q) / 1000
               for name, q in PERCENTILES.items()}
    figures["max"] = histogram.get_max_value() / 1000
    figures["mean"] = histogram.get_mean_value() / 1000
    figures["stdev"] = histogram.get_stddev() / 1000
    return figures


def spectrum(histogram: HdrHistogram) -> list[dict[str, Any]]:
    """wrk2's "Detailed Percentile spectrum": value (ms), percentile, count up to it, and
    1/(1-percentile), five steps per halving of the distance to 100 %."""
    if histogram.get_total_count() == 0:
        return []
    rows = []
    for item in histogram.get_percentile_iterator(5):
        level = item.percentile_level_iterated_to / 100
        rows.append({
            "value_ms": item.value_iterated_to / 1000,
            "percentile": round(level, 6),
            "total_count": item.total_count_to_this_value,
            "one_over_one_minus_percentile": (round(1 / (1 - level), 2) if level < 1 else None),
        })
    return rows
