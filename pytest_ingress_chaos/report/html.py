"""The HTML report of one test: a self-contained page (styles inline, the figure as inline SVG,
no script, nothing fetched) built from the JSON report's dict, so it shows what the
``pytest_ingress_update_json`` hook changed, and a page can be rebuilt from a JSON file:
``python -m pytest_ingress_chaos.report.html reports/some_test.json`` writes
``reports/some_test.html``.

Every string taken from the data is escaped: test ids and messages are the user's and the
cluster's, not ours.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from ..base.clock import TestClock
from ..base.outcomes import format_counts
from ..base.units import DurationStyle, format_duration
from . import svg
from .chart import (
    CHAOS_COLOUR,
    ERROR_WINDOW_COLOUR,
    PERCENTILE_COLOURS,
    PERCENTILES,
    ChartData,
    chart_data,
    is_runner_side,
    outcome_colour,
)
from .lanes import STATE_COLOURS, lanes

STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #212121;
       margin: 16px 24px; }
h1 { font-size: 18px; margin: 0 0 8px; word-break: break-all; }
h2 { font-size: 15px; margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; }
table.list th, table.list td { border-bottom: 1px solid #e0e0e0; padding: 3px 10px; }
table.index td:not(:first-child), table.disruptions td { white-space: nowrap; }
table.index td:first-child { overflow-wrap: anywhere; }  /* long test ids wrap, not scroll */
.verdict { display: inline-block; padding: 1px 10px; border-radius: 3px; color: #fff;
           font-weight: 600; }
.verdict.pass { background: #2e7d32; } .verdict.fail { background: #c62828; }
.verdict.void { background: #757575; } .verdict.interrupted { background: #ef6c00; }
ul.violations { margin: 4px 0; color: #b71c1c; }
ul.legend { list-style: none; padding: 0; margin: 6px 0; display: flex; flex-wrap: wrap;
            gap: 4px 16px; }
ul.legend li { display: flex; align-items: center; gap: 5px; }
.swatch { width: 12px; height: 12px; display: inline-block; border: 1px solid #0002; }
.swatch.line { height: 3px; border: 0; }
.swatch.window { opacity: 0.35; }
/* As the figure draws an action: a dashed upright line, not a solid one like p99's. */
.swatch.chaos { width: 0; height: 14px; border: 0; border-left: 2px dashed; }
svg.figure { display: block; max-width: 100%; height: auto; }
svg .tick { font-size: 10px; fill: #616161; }
svg .axis-title { font-size: 11px; fill: #424242; }
svg .grid { stroke: #eeeeee; }
svg .axis { stroke: #9e9e9e; }
svg .lane-rule { stroke: #bdbdbd; }
svg .lane-name { font-size: 12px; font-weight: 600; fill: #212121; }
svg .subject, svg .action-label { font-size: 10.5px; fill: #424242; }
svg .empty { font-size: 12px; fill: #9e9e9e; }
details { margin-top: 14px; }
.muted { color: #757575; }
"""


def _e(value: object) -> str:
    return escape(str(value))


def _s(seconds: Any) -> str:
    return "-" if seconds is None else format_duration(float(seconds), DurationStyle.ON_AXIS)


def _legend(data: ChartData) -> str:
    items = [f'<li><span class="swatch" style="background:{outcome_colour(band)}"></span>'
             f'{_e(band)}{" (runner side)" if is_runner_side(band) else ""}</li>'
             for band in data.bands]
    items += [f'<li><span class="swatch line" style="background:{PERCENTILE_COLOURS[p]}">'
              f'</span>latency {p}</li>' for p in PERCENTILES]
    items.append(f'<li><span class="swatch window" style="background:{ERROR_WINDOW_COLOUR}">'
                 '</span>error window</li>')
    items.append(f'<li><span class="swatch chaos" style="border-color:{CHAOS_COLOUR}"></span>'
                 'chaos action</li>')
    return f'<ul class="legend" data-legend="chart">{"".join(items)}</ul>'


def _state_legend() -> str:
    items = [f'<li><span class="swatch" style="background:{colour}"></span>{_e(state)}</li>'
             for state, colour in STATE_COLOURS.items()]
    return f'<ul class="legend" data-legend="states">{"".join(items)}</ul>'


def _time_scale(result: Mapping[str, Any]) -> str:
    """As the terminal report says it: under a time scale, test and wall-clock seconds."""
    scale = float(result.get("time_scale", 1.0))
    if scale == 1:
        return "1 (test seconds are wall-clock seconds)"
    duration = float(result.get("duration", 0.0))
    wall = TestClock(scale).wall(duration)
    return (f"{scale:g}: {duration:.2f} test s = {wall:.2f} wall-clock s; rates are "
            "per wall-clock second; every other time on this page is in test seconds, the "
            "latency chart in test ms (as the timeout), the latency row in wall-clock ms "
            "(as the terminal report)")


def _interrupted(result: Mapping[str, Any]) -> str:
    """Why an interrupted window has no verdict, after its verdict mark."""
    if not result.get("interrupted"):
        return ""
    return (f" Ctrl-C after {_s(result.get('duration'))}: no verdict; the figures are what was "
            "measured until then, and a partial window proves nothing either way")


def _summary(context: Mapping[str, Any], result: Mapping[str, Any]) -> str:
    verdict = str(result.get("verdict", "?"))
    latency = result.get("latency", {})
    rows = [
        ("verdict", f'<span class="verdict {_e(verdict)}" data-verdict="{_e(verdict)}">'
                    f"{_e(verdict)}</span>{_interrupted(result)}"),
        ("mode", _e(context.get("mode", "?"))),
        ("backend", _e(context.get("backend", "?"))),
        ("url", _e(context.get("url", "?"))),
        ("requests", f"{_e(result.get('requests', 0))} in {_s(result.get('duration'))} "
                     f"(target {_e(result.get('target_rate', '?'))} req/s, "
                     f"{float(result.get('achieved_rate', 0.0)):.2f} achieved)"),
        ("errors", f"{_e(result.get('errors', 0))} charged to the ingress"),
        ("outcomes", _e(format_counts(result.get("by_outcome", {})))),
        ("timeout", _s(context.get("timeout"))
                    + (" (test)" if float(result.get("time_scale", 1.0)) != 1 else "")),
        ("latency", " ".join(f"{p} {float(latency[p]):.1f} ms" for p in
                             ("p50", "p90", "p99", "max") if p in latency) or "-"),
        ("seed", _e(context.get("seed", "?"))),
        ("time scale", _time_scale(result)),
        ("run", _e(context.get("run", "-"))),
    ]
    notes = [str(e.get("message", "")) for e in result.get("events", [])
             if e.get("kind") == "aws.note"]
    if notes:  # the ALB's own view: its target group and attributes, or why there is none
        rows.append(("ALB (AWS API)", "<br>".join(_e(note) for note in notes)))
    if result.get("runner_errors"):
        rows.insert(6, ("runner side", f"{_e(result['runner_errors'])} failures of the machine "
                                       "running the tests, not charged to the ingress"))
    body = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    violations = result.get("violations", [])
    listed = ("<ul class=\"violations\">" + "".join(f"<li>{_e(v)}</li>" for v in violations)
              + "</ul>") if violations else ""
    return f'<table class="summary">{body}</table>{listed}'


def _disruptions(result: Mapping[str, Any]) -> str:
    disruptions = result.get("disruptions")
    if disruptions is None:  # a report written before disruptions were measured
        return ""
    if not disruptions:
        return "<h2>Disruptions</h2><p class=\"muted\">no chaos action in this test</p>"
    head = ("<tr><th>action at</th><th>action</th><th>subject</th><th>errors from</th>"
            "<th>to</th><th class=\"n\">length</th><th class=\"n\">errors</th>"
            "<th>by outcome</th><th>recovered</th><th class=\"n\">deregistration lag</th>"
            "</tr>")
    rows = []
    told = [f'<p class="explanation">{_e(d["explanation"])}</p>' for d in disruptions
            if d.get("explanation")]
    for d in disruptions:
        action = d.get("action", {})
        recovered = (f"yes, at {_s(d.get('recovered_at'))}" if d.get("recovered")
                     else "no" if d.get("errors") else "-")
        rows.append(
            f'<tr class="disruption"><td>{_s(action.get("at"))}</td>'
            f'<td title="{_e(action.get("message", ""))}">{_e(action.get("kind", "?"))}</td>'
            f'<td>{_e(action.get("subject", ""))}</td><td>{_s(d.get("start"))}</td>'
            f'<td>{_s(d.get("end"))}</td><td class="n">{_s(d.get("length", 0.0))}</td>'
            f'<td class="n">{_e(d.get("errors", 0))}</td>'
            f'<td>{_e(format_counts(d.get("by_outcome", {})))}</td><td>{recovered}</td>'
            f'<td class="n" title="{_e(d.get("lag_source") or "")}">'
            f'{_s(d.get("deregistration_lag"))}</td></tr>')
    return (f'<h2>Disruptions, per chaos action</h2><table class="list disruptions">{head}'
            f'{"".join(rows)}</table>{"".join(told)}')


def _error_windows(result: Mapping[str, Any]) -> str:
    windows = result.get("error_windows", [])
    if not windows:
        return "<h2>Error windows</h2><p class=\"muted\">none</p>"
    rows = "".join(
        f"<tr><td>{_s(w['start'])}</td><td>{_s(w['end'])}</td><td class=\"n\">"
        f"{_e(w['count'])}</td><td>{_e(format_counts(w.get('by_outcome', {})))}</td>"
        f"<td>{'yes' if w.get('recovered', True) else 'no'}</td></tr>" for w in windows)
    return ("<h2>Error windows</h2><table class=\"list\"><tr><th>from</th><th>to</th>"
            f"<th class=\"n\">errors</th><th>by outcome</th><th>recovered</th></tr>{rows}</table>")


def _events(result: Mapping[str, Any]) -> str:
    events = sorted(result.get("events", []), key=lambda e: float(e["at"]))
    rows = "".join(
        f"<tr><td class=\"n\">{float(e['at']):.2f}</td><td>{_e(e.get('source', ''))}</td>"
        f"<td>{_e(e.get('kind', ''))}</td><td>{_e(e.get('subject', ''))}</td>"
        f"<td>{_e(e.get('message', ''))}</td></tr>" for e in events)
    return (f"<details><summary>All {len(events)} events (seconds from load start; negative: "
            "provisioning)</summary><table class=\"list events\"><tr><th class=\"n\">at</th>"
            f"<th>source</th><th>kind</th><th>subject</th><th>message</th></tr>{rows}</table>"
            "</details>")


def render(report: Mapping[str, Any]) -> str:
    """The page of one JSON report (``{"context": ..., "result": ...}``)."""
    context, result = report["context"], report["result"]
    data = chart_data(report)
    figure = svg.figure(data, lanes(result.get("events", []), data.start, data.end))
    test = _e(context.get("test", "?"))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{test}: ingress {_e(result.get('verdict', '?'))}</title>"
        f"<style>{STYLE}</style></head><body>"
        f'<h1 data-test="{test}">{test}</h1>'
        f"{_summary(context, result)}"
        f"{_disruptions(result)}"
        "<h2>Requests and latency, with what the cluster did (test seconds from load start)"
        "</h2>"
        f"{_legend(data)}{figure}{_state_legend()}"
        f"{_error_windows(result)}{_events(result)}"
        "</body></html>\n")


def write(path: Path, report: Mapping[str, Any]) -> Path:
    """Write the page of ``report`` to ``path``; returns the path."""
    path.write_text(render(report), encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild the page of each JSON report named on the command line, next to it."""
    names = sys.argv[1:] if argv is None else argv
    if not names:
        print("usage: python -m pytest_ingress_chaos.report.html REPORT.json...",
              file=sys.stderr)
        return 2
    for name in names:
        path = Path(name)
        print(write(path.with_suffix(".html"), json.loads(path.read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
