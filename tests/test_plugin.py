"""The plugin end to end, as a user runs it: pytester runs of test files against the sim.

Simulated time is compressed (``--ingress-time-scale``) so a 20 s story takes 2-4 s.
"""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_ingress_chaos.report import jsonreport

from .localservers import answer_ok, closed_port, serve

FAST = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.2")

POD_KILL = """
    import pytest

    @pytest.mark.ingress_mode("ip", "instance")
    @pytest.mark.kill_pods(at="5s")
    def test_pod_kill(ingress_load):
        ingress_load.run()
"""


def _write(pytester: pytest.Pytester, source: str) -> None:
    pytester.makepyfile(textwrap.dedent(source))


def _assert_no_plugin_traceback(output: str) -> None:
    """The failure is the plugin's message alone: no traceback frame (pytest prints each
    frame's location as ``path/to/file.py:LINE: ...``), no path, qualified exception name or
    object repr from the plugin's package, no chained exception."""
    assert not re.search(r"^\S+\.py:\d+: ", output, re.MULTILINE), output
    assert "pytest_ingress_chaos" not in output
    assert "During handling" not in output


def test_pod_kill_fails_in_ip_mode_and_passes_in_instance_mode(
        pytester: pytest.Pytester) -> None:
    _write(pytester, POD_KILL)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "ingress-chaos: backend sim, default mode instance, seed *",
        "*_ test_pod_kill[[]ip[]] _*",
        "ingress SLO violated in *::test_pod_kill[[]ip[]]:",
        "  - * of * requests failed; ingress_slo allows max_errors=0",
        "*load @ http://127.0.0.1:*/ (mode ip, backend sim, seed *)",
        "  time scale 0.2: * test s = * wall-clock s; rates are per wall-clock second *",
        "  Outcomes: 200 x*",
        "  Error windows (seconds from load start):",
        "Timeline (seconds from load start):",
        "     5.0*  chaos      kill_pods: deleting pod kubia-* on node-*",
        "*load       >>> errors begin:*",
        "*alb        target 127.0.0.1:* (kubia-*) deregistered: draining for 300s*",
        "*ingress-chaos summary*",
        "ok       instance *       0         0s  -  *::test_pod_kill[[]instance[]]",
        "FAILED   ip       *::test_pod_kill[[]ip[]]*",
    ])
    # The failure is the report, not a traceback into the plugin; and no error was logged
    # with a traceback (e.g. by asyncio, from a load engine callback) along the way.
    _assert_no_plugin_traceback(result.stdout.str())
    assert "Traceback" not in result.stdout.str()


def test_a_failed_verdict_shows_its_report_once_on_ci_and_its_headline_in_summaries(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """On CI (the CI environment variable) pytest prints a failure's crash message whole in the
    short test summary, and JUnit XML puts it in the failure's message attribute: there a
    failed verdict gives its headline (the verdict and its violations), and the whole report is
    printed once, in the FAILURES section and the JUnit failure's body."""
    monkeypatch.setenv("CI", "true")
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_mode("ip")
        @pytest.mark.kill_pods(at="5s")
        def test_pod_kill(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST, "--junitxml", "junit.xml")
    result.assert_outcomes(failed=1)
    output = result.stdout.lines
    assert sum(line == "  Error windows (seconds from load start):" for line in output) == 1
    summary = output.index("=========================== short test summary info "
                           "============================")
    assert output[summary + 1].startswith(
        "FAILED test_a_failed_verdict_shows_its_report_once_on_ci_and_its_headline_in_summaries.py"
        "::test_pod_kill[ip] - Failed: ingress SLO violated in ")
    assert re.fullmatch(r"  - \d+ of \d+ requests failed; ingress_slo allows max_errors=0",
                        output[summary + 2])
    # ... and says why, from the events, with the remedy and its figure.
    assert re.fullmatch(r"  why: target of kubia-\w+ stayed healthy \d+\.\d s after the pod was "
                        r"deleted; \d+ errors in that stretch\. Remedy: a preStop sleep longer "
                        r"than the .*", output[summary + 3]), output[summary + 3]
    assert output[summary + 4].startswith("=====")  # the headline ends the summary line
    failure = next(ET.parse(pytester.path / "junit.xml").iter("failure"))
    message = failure.get("message", "")
    # The headline: the violation and why.
    assert message.startswith("Failed: ingress SLO violated in ") and message.count("\n") == 2
    assert "Error windows (seconds from load start):" in (failure.text or "")


def test_result_api(pytester: pytest.Pytester) -> None:
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_mode("ip")
        @pytest.mark.ingress_slo(max_errors=None)
        @pytest.mark.ingress_load(rate=50, duration="12s")
        @pytest.mark.kill_pods(at="2s")
        def test_inspect(ingress_load, ingress_service):
            result = ingress_load.run()
            assert result is ingress_load.result
            assert result.requests == 120  # 12 s x 50/s, compressed 5x
            assert result.errors == sum(n for k, n in result.by_outcome.items() if k != "200")
            assert result.errors > 0
            assert set(result.by_outcome) <= {"200", "502", "504", "timeout"}
            assert result.achieved_rate == pytest.approx(50, rel=0.05)
            assert set(result.latency) >= {"p50", "p90", "p99", "max"}
            [window] = result.error_windows
            # from the kill at 2 s to the deregistration, 10 s +- 2 s later, or the window end
            assert 2.0 <= window.start < 3.5 and 9.0 <= window.end <= 12.0
            kinds = [e.kind for e in result.events if e.at >= 0]
            assert kinds.index("kill_pods") < kinds.index("pod.deleted") < kinds.index(
                "target.draining")
            # the replacement is registered 10 s after it is ready: too late for this window
            assert len(result.per_pod) == 3
            assert ingress_service.mode == "ip"
            assert len([p for p in ingress_service.pods() if p.ready]) == 3
    """)
    pytester.runpytest_subprocess(*FAST).assert_outcomes(passed=1)


def test_prestop_longer_than_the_lag_makes_ip_mode_pass(pytester: pytest.Pytester) -> None:
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_mode("ip")
        @pytest.mark.sample_service(prestop_sleep="15s", grace_period="45s")
        @pytest.mark.kill_pods(at="3s")
        def test_prestop(ingress_load):
            result = ingress_load.run()
            assert any(e.kind == "pod.prestop" for e in result.events)
    """)
    pytester.runpytest_subprocess(*FAST).assert_outcomes(passed=1)


def test_slo_thresholds_let_errors_through(pytester: pytest.Pytester) -> None:
    _write(pytester, """
        import pytest

        pytestmark = [pytest.mark.ingress_mode("ip"), pytest.mark.kill_pods(at="2s")]

        @pytest.mark.ingress_slo(max_errors=None, max_error_rate=0.9)
        def test_rate_ok(ingress_load):
            assert ingress_load.run().errors > 0

        @pytest.mark.ingress_slo(ignore=("502", "504", "timeout"))
        def test_ignored(ingress_load):
            assert ingress_load.run().errors > 0

        @pytest.mark.ingress_slo(max_errors=None, max_error_rate=0.001)
        def test_rate_broken(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST, "--ingress-duration", "10s")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*error rate *% is above ingress_slo max_error_rate=0.001*"])


def test_imperative_chaos_and_a_window_left_running(pytester: pytest.Pytester) -> None:
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_mode("instance", "ip")
        @pytest.mark.ingress_load(duration="10s")
        def test_kill_by_hand(ingress_load, ingress_chaos):
            ingress_load.start()
            ingress_load.sleep("2s")
            [victim] = ingress_chaos.kill_pods(count=1)
            assert victim.startswith("kubia-")
            # no run(): the plugin finishes the window and still gives the verdict
    """)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*kill_pods: deleting pod kubia-*",
                                 "FAILED*test_kill_by_hand[[]ip[]]*"])


def test_a_load_window_that_never_ran_fails(pytester: pytest.Pytester) -> None:
    _write(pytester, """
        def test_forgot(ingress_load):
            pass
    """)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_forgot requested ingress_load but never started the "
                                 "load window; call ingress_load.run()*"])


@pytest.mark.parametrize(("decorator", "message"), [
    ('@pytest.mark.kill_pods(att="5s")',
     "marker kill_pods on test_bad: unknown keyword att; accepted: at, count, grace_period, "
     "force, signal"),
    ('@pytest.mark.ingress_load(rate=-5)',
     "marker ingress_load on test_bad: rate=-5: expected a number > 0 and <= 100000, got -5"),
    ('@pytest.mark.sample_service(on_sigterm="crash")',
     "marker sample_service on test_bad: on_sigterm='crash': expected one of 'exit', 'drain', "
     "'ignore', got 'crash'"),
    ('@pytest.mark.kill_pods(at="30s")',
     "marker kill_pods on test_bad: at=30s is not inside the load window (duration=20s)"),
    ('@pytest.mark.ingress_mode("nlb")',
     "marker ingress_mode on test_bad: expected one of 'ip', 'instance', got 'nlb'"),
    ('@pytest.mark.ingress_slo(max_error_rate=5)',
     "marker ingress_slo on test_bad: max_error_rate=5: expected a number from 0 to 1, got 5"),
    ('@pytest.mark.ingress_load(url="http://127.0.0.1:9/")\n@pytest.mark.kill_pods(at="1s")',
     "marker kill_pods on test_bad needs a provisioned service, but the load goes to the "
     "explicit url='http://127.0.0.1:9/'*"),
])
def test_bad_marker_input_is_a_clear_setup_error(pytester: pytest.Pytester, decorator: str,
                                                 message: str) -> None:
    _write(pytester, f"""
        import pytest

        {decorator.replace(chr(10), chr(10) + ' ' * 8)}
        def test_bad(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_bad*", message])
    _assert_no_plugin_traceback(result.stdout.str())


def test_a_marker_without_the_fixture_is_an_error(pytester: pytest.Pytester) -> None:
    _write(pytester, """
        import pytest

        @pytest.mark.kill_pods(at="1s")
        def test_no_fixture():
            pass
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*marker kill_pods on test_no_fixture has no effect: the test "
                                 "uses none of the fixtures ingress_load*"])


@pytest.mark.parametrize(("args", "env", "ini", "message"), [
    (("--ingress-rate", "fast"), {}, "",
     "ERROR: pytest-ingress-chaos: --ingress-rate='fast': expected a number > 0 and <= 100000, "
     "got 'fast'"),
    ((), {"PYTEST_INGRESS_MODE": "alb"}, "",
     "ERROR: pytest-ingress-chaos: env PYTEST_INGRESS_MODE='alb': expected one of 'ip', "
     "'instance', got 'alb'"),
    ((), {}, "ingress_duration = forever",
     "ERROR: pytest-ingress-chaos: ini ingress_duration='forever': expected a duration*"),
    # Checked at start, before any cluster is reached (the kubeconfig does not exist).
    (("--ingress-backend", "kubernetes", "--kubeconfig", "missing.yaml"), {},
     "ingress_profile = generic",
     "ERROR: pytest-ingress-chaos: ini ingress_profile=generic: the generic ingress profile "
     "needs an ingress class: give it with --ingress-class*"),
    (("--ingress-ip-annotations", "a b=c"), {"PYTEST_INGRESS_PROFILE": "generic"}, "",
     "ERROR: pytest-ingress-chaos: --ingress-ip-annotations='a b=c': expected Ingress "
     "annotations: key=value, one per line, or a JSON object of strings;*(key 'a b' is not "
     "[[]prefix/[]]name)"),
])
def test_bad_options_are_usage_errors_naming_their_source(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...],
        env: dict[str, str], ini: str, message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makeini(f"[pytest]\n{ini}\n")
    _write(pytester, "def test_nothing(): pass")
    result = pytester.runpytest_subprocess(*FAST, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_options_from_ini_env_and_cli(pytester: pytest.Pytester,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\ningress_mode = ip\ningress_rate = 10\ningress_duration = 5s\n")
    monkeypatch.setenv("PYTEST_INGRESS_RATE", "20")
    _write(pytester, """
        def test_defaults(ingress_load, ingress_service):
            result = ingress_load.run()
            assert ingress_service.mode == "ip"  # ini
            assert result.target_rate == 40  # cli beats env beats ini
            assert result.requests == 40  # 5 s (ini) x 40/s, compressed 5x
    """)
    result = pytester.runpytest_subprocess(*FAST, "--ingress-rate", "40")
    result.assert_outcomes(passed=1)


def test_explicit_url_gets_load_and_verdict_without_provisioning(
        pytester: pytest.Pytester) -> None:
    _write(pytester, f"""
        import pytest

        def test_up(ingress_load):
            assert ingress_load.run().per_pod == {{"local": 20}}

        @pytest.mark.ingress_load(url="http://127.0.0.1:{closed_port()}/")
        def test_down(ingress_load):
            ingress_load.run()
    """)
    with serve(answer_ok) as url:
        result = pytester.runpytest_subprocess(*FAST, "--ingress-url", url + "/",
                                               "--ingress-duration", "5s",
                                               "--ingress-rate", "20")
    # Nothing listens at test_down's url: a setup error before its window (issue 17).
    result.assert_outcomes(passed=1, errors=1)
    # The header names no backend: nothing was provisioned for the explicit url.
    result.stdout.fnmatch_lines(["*ingress-chaos: url http://127.0.0.1:*",
                                 "*marker ingress_load url='http://127.0.0.1:*/': nothing "
                                 "listens at 127.0.0.1:*"])


def test_reports_json_and_junit_properties(pytester: pytest.Pytester) -> None:
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_load(duration="5s")
        def test_ok(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST, "--ingress-report-dir", "reports",
                                           "--junitxml", "junit.xml", "--ingress-seed", "7")
    result.assert_outcomes(passed=1)
    stem = jsonreport.file_stem("test_reports_json_and_junit_properties.py::test_ok")
    report = json.loads((pytester.path / "reports" / f"{stem}.json").read_text())
    assert report["context"]["seed"] == 7
    assert report["context"]["mode"] == "instance"
    assert report["result"]["requests"] == 60 and report["result"]["errors"] == 0
    properties = {p.get("name"): p.get("value")
                  for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert properties["ingress_requests"] == "60"
    assert properties["ingress_errors"] == "0"
    assert properties["ingress_seed"] == "7"


def test_same_seed_same_victim(pytester: pytest.Pytester) -> None:
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_load(duration="3s")
        @pytest.mark.kill_pods(at="1s")
        def test_kill(ingress_load):
            result = ingress_load.run()
            [kill] = [e for e in result.events if e.kind == "kill_pods"]
            print("VICTIM", kill.subject)
    """)
    victims = []
    for _ in range(2):
        result = pytester.runpytest_subprocess(*FAST, "-s", "--ingress-seed", "1234")
        result.assert_outcomes(passed=1)
        victims += re.findall(r"VICTIM (\S+)", result.stdout.str())
    assert len(victims) == 2 and victims[0] == victims[1]


def test_xdist_two_workers_one_summary(pytester: pytest.Pytester) -> None:
    _write(pytester, POD_KILL + """
    @pytest.mark.ingress_mode("ip", "instance")
    @pytest.mark.ingress_load(duration="5s")
    def test_quiet(ingress_load, ingress_service):
        ingress_load.run()
        assert len(ingress_service.pods()) == 3
""")
    result = pytester.runpytest_subprocess(*FAST, "-n", "2", "--ingress-seed", "99")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*ingress-chaos: backend sim, default mode instance, seed 99*"])
    summary = result.stdout.str().split("ingress-chaos summary", 1)[1]
    assert len(re.findall(r"^(ok|FAILED) +(ip|instance) ", summary, re.MULTILINE)) == 4


@pytest.mark.parametrize(("args", "env", "ini", "named"), [
    (("--ingress-report-dir", "reports"), {}, "", "--ingress-report-dir='reports'"),
    ((), {"PYTEST_INGRESS_REPORT_DIR": "reports"}, "",
     "env PYTEST_INGRESS_REPORT_DIR='reports'"),
    ((), {}, "ingress_report_dir = reports", "ini ingress_report_dir='reports'"),
], ids=["option", "env", "ini"])
def test_a_report_dir_that_is_a_file_is_refused_at_start_naming_its_source(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...],
        env: dict[str, str], ini: str, named: str) -> None:
    """PYTEST_INGRESS_REPORT_DIR=/etc/passwd was refused as "--ingress-report-dir=...: cannot
    create the directory: File exists": an option the user never gave, and mkdir's errno text
    instead of what is wrong."""
    (pytester.path / "reports").write_text("not a directory")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makeini(f"[pytest]\n{ini}\n")
    _write(pytester, """
        def test_never_runs():
            pass
    """)
    result = pytester.runpytest("-p", "no:benchmark", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        f"ERROR: pytest-ingress-chaos: {named}: is a file, not a directory")
    _assert_no_plugin_traceback(result.stdout.str() + result.stderr.str())


def test_a_report_dir_inside_a_file_names_the_file(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (pytester.path / "reports").write_text("not a directory")
    monkeypatch.setenv("PYTEST_INGRESS_REPORT_DIR", "reports/run1")
    _write(pytester, """
        def test_never_runs():
            pass
    """)
    result = pytester.runpytest("-p", "no:benchmark", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        "ERROR: pytest-ingress-chaos: env PYTEST_INGRESS_REPORT_DIR='reports/run1': 'reports' "
        "is a file, not a directory")


def test_native_toml_numbers_are_accepted_and_bad_ones_named(pytester: pytest.Pytester) -> None:
    """pytest 9's native ``[tool.pytest]`` table hands numbers over as numbers."""
    pytester.makefile(".toml", pyproject="""
        [tool.pytest]
        ingress_rate = 30
        ingress_seed = 7
        ingress_time_scale = 0.5
    """)
    _write(pytester, """
        def test_nothing():
            pass
    """)
    result = pytester.runpytest("-p", "no:benchmark", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["ingress-chaos: backend sim, default mode instance, seed 7, "
                                 "run *, time scale 0.5"])
    pytester.makefile(".toml", pyproject="""
        [tool.pytest]
        ingress_seed = "seven"
    """)
    result = pytester.runpytest("-p", "no:benchmark", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ingress_seed*"])
    _assert_no_plugin_traceback(result.stdout.str() + result.stderr.str())


def _run_one_reported_window(pytester: pytest.Pytester) -> pytest.RunResult:
    """A passing 10-request window against a local server, with --ingress-report-dir."""
    with serve(answer_ok) as url:
        _write(pytester, f"""
            import pytest

            @pytest.mark.ingress_load(url="{url}/", rate=20, duration="0.5s")
            def test_reported(ingress_load):
                ingress_load.run()
        """)
        result = pytester.runpytest_subprocess("-p", "no:benchmark", "-p", "no:cacheprovider",
                                               "--ingress-report-dir", "reports")
    result.assert_outcomes(passed=1)
    return result


def test_the_json_report_hook_changes_the_report_before_it_is_written(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        def pytest_ingress_update_json(report, item):
            report["team"] = "platform"
            report["result"].pop("latency_spectrum")
    """)
    _run_one_reported_window(pytester)
    [path] = (pytester.path / "reports").glob("*.json")
    report = json.loads(path.read_text())
    assert report["team"] == "platform"
    assert "latency_spectrum" not in report["result"] and report["result"]["requests"] == 10


def test_a_generate_hook_builds_the_report_and_the_update_hook_still_runs(
        pytester: pytest.Pytester) -> None:
    """pytest-benchmark's pair: the first generate hook to return a report wins; the pages and
    the run's index are drawn from what it kept."""
    pytester.makeconftest("""
        def pytest_ingress_generate_json(result, context, item):
            return {"context": context.to_json(),
                    "result": {"requests": result.requests, "errors": result.errors,
                               "verdict": result.verdict}}

        def pytest_ingress_update_json(report, item):
            report["team"] = "platform"
    """)
    result = _run_one_reported_window(pytester)
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    [path] = (pytester.path / "reports").glob("*.json")
    report = json.loads(path.read_text())
    assert report["result"] == {"requests": 10, "errors": 0, "verdict": "pass"}
    assert report["team"] == "platform"
    assert "test_reported" in (pytester.path / "reports" / "index.html").read_text()
    assert path.with_suffix(".html").exists()


def test_the_sweep_is_one_option_of_the_table_env_included(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--ingress-sweep`` was a command-line flag apart; now PYTEST_INGRESS_SWEEP (and ini
    ingress_sweep) asks for the sweep too, and runs no test."""
    monkeypatch.setenv("PYTEST_INGRESS_SWEEP", "1")
    _write(pytester, """
        def test_never_runs():
            raise AssertionError("the sweep runs no test")
    """)
    result = pytester.runpytest("-p", "no:benchmark", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["pytest-ingress-chaos: backend sim leaves nothing behind to "
                                 "sweep"])
    assert "test_never_runs" not in result.stdout.str()


def test_a_bad_sweep_ttl_names_its_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ningress_sweep_ttl = 0s\n")
    result = pytester.runpytest("-p", "no:benchmark", "-p", "no:cacheprovider",
                                "--ingress-sweep")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        "ERROR: pytest-ingress-chaos: ini ingress_sweep_ttl='0s': expected a duration > 0s "
        "(\"250ms\", \"5s\", \"1m\" or a number of seconds), got '0s'")


@pytest.mark.parametrize(("args", "env", "named"), [
    (["--ingress-sweep-ttl=2h"], {}, "--ingress-sweep-ttl='2h'"),
    ([], {"PYTEST_INGRESS_SWEEP_DRY_RUN": "1"}, "env PYTEST_INGRESS_SWEEP_DRY_RUN='1'"),
])
def test_a_sweep_option_without_the_sweep_is_refused(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str],
        env: dict[str, str], named: str) -> None:
    """A CI job that meant to sweep but forgot --ingress-sweep must not run the tests as if
    nothing were wrong (it exited 0 with the option dropped)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _write(pytester, """
        def test_not_run_either():
            pass
    """)
    result = pytester.runpytest("-p", "no:benchmark", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        f"ERROR: pytest-ingress-chaos: {named}: applies only to the sweep; give --ingress-sweep "
        "too (or ini ingress_sweep, env PYTEST_INGRESS_SWEEP), or drop it")


def test_the_provisioning_timeout_is_an_option_of_the_table(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A provisioning deadline no simulator can meet: the test errors at setup, saying so."""
    monkeypatch.setenv("PYTEST_INGRESS_PROVISION_TIMEOUT", "1ms")
    _write(pytester, """
        def test_service(ingress_service):
            pass
    """)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the simulator did not finish create_service within "
                                 "0.001 s*"])


@pytest.mark.parametrize(("make", "wrong"), [
    (lambda path: None, "no such file"),
    (lambda path: path.mkdir(), "is a directory, not a file"),
], ids=["missing", "directory"])
def test_a_kubeconfig_that_is_no_file_is_refused_at_start_naming_its_source(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
        make: Callable[[Path], None], wrong: str) -> None:
    """Before, the kubernetes backend refused it when it first connected, naming the path but
    not the environment variable it came from."""
    make(pytester.path / "kube")
    monkeypatch.setenv("PYTEST_INGRESS_KUBECONFIG", "kube")
    result = pytester.runpytest("-p", "no:benchmark", "-p", "no:cacheprovider",
                                "--ingress-backend", "kubernetes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        f"ERROR: pytest-ingress-chaos: env PYTEST_INGRESS_KUBECONFIG='kube': {wrong}")


def test_the_simulator_ignores_the_kubeconfig(pytester: pytest.Pytester,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_INGRESS_KUBECONFIG", "missing")
    _write(pytester, """
        def test_plain():
            pass
    """)
    pytester.runpytest("-p", "no:benchmark", "-p", "no:cacheprovider").assert_outcomes(passed=1)
