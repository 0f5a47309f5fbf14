"""The live progress line of a load window.

End to end, the plugin runs in a pytest process whose output is a real pseudo-terminal (``pty``),
as on a developer's terminal, or a pipe, as on CI. What a user would *see* is reconstructed with
a small screen model of the few control sequences involved (carriage return, newline, cursor up,
erase to end of line, colours): the only stand-in here, for the terminal emulator a person would
look at. The model of the line (``WindowProgress``) and its thread are tested on their own with a
hand-fed timeline.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from pytest_ingress_chaos.base import outcomes
from pytest_ingress_chaos.base.clock import TestClock
from pytest_ingress_chaos.base.errors import ProgressError
from pytest_ingress_chaos.base.specs import KillPods, LoadSpec, ScaleDeployment
from pytest_ingress_chaos.core.timeline import Timeline
from pytest_ingress_chaos.report.progress import LiveProgress, WindowProgress

FAST = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.2")
COLUMNS = 160
# 25 test seconds are 5 wall seconds at time scale 0.2: about five refreshes. ip mode and a pod
# kill at 3s make errors before the second kill, the "next chaos" of most refreshes.
LONG_WINDOW = """
    import pytest

    @pytest.mark.ingress_mode("ip")
    @pytest.mark.kill_pods(at="3s")
    @pytest.mark.kill_pods(at="22s")
    @pytest.mark.ingress_load(duration="25s")
    @pytest.mark.ingress_slo(max_errors=None)
    def test_long(ingress_load):
        ingress_load.run()

    def test_after():
        pass
"""
LINE = re.compile(r"ingress (\d+\.\d)s/25s \| (\d+) req/s \| errors (\d+)[^|\r\n]*"
                  r"\| (next chaos kill_pods at 22s \(in [\d.]+s\)|no chaos left)")


# --- a pytest run on a terminal ------------------------------------------------------------


def _on_a_terminal(pytester: pytest.Pytester, *args: str, interrupt_when: bytes | None = None,
                   type_when: tuple[bytes, bytes] | None = None) -> tuple[str, int]:
    """Run pytest in ``pytester.path`` on a pseudo-terminal; return all it wrote and its exit
    code. With ``interrupt_when``, press Ctrl-C (SIGINT) once the output holds that text; with
    ``type_when`` (text, keys), type the keys once the output holds the text."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": str(COLUMNS), "LINES": "50", "TERM": "xterm"}
    process = subprocess.Popen([sys.executable, "-m", "pytest", *FAST, *args],
                               cwd=pytester.path, stdin=slave, stdout=slave, stderr=slave,
                               env=env)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 240  # a hung run fails the test instead of hanging it
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 1.0)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the pytest process closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if interrupt_when is not None and interrupt_when in output:
                process.send_signal(signal.SIGINT)
                interrupt_when = None
            if type_when is not None and type_when[0] in output:
                os.write(master, type_when[1])
                type_when = None
        else:
            pytest.fail(f"pytest on the terminal did not finish: {output.decode()[-2000:]}")
        return output.decode(), process.wait(timeout=60)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()


def _screen(output: str) -> list[str]:
    """The rows a terminal shows after ``output``: text, ``\\r``, ``\\n``, cursor up
    (``ESC[A``), erase to the end of the row (``ESC[K``); colours are dropped."""
    rows: list[list[str]] = [[]]
    row = col = 0
    for token in re.findall(r"\x1b\[[0-9;]*[A-Za-z]|[\r\n]|[^\x1b\r\n]", output):
        if token == "\r":
            col = 0
        elif token == "\n":
            row += 1
            rows.extend([] for _ in range(row + 1 - len(rows)))
        elif token == "\x1b[A":
            row = max(0, row - 1)
        elif token == "\x1b[K":
            del rows[row][col:]
        elif not token.startswith("\x1b"):
            if col >= COLUMNS:
                row, col = row + 1, 0
                rows.extend([] for _ in range(row + 1 - len(rows)))
            rows[row].extend(" " for _ in range(col - len(rows[row]) + 1))
            rows[row][col] = token
            col += 1
    return ["".join(cells).rstrip() for cells in rows]


def _write(pytester: pytest.Pytester, source: str = LONG_WINDOW) -> None:
    pytester.makepyfile(test_window=textwrap.dedent(source))


def test_a_terminal_shows_one_rewritten_line_with_elapsed_errors_and_next_chaos(
        pytester: pytest.Pytester) -> None:
    _write(pytester)
    output, code = _on_a_terminal(pytester)
    assert code == pytest.ExitCode.OK, output

    frames = LINE.findall(output)
    assert len(frames) >= 2, output
    elapsed = [float(frame[0]) for frame in frames]
    assert elapsed == sorted(elapsed) and 0 < elapsed[0] < elapsed[-1] <= 25
    assert int(frames[-1][2]) > 0  # the errors of the first kill, counted while they came
    assert any(frame[3].startswith("next chaos kill_pods at 22s") for frame in frames)
    assert all(int(frame[1]) > 0 for frame in frames)
    # One line, rewritten: from the first refresh to the last, not a single newline.
    first, last = output.index("ingress "), output.rindex("ingress ")
    assert "\n" not in output[first:last]

    screen = _screen(output)
    assert not any("ingress " in row and "req/s" in row for row in screen), screen
    # The results come after the erased line, pytest's "[100%]" still aligned to the edge.
    [results] = [row for row in screen if row.endswith("[100%]")]
    assert results.startswith("..") and len(results) == COLUMNS - 1
    assert "test_window.py" in screen[screen.index(results) - 1]


@pytest.mark.parametrize("args", [("-q",), ("-s",), ("-o", "log_cli=true"), ("-n", "2")],
                         ids=["-q", "-s", "live-log", "xdist"])
def test_no_line_when_quiet_uncaptured_live_logging_or_in_xdist_workers(
        pytester: pytest.Pytester, args: tuple[str, ...]) -> None:
    _write(pytester)
    output, code = _on_a_terminal(pytester, *args)
    assert code == pytest.ExitCode.OK, output
    assert "test_long" in output or "2 passed" in output
    assert not LINE.search(output) and "req/s" not in output, output


def test_no_line_when_the_output_is_not_a_terminal(pytester: pytest.Pytester) -> None:
    _write(pytester)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(passed=2)
    assert "req/s" not in result.stdout.str() and "\x1b[K" not in result.stdout.str()


def test_the_line_is_gone_before_a_failure_is_reported(pytester: pytest.Pytester) -> None:
    """The test body fails inside the window and a slow teardown follows before the window is
    closed: the line must not go on under pytest's report."""
    _write(pytester, """
        import time

        import pytest

        @pytest.fixture
        def slow_teardown():
            yield
            time.sleep(3)  # wall seconds, while the load window still runs

        @pytest.mark.ingress_load(duration="60s")
        def test_fails_inside_the_window(ingress_load, slow_teardown):
            ingress_load.start()
            ingress_load.sleep("10s")
            raise RuntimeError("the test's own failure")
    """)
    output, code = _on_a_terminal(pytester)
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert re.search(r"ingress \d+\.\ds/60s \| \d+ req/s", output), output
    failure = re.search(r"F[ \x1b\[0-9;m]*\[100%\]", output)  # the result, maybe coloured
    assert failure is not None, output
    assert "req/s" not in output[failure.start():], output[failure.start():]
    screen = _screen(output)
    assert not any("req/s" in row for row in screen)
    assert "RuntimeError: the test's own failure" in output


def test_ctrl_c_inside_the_window_erases_the_line_and_stops_it(
        pytester: pytest.Pytester) -> None:
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_load(duration="600s")
        def test_interrupted(ingress_load):
            ingress_load.run()
    """)
    output, code = _on_a_terminal(pytester, interrupt_when=b"req/s")
    assert code == pytest.ExitCode.INTERRUPTED, output
    interrupted = output.index("KeyboardInterrupt")
    assert "req/s" in output[:interrupted] and "req/s" not in output[interrupted:]
    assert not any("req/s" in row for row in _screen(output))


def test_a_debugger_inside_the_window_gets_the_terminal_to_itself(
        pytester: pytest.Pytester) -> None:
    _write(pytester, """
        import pytest

        @pytest.mark.ingress_load(duration="40s")
        def test_debugged(ingress_load):
            ingress_load.start()
            ingress_load.sleep("10s")
            breakpoint()
            ingress_load.run()
    """)
    output, code = _on_a_terminal(pytester, type_when=(b"(Pdb) ", b"continue\n"))
    assert code == pytest.ExitCode.OK, output
    debugger = output.index("(Pdb) ")
    assert "req/s" in output[:debugger] and "req/s" not in output[debugger:], output


# --- the line and its thread, on a hand-fed timeline ------------------------------------------


def _timeline(start: float = 100.0) -> Timeline:
    timeline = Timeline(TestClock(0.5))
    timeline.load_start = start
    return timeline


def _add(timeline: Timeline, count: int, outcome: int, pod: str | None = "kubia-a") -> None:
    for _ in range(count):
        timeline.requests.add(100.0, 100.0, 100.0, 100.1, outcome, pod)


def test_nothing_to_say_before_the_window_starts() -> None:
    timeline = _timeline(start=100.0)
    assert WindowProgress(timeline, LoadSpec(), []).line(200, now=99.0) is None
    timeline.load_start = None
    assert WindowProgress(timeline, LoadSpec(), []).line(200, now=150.0) is None


def test_the_line_counts_errors_as_they_come_and_names_the_next_chaos_action() -> None:
    timeline = _timeline()
    chaos = [ScaleDeployment(replicas=1, at=30.0), KillPods(at=8.0)]
    progress = WindowProgress(timeline, LoadSpec(duration=60.0), chaos)
    _add(timeline, 20, 200)
    _add(timeline, 2, 502, None)
    # 2 wall seconds at time scale 0.5 are 4 test seconds.
    assert progress.line(200, now=102.0) == (
        "ingress 4.0s/60s | 11 req/s | errors 2 (502 x2) | next chaos kill_pods at 8s (in 4.0s)")
    _add(timeline, 3, outcomes.TIMEOUT, None)
    _add(timeline, 1, outcomes.RUNNER_ERROR, None)  # the runner's failure, not the ingress's
    _add(timeline, 6, 200)
    assert progress.line(200, now=104.5) == (
        "ingress 9.0s/60s | 4 req/s | errors 5 (timeout x3, 502 x2) | runner errors 1 | "
        "next chaos scale_deployment at 30s (in 21.0s)")
    assert progress.line(200, now=120.0).endswith("| no chaos left")
    assert progress.line(200, now=200.0).startswith("ingress 60.0s/60s | ")  # not past the end


def test_a_record_being_appended_is_not_counted_half() -> None:
    """The load thread appends a record field by field; the line reads in between."""
    timeline = _timeline()
    progress = WindowProgress(timeline, LoadSpec(), [])
    _add(timeline, 1, 503, None)
    timeline.requests.intended.append(101.0)  # the times are in, the outcome not yet
    timeline.requests.dispatched.append(101.0)
    assert "errors 1 (503 x1)" in (progress.line(200, now=102.0) or "")


def test_a_narrow_terminal_loses_the_error_kinds_first_then_the_end() -> None:
    timeline = _timeline()
    _add(timeline, 4, 504, None)
    progress = WindowProgress(timeline, LoadSpec(duration=20.0), [KillPods(at=15.0)])
    wide = progress.line(200, now=101.0)
    assert wide is not None and "errors 4 (504 x4)" in wide
    narrow = progress.line(len(wide) - 1, now=101.0)
    assert narrow is not None and "errors 4 |" in narrow and "next chaos" in narrow
    tiny = progress.line(30, now=101.0)
    assert tiny is not None and len(tiny) == 30 and tiny.endswith("...")


def test_several_load_processes_say_whose_figures_these_are() -> None:
    timeline = _timeline()
    line = WindowProgress(timeline, LoadSpec(processes=4), []).line(200, now=101.0)
    assert line is not None and "load process 1 of 4: 0 req/s" in line


class _Terminal:
    def __init__(self, fail: bool = False) -> None:
        self.writes: list[str] = []
        self.fail = fail
        self.wrote = threading.Event()
        self.erased = threading.Event()

    def write(self, text: str) -> None:
        if self.fail:
            raise OSError("the terminal went away")
        self.writes.append(text)
        self.wrote.set()
        if "\x1b[A" in text:
            self.erased.set()


def test_the_thread_rewrites_one_line_and_erases_it_when_the_window_ends() -> None:
    timeline = _timeline(start=time.monotonic())
    terminal = _Terminal()
    live = LiveProgress(WindowProgress(timeline, LoadSpec(), []), terminal.write, 80,
                        interval=0.01)
    live.start()
    assert terminal.wrote.wait(10)
    timeline.load_end = time.monotonic()  # the window's schedule is over: the line goes
    assert terminal.erased.wait(10)
    live.stop()
    frames, erase = terminal.writes[:-1], terminal.writes[-1]
    assert frames[0].startswith("\n\ringress ")  # below the line pytest is writing
    assert all(frame.startswith("\ringress ") for frame in frames[1:])
    assert all(len(frame.split("\x1b")[0]) <= 80 for frame in frames)
    assert erase == "\r\x1b[K\x1b[A\n"
    screen = _screen("test_x.py " + "".join(terminal.writes))
    assert screen == ["test_x.py", ""]


def test_stop_erases_the_line_and_a_broken_terminal_is_reported() -> None:
    timeline = _timeline(start=time.monotonic())
    terminal = _Terminal()
    live = LiveProgress(WindowProgress(timeline, LoadSpec(), []), terminal.write, 80,
                        fresh_line=True, interval=0.01)
    live.start()
    assert terminal.wrote.wait(10)
    live.stop()
    assert terminal.writes[0].startswith("\ringress ")  # the cursor was at a line's start
    assert terminal.writes[-1] == "\r\x1b[K\x1b[A\n"

    broken = LiveProgress(WindowProgress(timeline, LoadSpec(), []), _Terminal(fail=True).write,
                          80, interval=0.01)
    broken.start()
    time.sleep(0.1)
    with pytest.raises(ProgressError, match="the progress line failed: OSError"):
        broken.stop()
