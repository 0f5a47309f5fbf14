"""The run's ``index.html`` in the report directory: every test of this run with its mode,
verdict, errors and longest disruption, linked to its page.

It is built from the JSON reports on disk, not from memory, because under pytest-xdist the
workers wrote them and only the controller writes the index. A directory may hold reports of
earlier runs too: only those whose ``context.run`` is this run's id are listed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..base.outcomes import VerdictKind, format_counts, is_success_label
from .html import STYLE

NAME = "index.html"


@dataclass(frozen=True)
class Entry:
    test: str
    mode: str
    verdict: str
    requests: int
    errors: int
    failures: dict[str, int]  # outcomes other than 2xx, as in the JSON report's by_outcome
    longest: float | None  # the longest disruption (or error window), test s; None: no chaos
    longest_by: str  # what it followed: the chaos action, or "" for an error window
    page: str  # the test's page, relative to the index
    chart: str | None  # its PNG, if one was written


def _longest(result: Mapping[str, Any]) -> tuple[float | None, str]:
    disruptions = result.get("disruptions")
    if disruptions:
        worst = max(disruptions, key=lambda d: float(d.get("length") or 0.0))
        action = worst.get("action", {})
        return float(worst.get("length") or 0.0), (
            f"{action.get('kind', '?')} at {float(action.get('at', 0.0)):.2f} s")
    windows = result.get("error_windows", [])
    if disruptions is None and windows:  # a report written before disruptions were measured
        return max(float(w["end"]) - float(w["start"]) for w in windows), "error window"
    return None, ""  # no chaos action, no disruption to measure


def entry(path: Path, report: Mapping[str, Any]) -> Entry:
    """The index row of the JSON report at ``path``."""
    context, result = report["context"], report["result"]
    longest, by = _longest(result)
    chart = path.with_suffix(".png")
    return Entry(
        test=str(context["test"]), mode=str(context.get("mode", "?")),
        verdict=str(result.get("verdict", "?")), requests=int(result.get("requests", 0)),
        errors=int(result.get("errors", 0)),
        failures={k: int(v) for k, v in result.get("by_outcome", {}).items()
                  if not is_success_label(str(k))},
        longest=longest, longest_by=by, page=path.with_suffix(".html").name,
        chart=chart.name if chart.exists() else None)


def collect(directory: Path, run: str) -> list[Entry]:
    """The rows of every JSON report of run ``run`` in ``directory``, by test id. Files that
    are not this plugin's reports (any other JSON the user keeps there) are passed over."""
    entries = []
    for path in sorted(directory.glob("*.json")):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
            if report["context"].get("run") != run:
                continue
            entries.append(entry(path, report))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return sorted(entries, key=lambda e: e.test)


def render(entries: list[Entry], run: str) -> str:
    head = ("<tr><th>test</th><th>mode</th><th>verdict</th><th class=\"n\">requests</th>"
            "<th class=\"n\">errors</th><th>failed requests</th><th class=\"n\">longest "
            "disruption</th><th>after</th><th>chart</th></tr>")
    rows = []
    for e in entries:
        longest = "-" if e.longest is None else f"{e.longest:.2f} s"
        failures = format_counts(e.failures, empty="-")
        chart = (f'<a href="{escape(quote(e.chart))}">png</a>' if e.chart else "-")
        rows.append(
            f'<tr class="test" data-test="{escape(e.test)}">'
            f'<td><a href="{escape(quote(e.page))}">{escape(e.test)}</a></td>'
            f"<td>{escape(e.mode)}</td><td><span class=\"verdict {escape(e.verdict)}\">"
            f"{escape(e.verdict)}</span></td><td class=\"n\">{e.requests}</td>"
            f"<td class=\"n\">{e.errors}</td><td>{escape(failures)}</td>"
            f"<td class=\"n\">{longest}</td><td>{escape(e.longest_by)}</td><td>{chart}</td></tr>")
    body = (f'<table class="list index">{head}{"".join(rows)}</table>' if rows
            else '<p class="muted">no load window in this run</p>')
    failed = sum(1 for e in entries if e.verdict != VerdictKind.PASS)
    interrupted = sum(1 for e in entries if e.verdict == VerdictKind.INTERRUPTED)
    cut = f" ({interrupted} interrupted: no verdict)" if interrupted else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>ingress-chaos run {escape(run)}</title><style>{STYLE}</style></head><body>"
            f"<h1>ingress-chaos run {escape(run)}</h1>"
            f"<p>{len(entries)} load windows, {failed} not passed{cut}.</p>{body}</body></html>\n")


def write(directory: Path, run: str) -> Path:
    """Write ``directory/index.html`` for run ``run``; returns its path."""
    path = directory / NAME
    path.write_text(render(collect(directory, run), run), encoding="utf-8")
    return path
