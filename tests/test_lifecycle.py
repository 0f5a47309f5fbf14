"""Nothing the plugin starts outlives the pytest session: not on Ctrl-C, not on SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

LONG_TEST = """
    import json, pathlib
    import pytest

    @pytest.mark.ingress_mode("ip")
    @pytest.mark.ingress_load(duration="60s")
    @pytest.mark.kill_pods(at="1s")
    def test_long(ingress_load, ingress_service):
        ingress_load.start()
        addresses = [ingress_service.url.split("//")[1]] + [p.address for p in
                                                           ingress_service.pods()]
        ingress_load.sleep("2s")  # the killed pod's address is now refusing or blackholed
        pathlib.Path("addresses.json").write_text(json.dumps(addresses))
        ingress_load.run()
"""


def _answering(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def _run_and_signal(pytester: pytest.Pytester, signum: int) -> list[str]:
    pytester.makepyfile(textwrap.dedent(LONG_TEST))
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:benchmark", "-p", "no:cacheprovider",
         "--ingress-time-scale", "0.5"],
        cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    marker = Path(pytester.path, "addresses.json")
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            assert process.poll() is None, "pytest ended before the load window was running"
            time.sleep(0.1)
        addresses: list[str] = json.loads(marker.read_text())
        assert _answering(addresses[0]), "the ALB should be serving before the signal"
        os.kill(process.pid, signum)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return addresses


def _wait_until_gone(addresses: list[str], seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := [a for a in addresses if _answering(a)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_ctrl_c_stops_the_simulator_and_every_pod(pytester: pytest.Pytester) -> None:
    addresses = _run_and_signal(pytester, signal.SIGINT)
    # Ctrl-C is handled: the session ends in order, the simulator is closed at unconfigure.
    assert _wait_until_gone(addresses, 5) == []


def test_a_killed_pytest_leaves_no_pods_behind(pytester: pytest.Pytester) -> None:
    addresses = _run_and_signal(pytester, signal.SIGKILL)
    # No teardown ran: the simulator sees its stdin close and exits, and so do its pods.
    assert _wait_until_gone(addresses, 15) == []
