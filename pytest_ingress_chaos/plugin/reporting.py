"""A finished window's result in every report: the test's report section and JUnit
properties, the JSON, HTML, PNG and CSV files, the one-line summaries, and the session's
summary row. A window Ctrl-C interrupted is published too, marked so, though pytest makes no
report of its test."""

from __future__ import annotations

import contextlib
import reprlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..base.errors import IngressChaosError
from ..core.result import LoadResult
from ..report import html, jsonreport, png, recordscsv, terminal
from ..report.context import ReportContext
from ..report.summary import SummaryRow
from .session import ROW_ATTRIBUTE, session_of
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
    lost = None
    try:
        _publish_before_report(item, entry, result)
    except ReportNotWritten as exc:
        lost = str(exc)
    if lost is not None and call.excinfo is None:  # a test that passed fails, as any test
        call.excinfo = _failure(lost)
    report = yield
    _crash_message_to_headline(call, entry, report)
    if lost is not None:
        _report_lost(report, lost)
    # The row travels with the report (to the xdist controller too); the session collects it.
    setattr(report, ROW_ATTRIBUTE, _summary_row(item, entry, result, report).to_json())
    return report


# A pytest_runtest_call wrapper under a name of its own (window.py has the other one);
# pytest takes only names starting "pytest_" as hooks.
@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_call")
def pytest_runtest_call_interrupted(item: pytest.Item) -> Generator[None, object, object]:
    """Ctrl-C in the test's call phase: pytest re-raises the KeyboardInterrupt without a
    report of the test, so the window the interrupt cut short (the load window keeps what it
    measured, marked interrupted) is published here, before the session writes its index and
    its summary. The outermost wrapper: the live progress line is gone by then."""
    try:
        return (yield)
    except KeyboardInterrupt:
        entry = item.stash.get(WINDOW_KEY, None)
        if entry is not None and entry.window.result is not None and not entry.published:
            _publish_interrupted(item, entry, entry.window.result)
        raise


def _publish_interrupted(item: pytest.Item, entry: WindowEntry, result: LoadResult) -> None:
    """The report files and the summary row of a window cut short by Ctrl-C. A file that
    cannot be written is said on the terminal: there is no test report left to fail."""
    entry.published = True
    try:
        _publish_before_report(item, entry, result)
    except ReportNotWritten as exc:
        reporter = item.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(str(exc), yellow=True)
    note = f"Ctrl-C after {result.duration:.2f}s: no verdict"
    row = _row(item, entry, result, "interrupted", note)
    session_of(item.config).rows.append(row)


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


class ReportNotWritten(IngressChaosError):
    """One test's report files could not be made: the message says which, where and why."""


def _failure(line: str) -> pytest.ExceptionInfo[BaseException]:
    """A test failure saying ``line`` and nothing else (no traceback), as ``pytest.fail``
    with ``pytrace=False`` makes it."""
    try:
        pytest.fail(line, pytrace=False)
    except pytest.fail.Exception:
        return pytest.ExceptionInfo.from_current()
    raise AssertionError("unreachable: pytest.fail returned")


def _report_lost(report: pytest.TestReport, line: str) -> None:
    """The test's report failure in its pytest report: the one-line crash message of a test
    the failure failed; a section of a test that had failed already (its own failure stays
    the message)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message == f"Failed: {line}":
        crash.message = line
    else:
        report.sections.append(("ingress-chaos report", line))


def _publish_before_report(item: pytest.Item, entry: WindowEntry, result: LoadResult) -> None:
    """What goes into the test's report: section, JUnit properties, the JSON report.

    Raises :class:`ReportNotWritten` when a report file cannot be made (the directory gone or
    read-only, a user's hook failing): that fails this test alone, the session goes on."""
    settings = session_of(item.config).settings
    if not result.violations:  # a failure's message is the report already
        item.add_report_section("call", "ingress", terminal.render(result, entry.context))
    for name, value in (("requests", result.requests), ("errors", result.errors),
                        ("achieved_rate", round(result.achieved_rate, 2)),
                        ("p99_ms", round(result.latency["p99"], 2)),
                        ("verdict", result.verdict),
                        ("mode", entry.context.mode), ("seed", entry.context.seed)):
        item.user_properties.append((f"ingress_{name}", value))
    directory = settings.report_dir
    if directory is None:
        return
    test = item.nodeid
    data = _report_data(item, entry, result)
    path = jsonreport.path_for(directory, str(data["context"]["test"]))
    with _written("the JSON report", test, path):
        jsonreport.write(directory, data)
    item.user_properties.append(("ingress_report", str(path)))
    with _written("the HTML page", test, path.with_suffix(".html")):
        page = html.write(path.with_suffix(".html"), data)
    item.user_properties.append(("ingress_html", str(page)))
    if png.available():  # the plot extra
        with _written("the PNG chart", test, path.with_suffix(".png")):
            chart = png.write(path.with_suffix(".png"), data)
        item.user_properties.append(("ingress_png", str(chart)))
    if settings.records:
        with _written("the request records", test, directory):
            records = recordscsv.write(directory, entry.context.test, entry.window.timeline)
        item.user_properties.append(("ingress_records", str(records)))


_SHOWN = reprlib.Repr()  # what a hook returned, cut short: a whole report would be pages
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 2, 60, 60


def _hook_call(where: str, name: str, call: Callable[[], Any]) -> Any:
    """A user's hook, called: whatever it raises becomes one line naming the hook."""
    try:
        return call()
    except Exception as exc:
        raise ReportNotWritten(f"ingress-chaos: {where}: {name} raised "
                               f"{type(exc).__name__}: {exc}") from None


def _report_data(item: pytest.Item, entry: WindowEntry, result: LoadResult) -> dict[str, Any]:
    """The JSON report as the user's hooks made it, checked: a hook that raises, or leaves
    something that is not a report, is named with what it did."""
    where = f"the JSON report of {item.nodeid}"
    hook = item.config.hook
    data = _hook_call(where, "pytest_ingress_generate_json",
                      lambda: hook.pytest_ingress_generate_json(result=result,
                                                                context=entry.context, item=item))
    wrong = _wrong_shape(data)
    if wrong:
        raise ReportNotWritten(f"ingress-chaos: {where}: pytest_ingress_generate_json "
                               f"returned {wrong}: {_SHOWN.repr(data)}")
    _hook_call(where, "pytest_ingress_update_json",
               lambda: hook.pytest_ingress_update_json(report=data, item=item))
    wrong = _wrong_shape(data)
    if wrong:
        raise ReportNotWritten(f"ingress-chaos: {where}: pytest_ingress_update_json left "
                               f"{wrong.replace('a dict', 'a report')}")
    return data  # type: ignore[no-any-return]  # checked by _wrong_shape


def _wrong_shape(data: object) -> str:
    """What is wrong with ``data`` as a JSON report, or "" when nothing is: a report is a dict
    whose ``context`` is a dict naming the test and the run (the file name and the run's index
    need both)."""
    if not isinstance(data, dict):
        return f"a {type(data).__name__}, not a dict"
    context = data.get("context")
    if not isinstance(context, dict):
        return "a dict without 'context'"
    missing = [key for key in ("test", "run") if not isinstance(context.get(key), str)]
    if missing:
        return f"a dict whose 'context' has no {' or '.join(map(repr, missing))}"
    return ""


@contextlib.contextmanager
def _written(what: str, test: str, path: Path) -> Iterator[None]:
    """A report file that cannot be written, or a value that JSON or the page cannot hold,
    as one line naming the file, the test and the reason."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.filename is not None and str(exc.filename) != str(path):
            reason = f"{reason}: {exc.filename}"
        raise ReportNotWritten(f"ingress-chaos: {what} of {test} could not be written to "
                               f"{path}: {reason}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # what a hook put there
        raise ReportNotWritten(f"ingress-chaos: {what} of {test} could not be made from the "
                               f"report the JSON hooks left: {type(exc).__name__}: {exc}"
                               ) from None


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
    return _row(item, entry, result, verdict)


def _row(item: pytest.Item, entry: WindowEntry, result: LoadResult, verdict: str,
         note: str = "") -> SummaryRow:
    return SummaryRow(
        test=item.nodeid, mode=entry.context.mode, requests=result.requests,
        errors=result.errors, by_outcome=result.by_outcome,
        windows=tuple((round(w.start, 2), round(w.end, 2)) for w in result.error_windows),
        disruption=terminal.disruption_cell(result), verdict=verdict,
        dereg_lag=terminal.lag_cell(result), note=note)
