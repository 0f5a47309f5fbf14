"""Faults stay in their test (issue 14): a report that cannot be written, a report file name
that two tests would share, a user's JSON hook that raises or returns the wrong shape. Each
fails the one test it belongs to, with one line that says what happened; the session goes on
and never ends in an INTERNALERROR."""

from __future__ import annotations

import json
import textwrap

import pytest

from pytest_ingress_chaos.report import jsonreport

FAST = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.2")


def _assert_session_survived(result: pytest.RunResult) -> None:
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output, output
    assert "Traceback" not in output, output


# --- the report directory ---------------------------------------------------------------------

@pytest.mark.parametrize(("directory", "reason"), [
    ("/proc/ingress-reports", "No such file or directory"),  # /proc takes no new entries
    ("/sys/kernel/ingress-reports", "Operation not permitted"),  # sysfs refuses even root
])
def test_a_report_dir_that_cannot_be_created_is_refused_at_start(
        pytester: pytest.Pytester, directory: str, reason: str) -> None:
    pytester.makepyfile("def test_never_runs():\n    pass\n")
    result = pytester.runpytest(*FAST, "--ingress-report-dir", directory)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        f"ERROR: pytest-ingress-chaos: --ingress-report-dir={directory!r}: cannot create the "
        f"directory: {reason}")


BREAKS_THE_DIRECTORY = """
    import shutil
    from pathlib import Path
    import pytest

    @pytest.mark.ingress_load(duration="1s", rate=10)
    def test_1_loses_its_report(ingress_load):
        ingress_load.run()
        shutil.rmtree("reports")  # the directory is gone, a file stands in its place
        Path("reports").write_text("not a directory")

    @pytest.mark.ingress_load(duration="1s", rate=10)
    def test_2_gets_its_report(ingress_load):
        Path("reports").unlink()
        Path("reports").mkdir()
        ingress_load.run()
"""


def test_a_report_that_cannot_be_written_fails_only_its_test(
        pytester: pytest.Pytester) -> None:
    """It was an INTERNALERROR in makereport and the rest of the session never ran."""
    pytester.makepyfile(test_dir=textwrap.dedent(BREAKS_THE_DIRECTORY))
    result = pytester.runpytest_subprocess(*FAST, "--ingress-report-dir", "reports", "-rf")
    _assert_session_survived(result)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines([  # the failure: one line, no traceback
        r"_+ test_1_loses_its_report _+$",
        r"ingress-chaos: the JSON report of test_dir.py::test_1_loses_its_report could not be "
        r"written to reports/test_dir.py_test_1_loses_its_report-[0-9a-f]{10}\.json: File "
        r"exists: reports$",
        r"-+ Captured ingress call -+$"])
    result.stdout.fnmatch_lines(["FAILED test_dir.py::test_1_loses_its_report - ingress-chaos: "
                                 "the JSON report*"])
    [path] = (pytester.path / "reports").glob("*.json")
    assert json.loads(path.read_text())["context"]["test"] == "test_dir.py::test_2_gets_its_report"


def test_an_index_that_cannot_be_written_warns_once(pytester: pytest.Pytester) -> None:
    (pytester.path / "reports" / "index.html").mkdir(parents=True)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.ingress_load(duration="1s", rate=10)
        @pytest.mark.parametrize("n", [1, 2])
        def test_it(ingress_load, n):
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST, "--ingress-report-dir", "reports")
    _assert_session_survived(result)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    lines = [line for line in result.stdout.lines if "index.html" in line]
    assert len(lines) == 1, result.stdout.str()
    assert "ingress-chaos: the run's index could not be written to" in lines[0]
    assert "Is a directory" in lines[0]
    assert len(list((pytester.path / "reports").glob("*.json"))) == 2


# --- report file names ------------------------------------------------------------------------

def test_every_test_id_gets_its_own_report_files(pytester: pytest.Pytester) -> None:
    """``a b``, ``a_b`` and ``a/b`` were one file name: two of the three reports were lost."""
    pytester.makepyfile(test_ids="""
        import pytest

        @pytest.mark.ingress_load(duration="1s", rate=10)
        @pytest.mark.parametrize("n", [1, 2, 3, 4], ids=["a b", "a_b", "a/b", "x" * 300])
        def test_it(ingress_load, n):
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST, "--ingress-report-dir", "reports",
                                           "--ingress-records")
    _assert_session_survived(result)
    result.assert_outcomes(passed=4)
    reports = pytester.path / "reports"
    tests = {json.loads(path.read_text())["context"]["test"]: path
             for path in reports.glob("*.json")}
    assert set(tests) == {f"test_ids.py::test_it[{name}]"
                          for name in ("a b", "a_b", "a/b", "x" * 300)}
    for path in reports.iterdir():
        assert len(path.name.encode()) <= 255, path.name
    for test, path in tests.items():
        assert path.with_suffix(".html").is_file()
        assert (reports / f"{jsonreport.file_stem(test)}.records.csv").is_file()
    index = (reports / "index.html").read_text()
    assert index.count('<tr class="test"') == 4


def test_file_stems_are_readable_short_and_distinct() -> None:
    ids = ["t.py::test[a b]", "t.py::test[a_b]", "t.py::test[a/b]", "t.py::test_a_b",
           "t.py::test[" + "é" * 300 + "]", "t.py::test[" + "é" * 301 + "]"]
    stems = [jsonreport.file_stem(test) for test in ids]
    assert len(set(stems)) == len(ids)
    assert stems[0].startswith("t.py_test_a_b")
    assert all(len(stem.encode()) <= jsonreport.MAX_STEM_BYTES for stem in stems)
    assert jsonreport.file_stem("plain_name") == "plain_name"  # nothing to disambiguate


# --- the user's JSON hooks --------------------------------------------------------------------

@pytest.mark.parametrize(("hook", "body", "said"), [
    ("pytest_ingress_update_json(report, item)", "raise RuntimeError('team quota')",
     "pytest_ingress_update_json raised RuntimeError: team quota"),
    ("pytest_ingress_update_json(report, item)", "del report['context']",
     "pytest_ingress_update_json left a report without 'context'"),
    ("pytest_ingress_generate_json(result, context, item)", "raise KeyError('p99')",
     "pytest_ingress_generate_json raised KeyError: 'p99'"),
    ("pytest_ingress_generate_json(result, context, item)", "return [1, 2]",
     "pytest_ingress_generate_json returned a list, not a dict: [1, 2]"),
    ("pytest_ingress_generate_json(result, context, item)", "return {1, 2}",
     "pytest_ingress_generate_json returned a set, not a dict: {1, 2}"),
    ("pytest_ingress_generate_json(result, context, item)", "return {'result': {}}",
     "pytest_ingress_generate_json returned a dict without 'context': {'result': {}}"),
], ids=["update-raises", "update-drops-context", "generate-raises", "generate-list",
        "generate-set", "generate-no-context"])
def test_a_json_hook_that_fails_fails_only_its_test(pytester: pytest.Pytester, hook: str,
                                                   body: str, said: str) -> None:
    """It was an INTERNALERROR and the rest of the run was lost."""
    pytester.makeconftest(f"""
        def {hook}:
            if item.name == "test_1_hooked":
                {body}
    """)
    pytester.makepyfile(test_hooks="""
        import pytest

        @pytest.mark.ingress_load(duration="1s", rate=10)
        def test_1_hooked(ingress_load):
            ingress_load.run()

        @pytest.mark.ingress_load(duration="1s", rate=10)
        def test_2_not_hooked(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST, "--ingress-report-dir", "reports", "-rf")
    _assert_session_survived(result)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([  # the failure: one line, no traceback
        "_* test_1_hooked _*",
        f"ingress-chaos: the JSON report of test_hooks.py::test_1_hooked: {said}",
        "-* Captured ingress call -*"])
    result.stdout.fnmatch_lines(["FAILED test_hooks.py::test_1_hooked - ingress-chaos: "
                                 "the JSON report*"])
    [path] = (pytester.path / "reports").glob("*.json")
    assert json.loads(path.read_text())["context"]["test"] == "test_hooks.py::test_2_not_hooked"


# --- xdist: a worker that dies ----------------------------------------------------------------

def test_a_dead_workers_finished_tests_keep_their_rows(pytester: pytest.Pytester) -> None:
    """The rows travelled in the worker's workeroutput, sent at its session end: a worker that
    died took the rows of every test it had finished with it."""
    pytester.makepyfile(test_crash="""
        import os
        import pytest

        @pytest.mark.ingress_load(duration="1s", rate=10)
        def test_1_finishes(ingress_load):
            ingress_load.run()

        @pytest.mark.ingress_load(duration="1s", rate=10)
        def test_2_kills_its_worker(ingress_load):
            ingress_load.run()
            os._exit(1)
    """)
    result = pytester.runpytest_subprocess(*FAST, "-n", "1", "-p", "xdist")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines([
        r"verdict +mode .* test$",
        r"ok +instance +2 +0 .* test_crash.py::test_1_finishes$",
        r"CRASHED +- +0 +0 .* test_crash.py::test_2_kills_its_worker  \(worker gw0 died in "
        r"this test; no figures\)$"])
