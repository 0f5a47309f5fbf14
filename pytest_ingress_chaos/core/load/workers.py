"""Load worker processes, parent side: one schedule spread over N processes, for rates one
process cannot hold.

Process k of N sends requests k, k+N, k+2N, ... of the common schedule, starting at the same
``time.monotonic()`` instant (one clock for every process on the machine), and hands its records
back to the parent, which merges them into the test's timeline.

The parent talks to each worker over its stdin/stdout: a JSON line with the settings, ``ready``
back once the worker has imported everything, the start time, and at the end the worker's
records (pickled plain bytes and strings). A line ``stop`` or the end of stdin (the parent went
away) stops the worker's window early. The child side is ``__main__.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pickle
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import IO, Any

from ...base.clock import TestClock
from ...base.errors import LoadWorkerError
from ...base.specs import LoadSpec

READY = b"ready\n"

class LoadWorkers:
    """Processes 1..N-1 of an N-process schedule (the caller's thread is process 0)."""

    def __init__(self, url: str, spec: LoadSpec, clock: TestClock,
                 headers: Mapping[str, str]) -> None:
        # Workers get the spec in test seconds and the clock that turns it into wall seconds.
        worker_spec = dataclasses.replace(spec, processes=1)
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            for offset in range(1, spec.processes):
                process = subprocess.Popen(
                    [sys.executable, "-m", "pytest_ingress_chaos.core.load"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    start_new_session=True,  # Ctrl-C goes to pytest, which stops us in order
                )
                self.processes.append(process)
                self._send_or_fail(process, json.dumps({
                    "url": url, "spec": dataclasses.asdict(worker_spec), "offset": offset,
                    "stride": spec.processes, "time_scale": clock.time_scale,
                    "headers": dict(headers)}))
            for process in self.processes:
                assert process.stdout is not None
                if process.stdout.readline() != READY:
                    raise LoadWorkerError(f"a load process did not start: {_stderr(process)}")
        except BaseException:
            self.kill()
            raise

    @classmethod
    def _send_or_fail(cls, process: subprocess.Popen[bytes], line: str) -> None:
        try:
            cls._send(process, line)
        except OSError:  # BrokenPipeError: it died before reading its settings
            raise LoadWorkerError(f"a load process did not start: {_stderr(process)}") from None

    @staticmethod
    def _send(process: subprocess.Popen[bytes], line: str) -> None:
        assert process.stdin is not None
        process.stdin.write(line.encode() + b"\n")
        process.stdin.flush()

    def start(self, start_at: float) -> None:
        for process in self.processes:
            self._send(process, repr(start_at))

    def stop(self) -> None:
        for process in self.processes:
            # A worker already gone is reported by collect().
            with contextlib.suppress(BrokenPipeError, ValueError):
                self._send(process, "stop")

    def collect(self, timeout: float) -> list[dict[str, Any]]:
        """Wait for every worker's records (the caller's own window is over by now)."""
        results = []
        try:
            for process in self.processes:
                assert process.stdin is not None and process.stdout is not None
                process.stdin.close()
                payload = _read_with_timeout(process.stdout, timeout)
                if process.wait(timeout=timeout) != 0 or payload is None:
                    raise LoadWorkerError(f"a load process failed (exit {process.returncode}): "
                                          f"{_stderr(process)}")
                results.append(pickle.loads(payload))
        finally:
            self.kill()
        return results

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    # Closing stdin flushes what a dead worker never read: a broken pipe.
                    with contextlib.suppress(OSError):
                        stream.close()


def _read_with_timeout(stream: IO[bytes], timeout: float) -> bytes | None:
    box: list[bytes] = []
    reader = threading.Thread(target=lambda: box.append(stream.read()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box else None


def _stderr(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        process.kill()
        process.wait()
    assert process.stderr is not None
    return process.stderr.read()[-2000:].decode(errors="replace").strip() or "(no output)"
