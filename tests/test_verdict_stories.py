"""Who gets the blame, end to end: stories run as a user runs them (a test file, a pytest
subprocess), judged by the outcome, the message and the summary table a user sees.

- a stalled ingress is an ingress failure, never "the load generator could not hold the rate";
- a load generator starved of CPU is called out as VOID, with its own wording and summary mark;
- a window that ends before the chaos does fails and says how long a window would do;
- a test that fails on its own assertion after the window still gets every report;
- xfail and XPASS read as pytest names them in the summary table.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET

import pytest

from .localservers import answer_ok, serve

FAST = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.2")


def _write(pytester: pytest.Pytester, source: str) -> None:
    pytester.makepyfile(textwrap.dedent(source))


def test_an_ip_mode_rollout_with_hundreds_of_timeouts_fails_on_its_errors(
        pytester: pytest.Pytester) -> None:
    """The issue's story: an ip-mode rollout without mitigation. Every old pod dies at once,
    its address blackholes, and requests to it time out while the ALB still routes there. With
    10 pooled connections and 2 s timeouts (0.4 s of wall time), the pool alone carries 25
    requests/s of timeouts, far fewer than the 150/s asked for: before the pool could grow, the
    requests queued behind the timeouts and the verdict read "void". Capping the pool at 10
    shows that story; the default cap lets the pool grow and the ingress is blamed."""
    _write(pytester, """
        import pytest

        pytestmark = [pytest.mark.ingress_mode("ip"), pytest.mark.rollout_restart(at="2s"),
                      pytest.mark.ingress_load(rate=150, duration="20s", connections=10)]

        def test_grows(ingress_load):
            ingress_load.run()

        @pytest.mark.ingress_load(rate=150, duration="20s", connections=10,
                                  max_connections=10)
        def test_capped(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    grows = out.split("_ test_grows[ip] _")[1].split("_ test_capped[ip] _")[0]
    assert "ingress SLO violated in" in grows
    assert "requests failed; ingress_slo allows max_errors=0" in grows
    assert "could not hold the rate" not in grows
    timeouts = int(grows.split("timeout x")[1].split()[0].rstrip(","))
    assert timeouts >= 100
    capped = out.split("_ test_capped[ip] _")[1]
    assert "ingress verdict VOID in" in capped or "also: the load generator could not hold " \
        "the rate" in capped
    assert "waited more than 50 ms for a connection at the cap of 10 (max_connections" in capped
    result.stdout.fnmatch_lines(["FAILED   ip *::test_grows*"])


def test_a_generator_starved_of_cpu_is_void_not_failed_or_passed(
        pytester: pytest.Pytester) -> None:
    """A busy loop holding the GIL in the test's own process while its window runs: the
    generator cannot send on time. The test fails as VOID, with wording of its own, a VOID
    mark in the summary table and a JUnit property CI can retry on."""
    with serve(answer_ok) as url:
        _write(pytester, f"""
            import pytest

            @pytest.mark.ingress_load(url="{url}/", rate=200, duration="3s")
            def test_starved(ingress_load):
                ingress_load.start()
                ingress_load.sleep("0.5s")
                sum(range(60_000_000))  # C code that never releases the GIL
                ingress_load.run()
        """)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                               "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "ingress verdict VOID in *::test_starved (neither pass nor fail; safe to retry):",
        "  - the load generator could not hold the rate: of 600 scheduled requests, * handed "
        "out more than 50 ms late by the generator itself (it stalled at *",
        "  - the verdict on the ingress is void: rerun on a machine with CPU to spare",
        "*ingress-chaos summary*",
        "VOID     url *::test_starved",
    ])
    assert "ingress SLO violated" not in result.stdout.str()
    properties = {p.get("name"): p.get("value")
                  for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert properties["ingress_verdict"] == "void"


def test_a_window_that_ends_before_the_chaos_fails_and_says_how_long_would_do(
        pytester: pytest.Pytester) -> None:
    """The issue's story: rollout_restart(wait=True) blocks past the end of the window, the old
    pods go after the load stopped, and the verdict used to be a clean pass."""
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_mode("instance")
        @pytest.mark.sample_service(prestop_sleep="5s", grace_period="30s")
        @pytest.mark.ingress_load(duration="6s")
        def test_rollout_past_the_end(ingress_load, ingress_chaos):
            ingress_load.start()
            ingress_load.sleep("4s")
            ingress_chaos.rollout_restart(wait=True)
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "ingress SLO violated in *::test_rollout_past_the_end*:",
        "  - the load window ended at 6.00 s before the chaos did: *pod kubia-* still "
        "terminating*past the pods' termination (their preStop sleep and grace period)",
    ])


def test_a_test_failing_after_its_window_keeps_every_report(pytester: pytest.Pytester) -> None:
    """The test's own assertion fails after ``run()``: the report section, the JSON report,
    the JUnit properties and the summary row are there all the same."""
    with serve(answer_ok) as url:
        _write(pytester, f"""
            import pytest

            @pytest.mark.ingress_load(url="{url}/", rate=20, duration="1s")
            def test_own_assertion(ingress_load):
                result = ingress_load.run()
                assert result.requests == 0, "the user's own check"
        """)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--junitxml=j.xml",
                                               "--ingress-report-dir", "reports")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*the user's own check*",
        "*Captured ingress call*",
        "*20 requests*",
        "*ingress-chaos summary*",
        "FAILED   url *20 *0          -  - *::test_own_assertion",
    ])
    [report] = (pytester.path / "reports").glob("*.json")
    assert json.loads(report.read_text())["result"]["requests"] == 20
    properties = {p.get("name") for p in ET.parse(pytester.path / "j.xml").iter("property")}
    assert {"ingress_requests", "ingress_errors", "ingress_report"} <= properties


def test_the_summary_table_shows_xfail_and_xpass(pytester: pytest.Pytester) -> None:
    with serve(answer_ok) as url:
        _write(pytester, f"""
            import pytest

            pytestmark = pytest.mark.ingress_load(url="{url}/", rate=20, duration="0.5s")

            @pytest.mark.xfail(reason="expected to fail", strict=False)
            def test_expected_failure(ingress_load):
                ingress_load.run()
                assert False

            @pytest.mark.xfail(reason="expected to fail", strict=False)
            def test_unexpected_pass(ingress_load):
                ingress_load.run()
        """)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(xfailed=1, xpassed=1)
    result.stdout.fnmatch_lines_random([
        "xfail    url *::test_expected_failure",
        "XPASS    url *::test_unexpected_pass",
    ])


def test_a_failing_load_worker_is_a_clean_failure(pytester: pytest.Pytester) -> None:
    """``processes=2`` whose second process cannot start: a failure naming the load worker,
    not a traceback through the plugin."""
    with serve(answer_ok) as url:
        _write(pytester, f"""
            import sys
            import pytest

            @pytest.mark.ingress_load(url="{url}/", rate=20, duration="1s", processes=2)
            def test_broken_worker(ingress_load, monkeypatch):
                monkeypatch.setattr(sys, "executable", "/bin/false")
                ingress_load.run()
        """)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*LoadWorkerError: a load process did not start*"])
    assert "pytest_ingress_chaos/" not in result.stdout.str()
