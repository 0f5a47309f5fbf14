"""A finished window's result in every report: the test's report section and JUnit
properties, the JSON, HTML, PNG and CSV files, the one-line summaries, and the session's
summary row."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from ..core.result import LoadResult
from ..report import html, jsonreport, png, recordscsv, terminal
from ..report.context import ReportContext
from ..report.summary import SummaryRow
from .session import session_of
from .window import WINDOW_KEY, WindowEntry


# tryfirst: the outermost wrapper, so the report it sees has been through pytest's xfail handling.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Publish a finished window's result, whatever the test did after ``run()``: its own
    assertion may fail the test, and the figures still belong in every report."""
    entry = item.stash.get(WINDOW_KEY, None)
    result = entry.window.result if entry is not None else None
    if entry is None or result is None or entry.published or call.when != "call":
        return (yield)
    entry.published = True
    _publish_before_report(item, entry, result)
    report = yield
    _crash_message_to_headline(call, entry, report)
    session_of(item.config).rows.append(_summary_row(item, entry, result, report))
    return report


def _crash_message_to_headline(call: pytest.CallInfo[None], entry: WindowEntry,
                               report: pytest.TestReport) -> None:
    """The one place the plugin edits a report pytest made: a failed verdict's crash message
    becomes the verdict's headline.

    Why: pytest prints the crash message in the short test summary, whole when it runs on CI
    (the CI environment variable), and JUnit XML puts it in the failure's message attribute,
    so the whole report would be there twice. pytest has no hook to choose the crash message;
    ``reprcrash.message`` is what both read. The failure's long form (the FAILURES section,
    the JUnit body) keeps the whole report."""
    if entry.verdict_failure is None or call.excinfo is None:
        return
    failure, headline = entry.verdict_failure
    crash = getattr(report.longrepr, "reprcrash", None)
    if call.excinfo.value is failure and crash is not None:
        crash.message = f"{type(failure).__name__}: {headline}"


def _publish_before_report(item: pytest.Item, entry: WindowEntry, result: LoadResult) -> None:
    """What goes into the test's report: section, JUnit properties, the JSON report."""
    settings = session_of(item.config).settings
    if not result.violations:  # a failure's message is the report already
        item.add_report_section("call", "ingress", terminal.render(result, entry.context))
    for name, value in (("requests", result.requests), ("errors", result.errors),
                        ("achieved_rate", round(result.achieved_rate, 2)),
                        ("p99_ms", round(result.latency["p99"], 2)),
                        ("verdict", result.verdict),
                        ("mode", entry.context.mode), ("seed", entry.context.seed)):
        item.user_properties.append((f"ingress_{name}", value))
    if settings.report_dir is None:
        return
    data = item.config.hook.pytest_ingress_generate_json(result=result, context=entry.context,
                                                         item=item)
    item.config.hook.pytest_ingress_update_json(report=data, item=item)
    path = jsonreport.write(settings.report_dir, data)
    item.user_properties.append(("ingress_report", str(path)))
    page = html.write(path.with_suffix(".html"), data)
    item.user_properties.append(("ingress_html", str(page)))
    if png.available():  # the plot extra
        chart = png.write(path.with_suffix(".png"), data)
        item.user_properties.append(("ingress_png", str(chart)))
    if settings.records:
        records = recordscsv.write(settings.report_dir, entry.context.test,
                                   entry.window.timeline)
        item.user_properties.append(("ingress_records", str(records)))


@pytest.hookimpl(trylast=True)
def pytest_ingress_generate_json(result: LoadResult, context: ReportContext,
                                 item: pytest.Item) -> dict[str, Any]:
    """The default JSON report: everything in the result, with its context."""
    return jsonreport.to_json(result, context)


def _summary_row(item: pytest.Item, entry: WindowEntry, result: LoadResult,
                 report: pytest.TestReport) -> SummaryRow:
    if hasattr(report, "wasxfail"):
        verdict = "xfail" if report.skipped else "XPASS"
    elif result.verdict == "void":
        verdict = "VOID"
    else:
        verdict = "ok" if report.passed else "FAILED"
    return SummaryRow(
        test=item.nodeid, mode=entry.context.mode, requests=result.requests,
        errors=result.errors, by_outcome=result.by_outcome,
        windows=tuple((round(w.start, 2), round(w.end, 2)) for w in result.error_windows),
        disruption=terminal.disruption_cell(result), verdict=verdict,
        dereg_lag=terminal.lag_cell(result))
