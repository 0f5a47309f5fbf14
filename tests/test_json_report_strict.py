"""The JSON report is strict JSON (RFC 8259): numbers that are not finite are written as null,
also when a ``pytest_ingress_update_json`` hook put them there."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from pytest_ingress_chaos.report import jsonreport

from .test_report import CONTEXT, scattered_errors


def _strict_load(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON (RFC 8259)")
    return json.loads(text, parse_constant=refuse)


def test_numbers_that_are_not_finite_are_written_as_null(tmp_path: Path) -> None:
    data = jsonreport.to_json(scattered_errors(100), CONTEXT)
    data["result"]["latency"]["p99"] = math.nan
    data["team"] = {"budget": math.inf, "history": [1.5, -math.inf, (math.nan, 2)]}
    path = jsonreport.write(tmp_path, data)
    written = _strict_load(path.read_text())
    assert written["result"]["latency"]["p99"] is None
    assert written["team"] == {"budget": None, "history": [1.5, None, [None, 2]]}
    assert written["result"]["requests"] == data["result"]["requests"] == 1000


def test_nan_from_a_json_hook_is_written_as_null(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        def pytest_ingress_update_json(report, item):
            report["result"]["score"] = float("nan")
    """)
    pytester.makepyfile("""
        import pytest
        @pytest.mark.ingress_load(duration="1s", rate=10)
        def test_it(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest("-p", "no:benchmark", "-p", "no:cacheprovider",
                                "--ingress-time-scale", "0.2",
                                "--ingress-report-dir", "reports")
    result.assert_outcomes(passed=1)
    [path] = (pytester.path / "reports").glob("*.json")
    assert _strict_load(path.read_text())["result"]["score"] is None
