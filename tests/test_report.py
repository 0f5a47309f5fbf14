"""The plain-text reports, from hand-made results (no I/O): scattered errors, as a keep-alive
race makes them, are listed briefly, and the JSON report keeps every window."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pytest_ingress_chaos.base import outcomes
from pytest_ingress_chaos.base.clock import TestClock
from pytest_ingress_chaos.base.specs import SLOSpec
from pytest_ingress_chaos.core.result import LoadResult, summarize
from pytest_ingress_chaos.core.timeline import Timeline
from pytest_ingress_chaos.core.verdict import judge
from pytest_ingress_chaos.report import jsonreport, terminal
from pytest_ingress_chaos.report.context import ReportContext
from pytest_ingress_chaos.report.summary import SummaryRow

CONTEXT = ReportContext(test="test_x.py::test_race[ip]", mode="ip", backend="sim",
                        url="http://127.0.0.1:1/", seed=1, connections=1, timeout=2.0,
                        run="0123abcd")


def scattered_errors(every: int) -> LoadResult:
    """100 s at 10 req/s; one 502 every ``every`` requests, each its own error window."""
    timeline = Timeline(TestClock(1.0))
    timeline.load_start = 1000.0
    for i in range(1000):
        due = 1000.0 + i / 10
        outcome = 502 if i % every == 0 else 200
        pod = "kubia-a" if outcomes.is_success(outcome) else None
        timeline.requests.add(due, due + 0.001, due + 0.001, due + 0.002, outcome, pod)
    timeline.load_end = 1100.0
    result = summarize(timeline, 10.0)
    verdict = judge(result, SLOSpec())
    return dataclasses.replace(result, verdict=verdict.kind, violations=verdict.violations)


def row(result: LoadResult) -> SummaryRow:
    return SummaryRow(test=CONTEXT.test, mode="ip", requests=result.requests,
                      errors=result.errors, by_outcome=result.by_outcome,
                      windows=tuple((w.start, w.end) for w in result.error_windows),
                      disruption=terminal.disruption_cell(result),
                      verdict="FAILED" if result.violations else "ok",
                      dereg_lag=terminal.lag_cell(result))


def test_forty_scattered_errors_list_ten_windows_and_point_to_the_json_report() -> None:
    result = scattered_errors(every=25)
    assert len(result.error_windows) == 40
    lines = terminal.render(result, CONTEXT).splitlines()
    listed = [line for line in lines if line.endswith("1 errors: 502 x1")]
    assert len(listed) == terminal.MAX_WINDOW_LINES
    assert "    ... 30 more windows in the JSON report (scattered errors: see the outcomes " \
           "above)" in lines
    assert "  Outcomes: 200 x960, 502 x40" in lines
    assert len(jsonreport.to_json(result, CONTEXT)["result"]["error_windows"]) == 40


def test_a_few_windows_are_all_listed() -> None:
    result = scattered_errors(every=250)
    lines = terminal.render(result, CONTEXT).splitlines()
    assert len([line for line in lines if line.endswith("1 errors: 502 x1")]) == 4
    assert not any("more windows" in line for line in lines)


def test_summary_rows_show_three_windows_and_count_the_rest() -> None:
    header, line = terminal.summary_table([row(scattered_errors(every=25))])
    assert header.split() == ["verdict", "mode", "requests", "errors", "disruption", "error",
                              "windows", "(s)", "dereg", "lag", "test"]
    assert line == ("FAILED   ip            1000      40          -  0..0, 2.5..2.5, 5..5 +37 "
                    "more          -  test_x.py::test_race[ip]  (502 x40)")


def test_summary_rows_without_errors() -> None:
    clean = dataclasses.replace(row(scattered_errors(every=10_000)),  # only request 0 fails
                                errors=0, by_outcome={"200": 1000}, windows=(), verdict="ok")
    assert terminal.summary_table([clean])[1] == (
        "ok       ip            1000       0          -  -                          -  "
        "test_x.py::test_race[ip]")


def test_summary_rows_show_the_deregistration_lag() -> None:
    lagged = dataclasses.replace(row(scattered_errors(every=10_000)), dereg_lag="9.94s")
    assert terminal.summary_table([lagged])[1].endswith("      9.94s  test_x.py::test_race[ip]  "
                                                        "(502 x1)")
    assert SummaryRow.from_json(lagged.to_json()).dereg_lag == "9.94s"


def test_a_summary_row_crosses_xdist_as_plain_data_and_back() -> None:
    original = row(scattered_errors(every=250))
    data = original.to_json()
    assert json.loads(json.dumps(data)) == data  # what execnet carries: plain values only
    assert SummaryRow.from_json(data) == original


def test_a_summary_row_of_another_shape_is_refused() -> None:
    data = row(scattered_errors(every=250)).to_json()
    del data["disruption"]
    with pytest.raises(ValueError, match="not a summary row"):
        SummaryRow.from_json(data)
    with pytest.raises(ValueError, match="verdict 'passed' is not one of ok, FAILED"):
        dataclasses.replace(row(scattered_errors(every=250)), verdict="passed")
