"""Ctrl-C inside a load window: the window keeps what it measured so far, marked
``interrupted`` (no verdict) in the terminal summary, the JSON report, its page and the run's
index, and nothing the run started is left."""

from __future__ import annotations

import json
import os
import re
import signal
import textwrap
import time

import pytest

from .test_lifecycle import GONE_WITHIN, INNER_HELPERS, InnerRun, inner  # noqa: F401

LONG_WINDOW = INNER_HELPERS + """
    @pytest.mark.sample_service(replicas=2)
    @pytest.mark.ingress_load(rate=30, duration="600s")
    def test_long_window(ingress_load, ingress_service):
        ingress_load.start()
        ingress_load.sleep("1s")  # requests on record before the Ctrl-C
        tell("open", ingress_service)
        ingress_load.{waits_in}  # Ctrl-C arrives in here
"""
# Where the test waits when Ctrl-C comes: in run(), or in an imperative test's sleep().
WAITS_IN = {"in run()": "run()", "in sleep()": 'sleep("500s")'}


@pytest.mark.parametrize("waits_in", list(WAITS_IN))
def test_ctrl_c_keeps_the_window_so_far(pytester: pytest.Pytester, inner: list[InnerRun],  # noqa: F811
                                        waits_in: str) -> None:
    body = LONG_WINDOW.replace("{waits_in}", WAITS_IN[waits_in])
    pytester.makepyfile(test_story=textwrap.dedent(body))
    reports = pytester.path / "reports"
    run = InnerRun(pytester.path, "--ingress-report-dir", str(reports))
    inner.append(run)
    run.wait_for("open", simulator=1, pod=2)
    time.sleep(0.5)  # past tell(): the Ctrl-C lands in run()'s wait or the long sleep()
    os.kill(run.process.pid, signal.SIGINT)
    assert run.wait() == pytest.ExitCode.INTERRUPTED, run.output()
    output = run.output()

    written = sorted(reports.glob("*.json")) if reports.exists() else []
    assert len(written) == 1, f"{written}\n{output}"
    report = json.loads(written[0].read_text())
    result = report["result"]
    assert result["interrupted"] is True, result
    assert result["verdict"] == "interrupted", result
    assert result["violations"] == [], result
    assert result["requests"] > 0, result
    assert 0 < result["duration"] < 600, result

    page = written[0].with_suffix(".html").read_text()
    assert 'data-verdict="interrupted"' in page
    index = (reports / "index.html").read_text()
    assert "1 load windows" in index, index
    assert re.search(r'class="verdict interrupted">interrupted<', index), index

    assert "ingress-chaos summary" in output, output
    rows = [line for line in output.splitlines() if "test_story.py::test_long_window" in line
            and re.match(r"\S+ +instance +\d+ ", line)]
    assert len(rows) == 1 and rows[0].startswith("interrupted "), output
    assert re.search(r"\(Ctrl-C after \d+\.\d\ds: no verdict\)$", rows[0]), rows[0]
    run.tree.assert_all_gone(GONE_WITHIN)
