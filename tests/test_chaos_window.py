"""Imperative chaos and sleeps belong inside the started load window: outside it they are
errors that say so, not actions at a negative offset, in no report, or blocking after the load.
Run end to end on the simulator, judged by what the user sees."""

from __future__ import annotations

import re
import textwrap

import pytest

FAST = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.2")

CASES = {
    "chaos before start": (
        """
        def test_it(ingress_load, ingress_chaos):
            ingress_chaos.kill_pods()
            ingress_load.run()
        """,
        "ChaosError: ingress_chaos.kill_pods: the load window has not started, and chaos "
        "before it is in no verdict: call ingress_load.start() first, then act"),
    "chaos after run": (
        """
        def test_it(ingress_load, ingress_chaos):
            ingress_load.run()
            ingress_chaos.scale_deployment(1)
        """,
        "ChaosError: ingress_chaos.scale_deployment: the load window ended at 3.* s, and chaos "
        "after it is in no report: act between ingress_load.start() and ingress_load.run(), "
        "or lengthen ingress_load(duration=)"),
    "a sleep past the end": (
        """
        def test_it(ingress_load, ingress_chaos):
            ingress_load.start()
            ingress_load.sleep("60s")
        """,
        "SettingsError: ingress_load.sleep: '60s': the window of duration=3s has *.* s left, and "
        "a sleep past its end would block after the load has stopped; sleep at most what is "
        "left, or lengthen ingress_load(duration=)"),
    "a sleep before start": (
        """
        def test_it(ingress_load):
            ingress_load.sleep("1s")
        """,
        "LoadGeneratorError: ingress_load.sleep: '1s': the load window has not started; call "
        "ingress_load.start() first (a sleep moves along the window)"),
}


@pytest.mark.parametrize(("source", "says"), list(CASES.values()), ids=list(CASES))
def test_chaos_and_sleeps_outside_the_window_are_errors_that_say_so(
        pytester: pytest.Pytester, source: str, says: str) -> None:
    pytester.makepyfile(textwrap.dedent("""
        import pytest
        pytestmark = pytest.mark.ingress_load(duration="3s", rate=20)
    """) + textwrap.dedent(source))
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([says])
    output = result.stdout.str()
    assert not re.search(r"^\S+\.py:\d+: ", output, re.MULTILINE), output
    assert "pytest_ingress_chaos" not in output


def test_sleeps_that_add_up_to_the_window_with_chaos_between_are_fine(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(textwrap.dedent("""
        import pytest
        @pytest.mark.ingress_mode("instance")
        @pytest.mark.ingress_load(duration="3s", rate=20)
        def test_it(ingress_load, ingress_chaos):
            ingress_load.start()
            ingress_load.sleep("2s")
            ingress_chaos.kill_pods()
            ingress_load.sleep("1s")
            ingress_load.run()
    """))
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(passed=1)
