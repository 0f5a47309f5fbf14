"""The HTML page's figure as inline SVG, drawn on the server: the requests chart, the latency
chart and the lanes under them on one time axis, error windows shaded across all of it, chaos
actions as lines through all of it. Every element that means something has a <title>, which
the browser shows on hover: no script, no library, nothing fetched.
"""

from __future__ import annotations

from html import escape

from ..base.events import EventKind
from ..base.outcomes import format_counts
from ..base.units import DurationStyle, format_duration
from .chart import (
    CHAOS_COLOUR,
    ERROR_WINDOW_COLOUR,
    PERCENTILE_COLOURS,
    PERCENTILES,
    Bar,
    ChartData,
    Scale,
    log_ticks,
    nice_ticks,
    outcome_colour,
)
from .lanes import STATE_COLOURS, Interval, Lane, Mark

WIDTH = 1100
LEFT = 190  # room for the lanes' subject names and the y axes
RIGHT = 24
REQUESTS_HEIGHT = 190
LATENCY_HEIGHT = 120
GAP = 30  # between the charts, room for the time axis labels
LANE_HEADER = 20
ROW = 16
MARK_COLOURS: dict[str, str] = {EventKind.POD_GONE: "#000000", EventKind.POD_SIGNAL: "#c62828",
                EventKind.POD_PRESTOP: "#ef6c00", EventKind.TARGET_REMOVED: "#4a148c",
                EventKind.ENDPOINT_REMOVED: "#4e342e", EventKind.NODE_TERMINATED: "#000000"}


def _f(value: float) -> str:
    return f"{value:.1f}"


def _s(seconds: float) -> str:
    return format_duration(seconds, DurationStyle.ON_AXIS)


def _title(text: str) -> str:
    return f"<title>{escape(text)}</title>"


class _Figure:
    def __init__(self, data: ChartData, lanes: list[Lane]) -> None:
        self.data = data
        self.lanes = lanes
        self.x = Scale(data.start, data.end, LEFT, WIDTH - RIGHT)
        self.requests_top = 8.0
        self.requests_bottom = self.requests_top + REQUESTS_HEIGHT
        self.latency_top = self.requests_bottom + GAP
        self.latency_bottom = self.latency_top + LATENCY_HEIGHT
        self.lanes_top = self.latency_bottom + GAP
        rows = sum(len(lane.rows) for lane in lanes)
        self.lanes_bottom = self.lanes_top + LANE_HEADER * len(lanes) + ROW * rows
        self.height = self.lanes_bottom + GAP
        self.parts: list[str] = []

    def add(self, *parts: str) -> None:
        self.parts.extend(parts)

    # --- shared: time axis, error windows, chaos ------------------------------------------

    def time_axis(self, y: float) -> None:
        for tick in nice_ticks(self.data.start, self.data.end, 12):
            self.add(f'<text class="tick" x="{_f(self.x(tick))}" y="{_f(y + 13)}" '
                     f'text-anchor="middle">{tick:g} s</text>')

    def grid(self, top: float, bottom: float) -> None:
        for tick in nice_ticks(self.data.start, self.data.end, 12):
            x = _f(self.x(tick))
            self.add(f'<line class="grid" x1="{x}" x2="{x}" y1="{_f(top)}" y2="{_f(bottom)}"/>')

    def error_windows(self) -> None:
        for w in self.data.error_windows:
            x0, x1 = self.x(w.start), self.x(w.end)
            end = "" if w.recovered else " (not recovered by the end of the window)"
            title = _title(f"error window {_s(w.start)} .. {_s(w.end)}: {w.count} errors "
                           f"({format_counts(dict(w.by_outcome))}){end}")
            self.add(
                f'<rect class="error-window" x="{_f(x0)}" y="{_f(self.requests_top)}" '
                f'width="{_f(max(x1 - x0, 2.0))}" '
                f'height="{_f(self.lanes_bottom - self.requests_top)}" '
                f'fill="{ERROR_WINDOW_COLOUR}" fill-opacity="0.10">{title}</rect>')

    def chaos_lines(self) -> None:
        for action in self.data.actions:
            x = _f(self.x(action.at))
            self.add(f'<line class="chaos-line" x1="{x}" x2="{x}" y1="{_f(self.requests_top)}" '
                     f'y2="{_f(self.lanes_bottom)}" stroke="{CHAOS_COLOUR}" '
                     f'stroke-dasharray="4 3">{_title(f"{_s(action.at)} {action.message}")}'
                     '</line>')

    # --- the requests chart ---------------------------------------------------------------

    def requests(self) -> None:
        top, bottom = self.requests_top, self.requests_bottom
        ticks = nice_ticks(0, max(self.data.peak, 1), 4)
        y = Scale(0, max(ticks[-1], self.data.peak, 1), bottom, top)
        self.add('<g class="panel" data-panel="requests">')
        self.grid(top, bottom)
        self._y_ticks(ticks, y)
        self.add(self._axis_title(self.data.requests_label, top, bottom))
        for bar in self.data.bars:
            self._bar(bar, y)
        if not self.data.bars:
            self.add(f'<text class="empty" x="{_f((LEFT + WIDTH) / 2)}" '
                     f'y="{_f((top + bottom) / 2)}" text-anchor="middle">no requests recorded'
                     '</text>')
        self.add(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_f(bottom)}" '
                 f'y2="{_f(bottom)}"/>', "</g>")
        self.time_axis(bottom)

    def _y_ticks(self, ticks: list[float], y: Scale) -> None:
        """Grid lines and labels of a panel's value axis."""
        for tick in ticks:
            self.add(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_f(y(tick))}" '
                     f'y2="{_f(y(tick))}"/>',
                     f'<text class="tick" x="{LEFT - 6}" y="{_f(y(tick) + 4)}" '
                     f'text-anchor="end">{tick:g}</text>')

    def _bar(self, bar: Bar, y: Scale) -> None:
        x0, x1 = self.x(bar.at), self.x(bar.at + bar.width)
        width = max(x1 - x0 - (0.6 if x1 - x0 > 2 else 0.0), 0.8)
        where = f"{_s(bar.at)} .. {_s(bar.at + bar.width)}"
        for band, low, high in bar.segments(self.data.bands):
            self.add(f'<rect class="bar" data-outcome="{escape(band)}" x="{_f(x0)}" '
                     f'y="{_f(y(high))}" width="{_f(width)}" height="{_f(y(low) - y(high))}" '
                     f'fill="{outcome_colour(band)}">'
                     f'{_title(f"{where}: {band} x{high - low} of {bar.total} requests")}</rect>')

    # --- the latency chart ----------------------------------------------------------------

    def latency(self) -> None:
        top, bottom = self.latency_top, self.latency_bottom
        low, high = self.data.latency_range()
        ticks = log_ticks(low, high)
        y = Scale(ticks[0], ticks[-1], bottom, top, log=True)
        self.add('<g class="panel" data-panel="latency">')
        self.grid(top, bottom)
        self._y_ticks(ticks, y)
        self.add(self._axis_title(self.data.latency_label, top, bottom))
        if not self.data.has_latency:
            self.add(f'<text class="empty" x="{_f((LEFT + WIDTH) / 2)}" '
                     f'y="{_f((top + bottom) / 2)}" text-anchor="middle">this report has no '
                     'latency per bucket</text>')
        for percentile in PERCENTILES:
            colour = PERCENTILE_COLOURS[percentile]
            for line in self.data.latency_lines(percentile):
                points = " ".join(f"{_f(self.x(t))},{_f(y(ms))}" for t, ms in line)
                self.add(f'<polyline class="latency" data-percentile="{percentile}" '
                         f'points="{points}" fill="none" stroke="{colour}" stroke-width="1.4"/>')
                for t, ms in line:  # the values, on hover
                    value = f"{_s(t)}: {percentile} {ms:.1f} {self.data.latency_unit}"
                    self.add(f'<circle class="latency-point" cx="{_f(self.x(t))}" '
                             f'cy="{_f(y(ms))}" r="1.6" fill="{colour}">{_title(value)}</circle>')
        self.add(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_f(bottom)}" '
                 f'y2="{_f(bottom)}"/>', "</g>")
        self.time_axis(bottom)

    def _axis_title(self, text: str, top: float, bottom: float) -> str:
        middle = _f((top + bottom) / 2)
        return (f'<text class="axis-title" x="{LEFT - 44}" y="{middle}" text-anchor="middle" '
                f'transform="rotate(-90 {LEFT - 44} {middle})">{escape(text)}</text>')

    # --- the lanes ------------------------------------------------------------------------

    def lanes_part(self) -> None:
        y = self.lanes_top
        self.add('<g class="lanes">')
        for lane in self.lanes:
            self.add(f'<g class="lane" data-lane="{escape(lane.name)}">',
                     f'<line class="lane-rule" x1="0" x2="{WIDTH - RIGHT}" y1="{_f(y)}" '
                     f'y2="{_f(y)}"/>',
                     f'<text class="lane-name" x="4" y="{_f(y + 14)}">{escape(lane.name)}</text>')
            y += LANE_HEADER
            for row in lane.rows:
                middle = y + ROW / 2
                self.add(f'<g class="row" data-subject="{escape(row.subject)}">',
                         f'<text class="subject" x="{LEFT - 6}" y="{_f(middle + 4)}" '
                         f'text-anchor="end">{escape(row.label or row.subject)}</text>')
                for interval in row.intervals:
                    self._interval(row.subject, interval, middle)
                for mark in row.marks:
                    self._mark(lane.name, mark, middle)
                self.add("</g>")
                y += ROW
            self.add("</g>")
        self.add("</g>")
        self.time_axis(self.lanes_bottom)

    def _interval(self, subject: str, interval: Interval, middle: float) -> None:
        x0, x1 = self.x(interval.start), self.x(interval.end)
        until = " (still, when the events end)" if interval.open else ""
        title = (f"{subject}: {interval.state} {_s(interval.start)} .. {_s(interval.end)}{until}"
                 f" \N{EM DASH} since {interval.message}")
        self.add(f'<rect class="state" data-state="{escape(interval.state)}" x="{_f(x0)}" '
                 f'y="{_f(middle - 5)}" width="{_f(max(x1 - x0, 1.0))}" height="10" '
                 f'fill="{STATE_COLOURS.get(interval.state, "#cfd8dc")}">{_title(title)}</rect>')

    def _mark(self, lane: str, mark: Mark, middle: float) -> None:
        x = self.x(mark.at)
        title = _title(f"{_s(mark.at)} {mark.message}")
        if lane == "chaos":
            self.add(f'<path class="action" data-kind="{escape(mark.kind)}" '
                     f'd="M{_f(x)} {_f(middle - 6)} l6 6 l-6 6 l-6 -6 z" fill="{CHAOS_COLOUR}">'
                     f'{title}</path>',
                     f'<text class="action-label" x="{_f(x + 9)}" y="{_f(middle + 4)}">'
                     f'{escape(mark.kind)} @ {mark.at:.2f} s</text>')
            return
        colour = MARK_COLOURS.get(mark.kind, "#455a64")
        self.add(f'<circle class="mark" data-kind="{escape(mark.kind)}" cx="{_f(x)}" '
                 f'cy="{_f(middle)}" r="3.2" fill="{colour}" stroke="#ffffff" '
                 f'stroke-width="0.8">{title}</circle>')

    def render(self) -> str:
        self.error_windows()
        self.requests()
        self.latency()
        self.lanes_part()
        self.chaos_lines()
        return (f'<svg class="figure" xmlns="http://www.w3.org/2000/svg" '
                f'viewBox="0 0 {WIDTH} {_f(self.height)}" width="{WIDTH}" '
                f'height="{_f(self.height)}" role="img" aria-label="requests by outcome, latency '
                'and what the cluster did, on one time axis">' + "".join(self.parts) + "</svg>")


def figure(data: ChartData, lanes: list[Lane]) -> str:
    """The figure as an inline <svg> element."""
    return _Figure(data, lanes).render()
