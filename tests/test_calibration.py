"""The simulator against the field: every documented case in calibration_cases.py, run through
the plugin as a user would, with time compressed ten times."""

from __future__ import annotations

from pathlib import Path

import pytest

CASES = Path(__file__).with_name("calibration_cases.py")


def test_documented_field_cases_reproduce(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cases=CASES.read_text())
    result = pytester.runpytest_subprocess("-p", "no:benchmark", "-p", "no:cacheprovider",
                                           "--ingress-time-scale", "0.1", "-n", "2")
    print(result.stdout.str().split("ingress-chaos summary", 1)[-1])  # the figures, with -s
    result.assert_outcomes(passed=11)
