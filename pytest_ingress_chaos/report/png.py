"""The chart of one test as a PNG, for places a page cannot go (a pull request, a chat), when
matplotlib is installed (the ``plot`` extra).

matplotlib is imported only here, only when a PNG is written: a run without ``--ingress-report-dir``
or without the extra never loads it. It draws with the Agg canvas directly (no pyplot, no global
backend switch), so it works without a display and from any thread.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .chart import (
    CHAOS_COLOUR,
    ERROR_WINDOW_COLOUR,
    PERCENTILE_COLOURS,
    PERCENTILES,
    chart_data,
    outcome_colour,
)

WIDTH_INCHES, HEIGHT_INCHES, DPI = 11.0, 6.0, 100


def available() -> bool:
    """Is matplotlib installed? (Asked without importing it.)"""
    return importlib.util.find_spec("matplotlib") is not None


def write(path: Path, report: Mapping[str, Any]) -> Path:
    """Write the chart of ``report`` (the JSON report's dict) to ``path`` as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = chart_data(report)
    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    requests, latency = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    figure.suptitle(str(report["context"].get("test", "")), fontsize=10)

    bottoms = [0] * len(data.bars)
    for band in data.bands:
        heights = [bar.counts.get(band, 0) for bar in data.bars]
        requests.bar([bar.at for bar in data.bars], heights, width=data.bucket, bottom=bottoms,
                     align="edge", color=outcome_colour(band), label=band, linewidth=0)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    requests.set_ylabel(data.requests_label)

    for percentile in PERCENTILES:
        for i, line in enumerate(data.latency_lines(percentile)):
            latency.plot([t for t, _ in line], [ms for _, ms in line], linewidth=1,
                         color=PERCENTILE_COLOURS[percentile],
                         label=f"latency {percentile}" if i == 0 else None)
    if data.has_latency and data.bars:
        latency.set_yscale("log")
    else:
        latency.text(0.5, 0.5, "this report has no latency per bucket", ha="center",
                     va="center", transform=latency.transAxes, color="#9e9e9e")
    latency.set_ylabel(data.latency_label)
    latency.set_xlabel("test seconds from load start")
    latency.set_xlim(data.start, data.end)

    for axes in (requests, latency):
        for window in data.error_windows:
            axes.axvspan(window.start, window.end, color=ERROR_WINDOW_COLOUR, alpha=0.12,
                         linewidth=0)
        for n, action in enumerate(data.actions):
            axes.axvline(action.at, color=CHAOS_COLOUR, linestyle="--", linewidth=1,
                         label="chaos action" if n == 0 and axes is requests else None)
        axes.grid(alpha=0.3)
    for action in data.actions:
        requests.annotate(action.kind, (action.at, 1.0), xycoords=("data", "axes fraction"),
                          xytext=(3, -10), textcoords="offset points", fontsize=8)
    for axes in (requests, latency):
        if axes.get_legend_handles_labels()[0]:  # an empty legend is a warning
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    figure.savefig(path, format="png")
    return path
