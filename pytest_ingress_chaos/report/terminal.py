"""The plain-text report: wrk2's summary plus what wrk2 cannot say (errors by kind, error
windows, chaos and cluster events on the same clock, requests per serving pod)."""

from __future__ import annotations

from collections.abc import Iterable

from ..base.clock import TestClock
from ..base.events import timeline_line
from ..base.outcomes import VerdictKind, format_counts, is_success_label
from ..base.units import DurationStyle, format_duration, format_seconds
from ..core.result import LoadResult
from .context import ReportContext
from .summary import SummaryRow

MAX_TIMELINE_LINES = 60
MAX_WINDOW_LINES = 10  # scattered errors (a keep-alive race) can make hundreds of windows
SUMMARY_WINDOWS = 3  # error windows per row of the session's summary table


def _ms(value: float) -> str:
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.2f}ms"


def headline(result: LoadResult, context: ReportContext) -> str:
    """The verdict and its violations, without the figures: what one-line summaries show (the
    short test summary, a JUnit failure's message). Empty for a clean pass."""
    if not result.violations:
        return ""
    if result.verdict == VerdictKind.VOID:
        lines = [f"ingress verdict VOID in {context.test} (neither pass nor fail; safe to retry):"]
    else:
        lines = [f"ingress SLO violated in {context.test}:"]
    lines += [f"  - {violation}" for violation in result.violations]
    lines += [f"  why: {d.explanation}" for d in result.disruptions if d.explanation and d.errors]
    return "\n".join(lines)


def interrupted_line(result: LoadResult) -> str:
    """What an interrupted window is, said wherever its figures are shown."""
    return (f"ingress window interrupted (Ctrl-C) after {result.duration:.2f}s: no verdict; "
            "the figures are what was measured until then, and a partial window proves "
            "nothing either way")


def render(result: LoadResult, context: ReportContext) -> str:
    """The whole report: the headline (if the test failed), then the figures and the story."""
    lines = [headline(result, context), ""] if result.violations else []
    if result.interrupted:
        lines += [interrupted_line(result), ""]
    lines += [
        f"{result.duration:.2f}s load @ {context.url} (mode {context.mode}, backend "
        f"{context.backend}, seed {context.seed})",
        *_time_scale_lines(result),
        f"  target {result.target_rate:g} req/s, {context.connections} connections, "
        f"timeout {format_seconds(context.timeout)}",
        f"  {result.requests} requests, {result.achieved_rate:.2f} req/s achieved, "
        f"{result.errors} errors ({result.error_rate:.2%})",
        # The ALB's own view: its target group, attributes, or why there is none (aws/).
        *(f"  {e.message}" for e in result.events if e.kind == "aws.note"),
    ]
    latency, lag = result.latency, result.send_lag
    lines.append(
        f"  Latency   avg {_ms(latency['mean'])}  stdev {_ms(latency['stdev'])}  "
        f"p50 {_ms(latency['p50'])}  p90 {_ms(latency['p90'])}  p99 {_ms(latency['p99'])}  "
        f"p99.9 {_ms(latency['p99.9'])}  max {_ms(latency['max'])}  (from the scheduled send)")
    lines.append(f"  Send lag  p50 {_ms(lag['p50'])}  p99 {_ms(lag['p99'])}  "
                 f"max {_ms(lag['max'])}  ({result.late} late, {result.not_sent} not sent; "
                 "the generator's own lag)")
    lines.append(f"  Connections: peak {result.peak_connections} of a cap of "
                 f"{result.max_connections} ({result.max_connections_reason}); "
                 f"{result.waited_for_connection} requests waited for one")
    if result.stalls:
        stalls = ", ".join(f"{s.start:.2f}..{s.end:.2f}" for s in result.stalls[:5])
        more = f" +{len(result.stalls) - 5} more" if len(result.stalls) > 5 else ""
        lines.append(f"  Generator stalled at {stalls}{more} s; errors not certified there: "
                     f"{format_counts(result.uncertified_by_outcome)}")
    lines.append(f"  Outcomes: {format_counts(result.by_outcome)}")
    if result.runner_errors:
        lines.append(f"  Runner-side failures (not counted against the ingress): "
                     f"{result.runner_errors}")
    if result.error_windows:
        lines.append("  Error windows (seconds from load start):")
        shown_windows = result.error_windows[:MAX_WINDOW_LINES]
        lines += [f"    {w.start:7.2f} .. {w.end:7.2f}  {w.count} errors: "
                  f"{format_counts(w.by_outcome)}"
                  + ("  (not recovered by the end of the window)" if not w.recovered else "")
                  for w in shown_windows]
        if len(result.error_windows) > len(shown_windows):
            lines.append(f"    ... {len(result.error_windows) - len(shown_windows)} more windows "
                         "in the JSON report (scattered errors: see the outcomes above)")
    else:
        lines.append("  Error windows: none")
    lines += _disruption_lines(result)
    lines.append(f"  Served per pod: {', '.join(f'{k} {v}' for k, v in result.per_pod.items())}")

    # One clock: what happened, and where the errors began and ended, in order. Provisioning
    # came before 0; chaos done before the window started, and what followed it, belongs here.
    since = min([0.0] + [e.at for e in result.events if e.source == "chaos"])
    rows: list[tuple[float, int, str, str]] = [
        (e.at, 1, e.source, e.message) for e in result.events if e.at >= since
    ]
    for w in result.error_windows:
        rows.append((w.start, 0, "load", f">>> errors begin: {format_counts(w.by_outcome)}"))
        rows.append((w.end, 2, "load", f"<<< errors end ({w.count} in this window)"
                     if w.recovered else
                     f"<<< errors not recovered by the end of the window ({w.count} so far)"))
    rows.sort()
    if rows:
        lines.append("")
        lines.append("Timeline (seconds from load start):")
        shown = rows[:MAX_TIMELINE_LINES]
        lines += [f" {timeline_line(at, source, text)}" for at, _, source, text in shown]
        if len(rows) > len(shown):
            lines.append(f"  ... {len(rows) - len(shown)} more events in the JSON report")
    return "\n".join(lines)


def _time_scale_lines(result: LoadResult) -> list[str]:
    """Under a time scale, test and wall-clock seconds side by side: rates are per wall-clock
    second, so the request counts add up only against wall-clock seconds."""
    if result.time_scale == 1:
        return []
    wall = TestClock(result.time_scale).wall(result.duration)
    return [f"  time scale {result.time_scale:g}: {result.duration:.2f} test s = {wall:.2f} "
            f"wall-clock s; rates are per wall-clock second ({result.target_rate:g} req/s x "
            f"{wall:.2f} s = {result.target_rate * wall:.0f} requests scheduled); every other "
            "time in this report is in test seconds, latencies in wall-clock ms"]


def _disruption_lines(result: LoadResult) -> list[str]:
    if not result.disruptions:
        return []
    lines = ["  Disruption per chaos action (first to last error, until the service recovered):"]
    for d in result.disruptions[:MAX_WINDOW_LINES]:
        what = f"    {d.action.at:7.2f}  {d.action.kind} {d.action.subject}: "
        if d.start is None or d.end is None:
            lines.append(what + "no errors")
            continue
        after = f"recovered at {d.recovered_at:.2f}" if d.recovered_at is not None else \
            "not recovered by the end of the window"
        lines.append(what + f"{d.length:.2f} s ({d.start:.2f} .. {d.end:.2f}), {d.errors} "
                     f"errors: {format_counts(d.by_outcome)}; {after}")
    for d in result.disruptions[:MAX_WINDOW_LINES]:
        if d.explanation and d.deregistration_lag is not None:
            lag = format_duration(d.deregistration_lag, DurationStyle.ON_AXIS)
            lines.append(f"    {d.action.at:7.2f}  deregistration lag {lag} ({d.lag_source}): "
                         f"{d.explanation}")
    if len(result.disruptions) > MAX_WINDOW_LINES:
        lines.append(f"    ... {len(result.disruptions) - MAX_WINDOW_LINES} more in the JSON "
                     "report")
    return lines


def lag_cell(result: LoadResult) -> str:
    """The summary table's deregistration lag column: the longest, "-" when none was seen."""
    lags = [d.deregistration_lag for d in result.disruptions if d.deregistration_lag is not None]
    return f"{max(lags):.2f}s" if lags else "-"


def disruption_cell(result: LoadResult) -> str:
    """The summary table's disruption column: the longest, "0s" with chaos but no errors
    after it, "-" without chaos."""
    longest = result.longest_disruption
    if longest is None:
        return "-"
    return f"{longest.length:.2f}s" if longest.errors else "0s"


def summary_table(rows: Iterable[SummaryRow]) -> list[str]:
    """The session's summary table, one line per load window, sorted by test id."""
    rows = sorted(rows, key=lambda r: r.test)
    # As wide as its widest label: "interrupted" is the one longer than the header.
    width = max([len("verdict") + 1, *(len(row.verdict) for row in rows)])
    lines = [f"{'verdict':<{width}} {'mode':<9} {'requests':>8} {'errors':>7} "
             f"{'disruption':>10}  error windows (s)  dereg lag  test"]
    for row in rows:
        windows = ", ".join(f"{a:g}..{b:g}" for a, b in row.windows[:SUMMARY_WINDOWS]) or "-"
        if len(row.windows) > SUMMARY_WINDOWS:
            windows += f" +{len(row.windows) - SUMMARY_WINDOWS} more"
        errors = format_counts([(k, n) for k, n in row.by_outcome.items()
                                if not is_success_label(k)], empty="")
        suffix = f"  ({errors})" if errors else ""
        if row.note:
            suffix += f"  ({row.note})"
        lines.append(f"{row.verdict:<{width}} {row.mode:<9} {row.requests:>8} "
                     f"{row.errors:>7} {row.disruption:>10}  {windows:<17}  "
                     f"{row.dereg_lag:>9}  {row.test}{suffix}")
    return lines
