"""A test's load window through its call phase: the live progress line while the test body
runs, the window finished when the body leaves it open, and a verdict turned into a test
failure. The verdict is the plugin's: a window that ended FAIL or VOID fails a test that
passed, whatever thread called ``run()`` and whatever the test caught.

One ``pytest_runtest_call`` wrapper does all three, in that order, and it is the innermost
wrapper (``trylast``): inside the capture plugin's, so the progress line is written while the
test's output capture can be suspended and is gone before pytest writes the result.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import pytest

from ..base.errors import IngressChaosError, IngressSLOViolation, IngressVerdictVoid
from ..base.specs import ChaosSpec
from ..core.loadwindow import IngressLoad
from ..report import progress, terminal
from ..report.context import ReportContext

# What the window raises: a verdict (the SLO broken, or the window void), or a failure of the
# plugin's machinery. Each becomes a plain test failure.
_VERDICTS = (IngressSLOViolation, IngressVerdictVoid)
_WINDOW_ERRORS = (*_VERDICTS, IngressChaosError)


@dataclass
class WindowEntry:
    """One test's load window, kept in ``item.stash`` by the ``ingress_load`` fixture."""

    window: IngressLoad
    context: ReportContext
    chaos: list[ChaosSpec]  # the markers' actions, for the live progress line
    published: bool = False
    # The test failure a verdict became, and the verdict's headline (its one-line summary).
    verdict_failure: tuple[BaseException, str] | None = None


WINDOW_KEY = pytest.StashKey[WindowEntry]()
LIVE_KEY = pytest.StashKey[progress.LiveProgress]()  # the live progress line now shown


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    entry = item.stash.get(WINDOW_KEY, None)
    try:
        with _live_progress(item.config, entry):
            outcome = yield
        if entry is not None:
            _finish(item, entry.window)
    except _WINDOW_ERRORS as error:
        raise as_test_failure(item, error) from None
    return outcome


def _finish(item: pytest.Item, window: IngressLoad) -> None:
    if not window.started:
        pytest.fail(f"{item.name} requested ingress_load but never started the load window; "
                    "call ingress_load.run()", pytrace=False)
    # Started but not finished: the test body ended inside the window, or left run() to a
    # thread still in it. Then the verdict, even one run() raised where the test did not see it
    # (another thread, a caught AssertionError). A verdict run() raised through the test body
    # never gets here: it is already the test's failure.
    window.finish()
    if window.verdict_error is not None:
        raise window.verdict_error


def as_test_failure(item: pytest.Item, error: BaseException) -> BaseException:
    """A verdict or a failure of the plugin's machinery as a plain test failure: the message
    says what happened, with no traceback through the plugin. A verdict's message is the whole
    report; its headline is kept for the one-line summaries (reporting.py)."""
    if isinstance(error, _VERDICTS):
        failure = pytest.fail.Exception(str(error), pytrace=False)
        entry = item.stash.get(WINDOW_KEY, None)
        if entry is not None:
            entry.verdict_failure = (failure, terminal.headline(error.result, entry.context))
        return failure
    return pytest.fail.Exception(f"{type(error).__name__}: {error}", pytrace=False)


@contextlib.contextmanager
def _live_progress(config: pytest.Config, entry: WindowEntry | None) -> Iterator[None]:
    """The live progress line of a load window on a terminal, while the test body runs."""
    live = _progress_line(config, entry) if entry is not None else None
    if live is None:
        yield
        return
    config.stash[LIVE_KEY] = live
    live.start()
    try:
        yield
    finally:
        del config.stash[LIVE_KEY]
        live.stop()


def pytest_enter_pdb(config: pytest.Config) -> None:
    """A debugger inside the window (breakpoint()) gets the terminal to itself."""
    live = config.stash.get(LIVE_KEY, None)
    if live is not None:
        live.end()


def _progress_line(config: pytest.Config, entry: WindowEntry) -> progress.LiveProgress | None:
    """Like pytest's own rewritten "collecting ..." line: only on a terminal and not with -q.
    Not with -s either, where the test's own output would be cut by the rewritten line (pytest
    drops its progress percentage there too), nor with live logging, which writes during the
    test; never in an xdist worker, whose output goes to the controller."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if (reporter is None or not reporter.isatty or reporter.verbosity < 0
            or os.environ.get("TERM") == "dumb" or config.getoption("capture", "no") == "no"
            or _live_logging(config) or hasattr(config, "workerinput")):
        return None

    def write(text: str) -> None:
        # The thread writes during the test's call phase, while pytest captures its output.
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write(text, flush=True)

    writer = config.get_terminal_writer()
    window = entry.window
    return progress.LiveProgress(
        progress.WindowProgress(window.timeline, window.spec, entry.chaos), write,
        writer.fullwidth, fresh_line=writer.width_of_current_line == 0)


def _live_logging(config: pytest.Config) -> bool:
    try:
        return config.getoption("log_cli_level") is not None or bool(config.getini("log_cli"))
    except ValueError:  # -p no:logging
        return False
