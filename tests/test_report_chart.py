"""The HTML report's parts from hand-made JSON report dicts (no I/O but files in tmp_path): the
chart's geometry (bars by outcome, latency lines, the time axis), the lanes built from events,
escaping, the run's index and the PNG.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_ingress_chaos.base.events import EventKind
from pytest_ingress_chaos.report import html, index, png
from pytest_ingress_chaos.report.chart import (
    MAX_BARS,
    SUCCESS,
    Scale,
    bars,
    chart_data,
    log_ticks,
    nice_ticks,
    order_outcomes,
    outcome_colour,
)
from pytest_ingress_chaos.report.lanes import lanes


def event(at: float, kind: str, subject: str, message: str = "", source: str = "cluster"
          ) -> dict[str, Any]:
    return {"at": at, "source": source, "kind": kind, "subject": subject,
            "message": message or f"{kind} {subject}"}


def bucket(at: float, outcomes: dict[str, int], p99: float | None = None) -> dict[str, Any]:
    errors = sum(n for label, n in outcomes.items() if not label.startswith("2"))
    latency = {} if p99 is None else {"p50": p99 / 4, "p90": p99 / 2, "p99": p99, "max": p99}
    return {"at": at, "ok": sum(outcomes.values()) - errors, "errors": errors,
            "outcomes": outcomes, "latency_ms": latency}


KILL = event(5.0, "kill_pods", "kubia-a", "kill_pods: deleting pod kubia-a on node-1", "chaos")


def story(test: str = "test_x.py::test_kill[ip]", run: str = "run00001") -> dict[str, Any]:
    """The ip-mode story in the report's shape: a pod killed at 5 s, 502s then timeouts until
    its target drains at 9 s; a requested scale-up before load start."""
    buckets = []
    for i in range(100):  # 10 s of 100 ms buckets, 6 requests each
        at = round(i * 0.1, 3)
        if 5.5 <= at < 6.0:
            buckets.append(bucket(at, {"200": 4, "502": 2}, p99=3.0))
        elif 6.0 <= at < 9.0:
            buckets.append(bucket(at, {"200": 4, "timeout": 2}, p99=2000.0))
        elif at == 9.5:
            buckets.append(bucket(at, {}))  # sent nothing: no latency either
        else:
            buckets.append(bucket(at, {"200": 5, "204": 1}, p99=2.5))
    events = [
        event(-2.0, "pod.created", "kubia-a"), event(-1.5, "pod.ready", "kubia-a"),
        event(-1.0, "target.registered", "kubia-a", "target 10.0.0.1:80 (kubia-a) registered "
              "(healthy)", "alb"),
        event(-0.5, "deployment.scaled", "kubia", "scale", "chaos"),
        KILL,
        event(5.01, "pod.deleted", "kubia-a"), event(5.5, "pod.exited", "kubia-a"),
        event(5.6, "pod.gone", "kubia-a"),
        event(9.0, "target.draining", "kubia-a", "target 10.0.0.1:80 (kubia-a) deregistered: "
              "draining for 300s, no new requests", "alb"),
        event(9.2, "surprise.kind", "x", "a kind this version does not know", "custom"),
        event(30.0, "pod.created", "kubia-late"),  # after the axis
    ]
    result = {
        "requests": 600, "errors": 40, "by_outcome": {"200": 530, "204": 30, "502": 10,
                                                     "timeout": 30},
        "duration": 10.0, "target_rate": 60.0, "achieved_rate": 60.0, "time_scale": 0.2,
        "latency": {"p50": 2.0, "p90": 3.0, "p99": 2000.0, "max": 2010.0},
        "verdict": "fail", "violations": ["40 of 600 requests failed; max_errors=0"],
        "buckets": buckets, "events": events,
        "error_windows": [{"start": 5.5, "end": 8.9, "count": 40,
                           "by_outcome": {"timeout": 30, "502": 10}, "recovered": True}],
        "disruptions": [{"action": {k: KILL[k] for k in ("at", "kind", "subject", "message")},
                         "start": 5.5, "end": 8.9, "length": 3.4, "errors": 40,
                         "by_outcome": {"timeout": 30, "502": 10}, "recovered": True,
                         "recovered_at": 9.0}],
    }
    context = {"test": test, "mode": "ip", "backend": "sim", "url": "http://127.0.0.1:1/",
               "seed": 7, "connections": 10, "timeout": 2.0, "run": run}
    return {"context": context, "result": result}


# --- the chart ---------------------------------------------------------------------------


def test_bars_stack_every_2xx_as_one_band_then_statuses_then_failures() -> None:
    data = chart_data(story())
    assert data.bands == [SUCCESS, "502", "timeout"]
    assert (data.start, data.end, data.bucket, data.bucket_ms) == (-0.5, 10.0, 0.1, 100)
    at_55 = next(bar for bar in data.bars if bar.at == 5.5)
    assert at_55.segments(data.bands) == [(SUCCESS, 0, 4), ("502", 4, 6)]
    assert data.peak == 6
    assert [a.kind for a in data.actions] == ["deployment.scaled", "kill_pods"]


def test_outcome_order_and_colours_are_stable() -> None:
    assert order_outcomes(["timeout", "not sent", "503", SUCCESS, "502", "reset",
                           "connection refused", "404", "surprise"]) == [
        SUCCESS, "404", "502", "503", "timeout", "connection refused", "reset", "surprise",
        "not sent"]
    assert outcome_colour("502") == "#d32f2f"
    assert outcome_colour("599") != outcome_colour(SUCCESS)
    assert len({outcome_colour(label) for label in (SUCCESS, "502", "504", "timeout",
                                                    "connection refused", "reset")}) == 6


def test_an_unknown_outcome_has_the_same_colour_in_every_process() -> None:
    """The colour of an outcome no table names is hashed from its label: another process (an
    xdist worker, the next run), with another str hash seed, must draw it in the same colour."""
    code = ("from pytest_ingress_chaos.report.chart import outcome_colour; "
            "print(outcome_colour('599'), outcome_colour('surprise'))")
    seen = set()
    for seed in ("1", "2"):
        ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONHASHSEED": seed})
        seen.add(ran.stdout.strip())
    assert seen == {f"{outcome_colour('599')} {outcome_colour('surprise')}"}


def test_a_report_without_outcomes_per_bucket_shows_ok_and_errors() -> None:
    report = story()
    report["result"]["buckets"] = [{"at": 0.0, "ok": 3, "errors": 1},
                                   {"at": 0.1, "ok": 4, "errors": 0}]
    data = chart_data(report)
    assert data.bands == [SUCCESS, "errors"]
    assert not data.has_latency
    assert "this report has no latency per bucket" in html.render(report)


def test_latency_lines_break_where_a_bucket_sent_nothing() -> None:
    data = chart_data(story())
    lines = data.latency_lines("p99")
    assert [len(line) for line in lines] == [95, 4]
    # The story runs at time scale 0.2: 2000 wall-clock ms are 10000 test ms on the chart.
    assert lines[0][60] == pytest.approx((6.05, 10000.0))
    assert data.latency_range() == pytest.approx((3.125, 10000.0))


def test_more_buckets_than_bars_are_merged_keeping_the_worst_latency() -> None:
    buckets = [bucket(i / 10, {"200": 1}, p99=1.0) for i in range(MAX_BARS * 3 + 1)]
    buckets[5] = bucket(0.5, {"503": 2}, p99=900.0)
    merged, width = bars(buckets)
    assert width == pytest.approx(0.4) and len(merged) == 901  # 3601 buckets, 4 to a bar
    assert merged[1].counts == {SUCCESS: 3, "503": 2}
    assert merged[1].latency_ms["p99"] == 900.0 and merged[0].latency_ms["p99"] == 1.0
    assert sum(bar.total for bar in merged) == len(buckets) + 1


def test_axes() -> None:
    assert nice_ticks(0, 6, 4) == [0, 2, 4, 6]
    assert nice_ticks(-0.5, 20, 10) == [0, 5, 10, 15, 20]
    assert nice_ticks(0, 20, 10) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert log_ticks(0.6, 2000) == [0.1, 1, 10, 100, 1000, 10000]
    x = Scale(0, 10, 100, 200)
    assert (x(5), x(-3), x(11)) == (150, 100, 200)  # off the axis: clipped to its edge
    assert Scale(1, 1000, 0, 300, log=True)(10) == pytest.approx(100)


# --- the lanes ----------------------------------------------------------------------------


def test_lanes_follow_states_from_provisioning_and_keep_chaos_before_the_axis() -> None:
    found = {lane.name: lane for lane in lanes(story()["result"]["events"], -0.5, 10.0)}
    assert list(found) == ["chaos", "pods", "ALB targets", "other"]
    assert [(m.at, m.kind) for m in found["chaos"].rows[0].marks] == [
        (-0.5, "deployment.scaled"), (5.0, "kill_pods")]
    [pod] = found["pods"].rows
    assert [(i.state, i.start, i.end) for i in pod.intervals] == [
        ("ready", -0.5, 5.01), ("terminating", 5.01, 5.5), ("exited", 5.5, 5.6)]
    assert [m.kind for m in pod.marks] == ["pod.gone"]
    [target] = found["ALB targets"].rows
    assert [(i.state, i.start, i.end, i.open) for i in target.intervals] == [
        ("healthy", -0.5, 9.0, False), ("draining", 9.0, 10.0, True)]
    assert "deregistered: draining for 300s" in target.intervals[1].message
    assert found["other"].rows[0].subject == "custom"


def test_every_kind_a_backend_may_report_has_its_lane() -> None:
    """A kind added to the backend contract without a lane would land in "other"."""
    events = [{"at": 1.0, "source": "cluster", "kind": kind, "subject": "x", "message": kind}
              for kind in EventKind]
    assert "other" not in {lane.name for lane in lanes(events, 0.0, 2.0)}


def test_a_drained_node_is_drawn_through_its_shutdown() -> None:
    events = [{"at": at, "source": "cluster", "kind": kind, "subject": "node-1",
               "message": kind} for at, kind in ((1.0, "node.labelled"), (2.0, "node.cordoned"),
                                                 (3.0, "node.terminating"),
                                                 (4.0, "node.terminated"),
                                                 (8.0, "node.not_ready"))]
    [nodes] = lanes(events, 0.0, 10.0)
    assert [(i.state, i.start, i.end) for i in nodes.rows[0].intervals] == [
        ("excluded", 1.0, 2.0), ("cordoned", 2.0, 3.0), ("shutting down", 3.0, 4.0),
        ("not ready", 8.0, 10.0)]


# --- the page and the index -----------------------------------------------------------------


def test_every_string_from_the_data_is_escaped() -> None:
    nasty = "<script>alert(1)</script>&\"'"
    report = story(test=f"test_x.py::test_k[{nasty}]")
    report["result"]["events"].append(event(7.0, "pod.signal", nasty, nasty))
    report["result"]["violations"].append(nasty)
    report["result"]["by_outcome"][nasty] = 1
    page = html.render(report)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#x27;" in page


def test_the_page_has_the_header_the_disruptions_and_the_figure() -> None:
    page = html.render(story())
    for expected in ('data-verdict="fail"', "40 of 600 requests failed; max_errors=0",
                     '<tr class="disruption"><td>5.00 s</td>', '<td class="n">3.40 s</td>',
                     "yes, at 9.00 s", "<th>seed</th><td>7</td>", "<th>time scale</th><td>0.2",
                     'data-outcome="timeout"', 'data-percentile="p99"', 'class="error-window"',
                     'data-state="draining"', 'class="chaos-line"'):
        assert expected in page, expected
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        "http://127.0.0.1:1/", "")  # nothing to fetch: the page stands alone


def test_a_page_is_rebuilt_from_a_json_file(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    report = story()
    report["result"]["violations"] = ["changed by a pytest_ingress_update_json hook"]
    (tmp_path / "t.json").write_text(json.dumps(report))
    assert html.main([str(tmp_path / "t.json")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 't.html'}\n"
    assert "changed by a pytest_ingress_update_json hook" in (tmp_path / "t.html").read_text()


def test_the_index_lists_only_this_runs_reports(tmp_path: Path) -> None:
    for name, report in (("a", story("test_a.py::test_a", run="this0001")),
                         ("b", story("test_b.py::test_b", run="earlier1")),
                         ("c", story("test_c.py::test_c[<i>]", run="this0001"))):
        (tmp_path / f"{name}.json").write_text(json.dumps(report))
    (tmp_path / "notes.json").write_text("[1, 2]")  # the user's own file
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "a.png").write_bytes(b"")
    entries = index.collect(tmp_path, "this0001")
    assert [(e.test, e.page, e.chart, e.longest, e.longest_by) for e in entries] == [
        ("test_a.py::test_a", "a.html", "a.png", 3.4, "kill_pods at 5.00 s"),
        ("test_c.py::test_c[<i>]", "c.html", None, 3.4, "kill_pods at 5.00 s")]
    page = index.write(tmp_path, "this0001").read_text()
    assert '<a href="a.html">test_a.py::test_a</a>' in page
    assert "test_c.py::test_c[&lt;i&gt;]" in page and "test_b" not in page


# --- the PNG ------------------------------------------------------------------------------


def test_the_png_is_a_chart_of_the_expected_size(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = png.write(tmp_path / "chart.png", story())
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (png.WIDTH_INCHES * png.DPI, png.HEIGHT_INCHES * png.DPI)
    assert len(data) > 20_000  # bars, lines and text, not a blank canvas


def _legend_items(page: str) -> dict[str, str]:
    """The chart legend's entries as a reader sees them: text -> the swatch's markup."""
    legend = page.split('data-legend="chart">', 1)[1].split("</ul>", 1)[0]
    items = [item.split("</li>", 1)[0] for item in legend.split("<li>")[1:]]
    return {item.rsplit("</span>", 1)[1]: item.rsplit("</span>", 1)[0] for item in items}


def test_the_service_wide_endpoints_row_is_named_as_the_service() -> None:
    report = story()
    report["result"]["events"] += [
        event(-1.2, "endpoint.ready", "kubia-a", "endpoint 10.0.0.1 (kubia-a) ready"),
        event(5.02, "endpoints.updated", "kubia", "endpoints of service kubia: 0 ready")]
    page = html.render(report)
    row = page.split('data-subject="kubia">', 1)[1].split("</g>", 1)[0]
    assert ">Service kubia: all endpoints</text>" in row
    assert ">kubia-a</text>" in page.split('data-lane="endpoints"', 1)[1]  # a pod's, as before


def test_p99_and_chaos_actions_look_different_in_the_legend() -> None:
    items = _legend_items(html.render(story()))
    assert items["latency p99"] != items["chaos action"]


def test_the_latency_axis_is_in_the_test_seconds_of_the_header_timeout() -> None:
    """At time scale 0.2 a request timing out after the header's 2 s (test) takes 400 wall
    ms: the chart draws it at 2000 test ms, under the timeout, not 5 times lower."""
    report = story()
    for b in report["result"]["buckets"]:
        if b["latency_ms"] and b["latency_ms"]["p99"] == 2000.0:
            b["latency_ms"] = {"p50": 100.0, "p90": 400.0, "p99": 400.0, "max": 400.0}
    page = html.render(report)
    assert "<th>timeout</th><td>2.00 s (test)</td>" in page
    latency = page.split('data-panel="latency">', 1)[1].split("</g>", 1)[0]
    assert ">latency, test ms</text>" in latency
    assert "6.05 s: p99 2000.0 test ms</title>" in latency
    assert "p99 400.0" not in latency
