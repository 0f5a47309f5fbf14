"""The verdict is the plugin's, and the markers say one thing: pytester runs against the sim.

- A load window that finished with FAIL or VOID fails its test whatever thread called
  ``run()`` and whatever the test caught, with the message ``run()`` raised, shown once.
- Markers of one kind merge keyword by keyword, closest wins per keyword; two markers of one
  kind on one node that disagree on a keyword are a setup error naming both.
- ``ingress_slo(max_disruption=)`` on a test without any chaos has nothing to judge: a setup
  error.
"""

from __future__ import annotations

import textwrap

import pytest

from .localservers import answer_ok, serve

FAST = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.2")

# A pod kill in ip mode breaks the default SLO (max_errors=0): the sim's ALB keeps sending to
# the deleted pod's IP until it deregisters it.
BROKEN = """
    import threading

    import pytest

    pytestmark = [pytest.mark.ingress_mode("ip"), pytest.mark.ingress_load(duration="10s"),
                  pytest.mark.kill_pods(at="2s")]
"""


def _write(pytester: pytest.Pytester, source: str) -> None:
    pytester.makepyfile(test_broken=textwrap.dedent(source))


def _report_shown_once(output: str) -> None:
    """The violation's whole report appears once: in the FAILURES section."""
    assert output.count("Timeline (seconds from load start):") == 1, output


@pytest.mark.parametrize("body", [
    pytest.param("""
        thread = threading.Thread(target=ingress_load.run)
        thread.start()
        thread.join()
    """, id="run-in-a-joined-thread"),
    pytest.param("""
        threading.Thread(target=ingress_load.run).start()  # never joined
    """, id="run-in-a-thread-left-running"),
    pytest.param("""
        try:
            ingress_load.run()
        except AssertionError:
            pass
    """, id="violation-caught"),
])
def test_a_broken_slo_fails_the_test_whoever_ran_the_window(
        pytester: pytest.Pytester, body: str) -> None:
    _write(pytester, BROKEN)
    with (pytester.path / "test_broken.py").open("a") as source:
        source.write("\n\ndef test_broken(ingress_load):" +
                     textwrap.indent(textwrap.dedent(body), " " * 4))
    # pytest's own warning on the thread's uncaught exception would repeat the report; that
    # is pytest's, not the verdict's, so it is left out to count the verdict's.
    result = pytester.runpytest_subprocess(
        *FAST, "-W", "ignore::pytest.PytestUnhandledThreadExceptionWarning")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*_ test_broken[[]ip[]] _*",
        "ingress SLO violated in *::test_broken[[]ip[]]:",
        "  - * of * requests failed; ingress_slo allows max_errors=0",
        "*ingress-chaos summary*",
        "FAILED   ip *::test_broken*",
    ])
    _report_shown_once(result.stdout.str())


def test_a_violation_raised_in_the_test_is_reported_once(pytester: pytest.Pytester) -> None:
    _write(pytester, BROKEN + """
    def test_broken(ingress_load):
        ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["ingress SLO violated in *::test_broken[[]ip[]]:"])
    _report_shown_once(result.stdout.str())


def test_a_caught_void_verdict_still_makes_the_test_void(pytester: pytest.Pytester) -> None:
    """A busy loop holding the GIL starves the load generator: the window is VOID; the test
    catching the AssertionError of run() does not make it a pass."""
    with serve(answer_ok) as url:
        _write(pytester, f"""
            import pytest

            @pytest.mark.ingress_load(url="{url}/", rate=200, duration="3s")
            def test_starved(ingress_load):
                ingress_load.start()
                ingress_load.sleep("0.5s")
                sum(range(60_000_000))  # C code that never releases the GIL
                try:
                    ingress_load.run()
                except AssertionError:
                    pass
        """)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "ingress verdict VOID in *::test_starved (neither pass nor fail; safe to retry):",
        "*ingress-chaos summary*",
        "VOID     url *::test_starved",
    ])


def test_two_markers_of_one_kind_on_a_function_that_disagree_are_a_setup_error(
        pytester: pytest.Pytester) -> None:
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_load(rate=5)
        @pytest.mark.ingress_load(rate=10)
        def test_twice(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_twice*",
        "marker ingress_load on test_twice: two ingress_load markers on test_twice give rate "
        "different values: ingress_load(rate=*) and ingress_load(rate=*); keep one"])


def test_class_and_method_markers_merge_keyword_by_keyword(pytester: pytest.Pytester) -> None:
    """A class ``rate=`` and a method ``duration=`` both apply; the method's ``rate=`` would
    win over the class's. 4 req/s for 5 s at time scale 0.2: 4 x 1 s = 4 requests."""
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_load(rate=4, connections=2)
        class TestMerged:
            @pytest.mark.ingress_load(duration="5s", connections=3)
            def test_merged(self, ingress_load):
                result = ingress_load.run()
                assert ingress_load.spec.rate == 4
                assert ingress_load.spec.duration == 5
                assert ingress_load.spec.connections == 3
                assert result.requests == 4
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(passed=1)


def test_max_disruption_with_the_chaos_fixture_but_no_action_fails(
        pytester: pytest.Pytester) -> None:
    """The fixture lets the test act by hand; a window in which it never did has no
    disruption to bound, and must not pass as if the bound were kept."""
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_load(duration="3s")
        @pytest.mark.ingress_slo(max_disruption="2s")
        def test_forgot_to_act(ingress_load, ingress_chaos):
            ingress_load.run()
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ingress_slo(max_disruption=2s) has nothing to judge: no "
                                 "chaos action ran in the window*"])


def test_max_disruption_without_any_chaos_is_a_setup_error(pytester: pytest.Pytester) -> None:
    """A disruption is measured from a chaos action: without one the check could never fail."""
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_slo(max_disruption="2s")
        def test_calm(ingress_load):
            ingress_load.run()

        @pytest.mark.ingress_load(duration="5s")
        @pytest.mark.ingress_slo(max_disruption="2s", max_errors=None)
        def test_by_hand(ingress_load, ingress_chaos):
            ingress_load.start()
            ingress_load.sleep("1s")
            ingress_chaos.kill_pods(count=1)
            ingress_load.run()
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_calm*",
        "marker ingress_slo on test_calm: max_disruption=2s has nothing to judge: the test has "
        "no chaos (no kill_pods, rollout_restart, scale_deployment or drain_node marker, no "
        "ingress_chaos fixture); add one, or drop max_disruption"])
