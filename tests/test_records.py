"""``--ingress-records``: every request of a load window as one CSV row in the report directory.

Inner pytest runs against the sim, in compressed time, like ``test_plugin.py``. The file is read
the way a user would: with the csv module, and with pandas (a test dependency, not one of the
plugin).
"""

from __future__ import annotations

import csv
import json
import textwrap
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pandas
import pytest

from pytest_ingress_chaos.base import outcomes
from pytest_ingress_chaos.base.clock import TestClock
from pytest_ingress_chaos.core.timeline import Timeline
from pytest_ingress_chaos.report import jsonreport, recordscsv

FAST = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.2")

# ip mode and a pod kill: the ALB keeps sending to the dead pod for a while, so the records hold
# failures next to successes and more than one serving pod.
RECORDED = """
    import pytest

    @pytest.mark.ingress_mode("ip")
    @pytest.mark.kill_pods(at="2s")
    @pytest.mark.ingress_load(duration="8s")
    @pytest.mark.ingress_slo(max_errors=None)
    def test_recorded(ingress_load):
        assert ingress_load.run().errors > 0
"""
STEM = jsonreport.file_stem("test_records_file.py::test_recorded[ip]")
COLUMNS = ["scheduled", "dispatched", "sent", "end", "outcome", "pod"]


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_records_file=textwrap.dedent(RECORDED))
    return pytester.runpytest_subprocess(*FAST, *args)


def test_every_request_is_one_row_that_matches_the_json_report(
        pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--ingress-report-dir", "reports", "--ingress-records",
                  "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1)
    reports = pytester.path / "reports"
    report = json.loads((reports / f"{STEM}.json").read_text())["result"]
    path = reports / f"{STEM}.records.csv"
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == COLUMNS
        rows = list(reader)

    assert len(rows) == report["requests"] > 0
    assert Counter(row["outcome"] for row in rows) == report["by_outcome"]
    assert len(set(report["by_outcome"])) > 1  # successes and failures both recorded
    for row in rows:
        scheduled, dispatched, sent, end = (float(row[name]) for name in COLUMNS[:4])
        assert 0 <= scheduled <= dispatched <= sent <= end, row
        # Test seconds from load start: the schedule stays inside the window.
        assert scheduled < report["duration"]
    served = Counter(row["pod"] for row in rows if row["outcome"] == "200")
    assert dict(served) == report["per_pod"]  # the serving pod of every success, by name
    assert all(row["pod"] == "" for row in rows if row["outcome"] in ("timeout", "reset",
                                                                     "connection refused"))
    properties = {p.get("name"): p.get("value")
                  for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert pytester.path / properties["ingress_records"] == path

    frame = pandas.read_csv(path, keep_default_na=False, dtype={"outcome": str, "pod": str})
    assert list(frame.columns) == COLUMNS and len(frame) == report["requests"]
    assert frame["outcome"].value_counts().to_dict() == report["by_outcome"]


def test_no_records_file_unless_asked(pytester: pytest.Pytester) -> None:
    _run(pytester, "--ingress-report-dir", "reports").assert_outcomes(passed=1)
    written = {p.name for p in (pytester.path / "reports").iterdir()}
    assert f"{STEM}.json" in written
    assert not [name for name in written if name.endswith(".csv")]


@pytest.mark.parametrize(("args", "ini", "source"), [
    (("--ingress-records",), "", "--ingress-records"),
    ((), "ingress_records = true", "ini ingress_records"),
])
def test_records_without_a_report_dir_is_a_usage_error_naming_both_options(
        pytester: pytest.Pytester, args: tuple[str, ...], ini: str, source: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = _run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-ingress-chaos: {source}*"
                                 "--ingress-report-dir*"])
    assert "Traceback" not in result.stderr.str()


def test_a_bad_records_value_names_its_source(pytester: pytest.Pytester,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_INGRESS_RECORDS", "sometimes")
    result = _run(pytester, "--ingress-report-dir", "reports")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-ingress-chaos: env PYTEST_INGRESS_RECORDS="
                                 "'sometimes': expected true or false, got 'sometimes'"])


def test_rows_are_test_seconds_from_load_start_and_odd_names_are_quoted(tmp_path: Path) -> None:
    """The writer alone, on a hand-made timeline: the time scale is undone like
    ``Timeline.offset`` does, and a pod name a CSV reader would split is quoted."""
    timeline = Timeline(TestClock(0.5))
    timeline.load_start = 100.0
    timeline.requests.add(100.5, 100.5, 100.75, 101.0, 200, "pod,with comma")
    timeline.requests.add(100.25, 100.5, 100.5, 102.0, outcomes.TIMEOUT, None)
    path = recordscsv.write(tmp_path, "tests/test_a.py::test_b[ip]", timeline)
    assert path.name == "tests_test_a.py_test_b_ip-42c46edf62.records.csv"
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows == [COLUMNS,
                    ["1.000000", "1.000000", "1.500000", "2.000000", "200", "pod,with comma"],
                    ["0.500000", "1.000000", "1.000000", "4.000000", "timeout", ""]]
    assert float(rows[1][0]) == timeline.offset(100.5)
