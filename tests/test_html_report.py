"""The HTML report as a user opens it: an inner pytest run of the ip-mode pod kill (the field
report's failing story) under pytest-xdist writes the pages, and a real headless Chromium
(Debian's package, driven by selenium) opens the run's index, follows the link to the failing
test's page and finds the story there: no console error, bars of the error outcomes, the kill
and the target's draining in the lanes. Nothing on the pages may need the network: the browser
runs with background networking off and the pages are opened from files.

Without chromium or chromedriver the browser test skips and says why, unless
PYTEST_INGRESS_REQUIRE_BROWSER=1 (CI sets it), when it fails.
"""

from __future__ import annotations

import json
import os
import struct
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_ingress_chaos.report import jsonreport, png

FAST = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.2")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1600")
STRANGE_ID = "<b>&'\"x"  # a parameter id that must reach the pages as text, not markup

STORY = f"""
    import pytest

    @pytest.mark.ingress_mode("ip")
    @pytest.mark.ingress_load(rate=60, duration="20s")
    @pytest.mark.kill_pods(at="5s")
    @pytest.mark.xfail(strict=True, reason="ip mode: the ALB keeps sending to the dead pod's "
                       "address until the controller deregisters it")
    def test_ip_mode_pod_kill(ingress_load):
        ingress_load.run()


    @pytest.mark.ingress_mode("instance")
    @pytest.mark.ingress_load(rate=20, duration="2s")
    @pytest.mark.parametrize("note", [{STRANGE_ID!r}])
    def test_steady(ingress_load, note):
        ingress_load.run()
"""

# A project's hook adds its own event to the JSON report: the page is built from that dict.
HOOK = """
    def pytest_ingress_update_json(report, item):
        report["result"]["events"].append({
            "at": 1.0, "source": "team", "kind": "team.note", "subject": "release",
            "message": "a note from the team's pytest_ingress_update_json hook"})
"""


def _browser(profile: Path) -> Any:
    """A headless Chromium with a fresh profile, or a skip (a failure under
    PYTEST_INGRESS_REQUIRE_BROWSER=1) naming what is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package (the test extra)")
    if missing:
        reason = (f"no browser for the HTML report test: {', '.join(missing)} missing (apt-get "
                  "install chromium chromium-driver; pip install selenium)")
        if os.environ.get("PYTEST_INGRESS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}; PYTEST_INGRESS_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = _browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _svg_titles(driver: Any, selector: str) -> list[str]:
    return [str(t) for t in driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map("
        "e => e.querySelector('title').textContent)", selector)]


def _boxes(driver: Any, selector: str) -> list[dict[str, float]]:
    """The rendered boxes (left, width, height) of the elements matching ``selector``."""
    return list(driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => {"
        "const r = e.getBoundingClientRect(); return {left: r.left, width: r.width, "
        "height: r.height}; })", selector))


def _earlier_run(reports: Path) -> None:
    """A report of an earlier run in the same directory, and a file of the user's."""
    reports.mkdir()
    (reports / "test_earlier.py_test_gone.json").write_text(json.dumps({
        "context": {"test": "test_earlier.py::test_gone", "mode": "ip", "run": "earlier1"},
        "result": {"verdict": "fail", "requests": 1, "errors": 1, "by_outcome": {"502": 1}}}))
    (reports / "notes.json").write_text("[]")


def test_the_failing_ip_mode_story_reads_in_a_browser(
        pytester: pytest.Pytester, browser: Any, tmp_path: Path) -> None:
    pytester.makepyfile(test_story=textwrap.dedent(STORY))
    pytester.makeconftest(textwrap.dedent(HOOK))
    reports = pytester.path / "reports"
    _earlier_run(reports)
    result = pytester.runpytest_subprocess(*FAST, "-n", "2", "--junitxml=junit.xml",
                                           "--ingress-report-dir", "reports")
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines(["HTML reports: reports/index.html"])

    # Every page, and the PNG with the plot extra, is recorded as the JSON report is.
    stem = jsonreport.file_stem("test_story.py::test_ip_mode_pod_kill[ip]")
    story = reports / f"{stem}.json"
    [case] = [case for case in ET.parse(pytester.path / "junit.xml").iter("testcase")
              if case.get("name") == "test_ip_mode_pod_kill[ip]"]
    recorded = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert recorded["ingress_html"] == f"reports/{stem}.html"
    if png.available():
        chart = story.with_suffix(".png").read_bytes()
        assert chart[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", chart[16:24]) == (png.WIDTH_INCHES * png.DPI,
                                                       png.HEIGHT_INCHES * png.DPI)
        assert recorded["ingress_png"] == f"reports/{stem}.png"
    report = json.loads(story.read_text())
    action = next(e for e in report["result"]["events"] if e["source"] == "chaos")
    victim = action["subject"]
    failed = {k for k in report["result"]["by_outcome"] if not k.startswith("2")}
    assert failed, "the story's ip-mode kill cost no errors: nothing for the page to show"

    # The index lists this run's two tests (not the earlier run's), links to the pages.
    browser.get((reports / "index.html").as_uri())
    assert _severe(browser) == []
    listed = browser.execute_script(
        "return [...document.querySelectorAll('tr.test')].map(r => r.dataset.test)")
    steady = f"test_story.py::test_steady[instance-{STRANGE_ID}]"
    assert sorted(listed) == sorted([steady, "test_story.py::test_ip_mode_pod_kill[ip]"])
    link = browser.find_element("link text", "test_story.py::test_ip_mode_pod_kill[ip]")
    link.click()
    assert browser.current_url == story.with_suffix(".html").as_uri()
    assert _severe(browser) == []
    assert browser.find_element("css selector", "h1").text == \
        "test_story.py::test_ip_mode_pod_kill[ip]"
    assert browser.find_element("css selector", "[data-verdict]").text == "fail"
    browser.save_screenshot(str(tmp_path / "ip-mode-page.png"))

    # Bars of each error outcome, drawn with a height, and named in the legend.
    for outcome in failed:
        boxes = _boxes(browser, f'rect.bar[data-outcome="{outcome}"]')
        assert boxes and all(b["height"] > 0 for b in boxes), outcome
        assert outcome in browser.find_element("css selector", "[data-legend=chart]").text
    # The kill in the chaos lane, the victim's target draining after it, the errors between.
    [kill] = _boxes(browser, '[data-lane="chaos"] .action')
    assert any(victim in t for t in _svg_titles(browser, '[data-lane="chaos"] .action'))
    draining = f'[data-lane="ALB targets"] [data-subject="{victim}"] [data-state="draining"]'
    [drain] = _boxes(browser, draining)
    assert "deregistered" in _svg_titles(browser, draining)[0]
    windows = _boxes(browser, "rect.error-window")
    assert windows and kill["left"] < windows[0]["left"] < drain["left"]
    # What the hook added, in a lane of its own.
    assert _svg_titles(browser, '[data-lane="other"] [data-subject="team"] .mark') == [
        "1.00 s a note from the team's pytest_ingress_update_json hook"]

    # The other page shows the strange parameter id as text.
    browser.get((reports / "index.html").as_uri())
    browser.find_element("partial link text", "test_steady").click()
    assert browser.find_element("css selector", "h1").text == steady
    assert _severe(browser) == []


def test_no_report_dir_loads_no_matplotlib(pytester: pytest.Pytester) -> None:
    """The plot extra costs nothing to a run that writes no reports."""
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.ingress_load(rate=20, duration="1s")
        def test_steady(ingress_load):
            ingress_load.run()
    """))
    pytester.makeconftest("""
        import sys

        def pytest_unconfigure(config):
            print("matplotlib loaded:", "matplotlib" in sys.modules)
    """)
    result = pytester.runpytest_subprocess(*FAST, "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["matplotlib loaded: False"])
