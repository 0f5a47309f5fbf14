"""The kubia-compatible sample app, run as a real process on a real socket.

Every test starts ``sampleapp.py`` as a script (as the simulator does), talks plain HTTP/1.1 to
it over loopback and signals it; the ``app`` fixture kills whatever is still running afterwards.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from pytest_ingress_chaos.backends.sim import sampleapp

SAMPLEAPP = Path(sampleapp.__file__).resolve()
LOOPBACK = "127.0.0.1"
# Generous: the machine has two cores and may be running another xdist worker.
DEADLINE = 10.0


@dataclass
class App:
    """One running sample app process and the loopback port it serves on."""

    process: subprocess.Popen[bytes]
    port: int
    name: str

    def wait_exit(self, timeout: float = DEADLINE) -> int:
        return self.process.wait(timeout=timeout)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def connect(port: int, timeout: float = DEADLINE) -> socket.socket:
    return socket.create_connection((LOOPBACK, port), timeout=timeout)


def read_response(sock: socket.socket) -> Response:
    """Read one HTTP/1.1 response framed by Content-Length (all the sample app sends)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a full response head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed in the middle of the body")
        rest += chunk
    assert len(rest) == length, f"unexpected bytes after the body: {rest[length:]!r}"
    return Response(int(status_line.split(" ")[1]), headers, rest)


def get(sock: socket.socket, path: str = "/", extra: str = "") -> Response:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: kubia\r\n{extra}\r\n".encode())
    return read_response(sock)


def get_once(port: int, path: str = "/") -> Response:
    with connect(port) as sock:
        return get(sock, path, "Connection: close\r\n")


def wait_until_closed(sock: socket.socket, timeout: float = DEADLINE) -> None:
    """Block until the peer closes ``sock`` (EOF or reset); fail after ``timeout``."""
    sock.settimeout(timeout)
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(1) == b"", "the app sent bytes where it should have closed"


def wait_until_refused(port: int, timeout: float = DEADLINE) -> None:
    """Poll until connecting to ``port`` is refused: nothing listens there any more."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            connect(port, timeout=1.0).close()
        except ConnectionRefusedError:
            return
        assert time.monotonic() < deadline, f"port {port} still accepts connections"
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


StartApp = Callable[..., App]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[StartApp]:
    """Start sample apps; whatever is still running at the end is SIGKILLed and reaped."""
    started: list[tuple[App, IO[bytes]]] = []

    def start(*args: str, name: str = "kubia-test1", use_port: bool = False) -> App:
        stderr = (tmp_path / f"stderr-{len(started)}.txt").open("wb")
        if use_port:
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, str(SAMPLEAPP), "--name", name, "--port", str(port), *args],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr)
        else:
            # As the simulator does: bind first, hand the socket over, close our copy, so
            # the port is known before the process runs and only the app holds it.
            with socket.create_server((LOOPBACK, 0), backlog=128) as listener:
                port = listener.getsockname()[1]
                process = subprocess.Popen(
                    [sys.executable, str(SAMPLEAPP), "--name", name,
                     "--fd", str(listener.fileno()), *args],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr,
                    pass_fds=(listener.fileno(),))
        started.append((App(process, port, name), stderr))
        return started[-1][0]

    yield start
    for running, stderr in started:
        if running.process.poll() is None:
            running.process.kill()
        running.process.wait(timeout=DEADLINE)
        assert running.process.stdin is not None
        running.process.stdin.close()
        stderr.close()


def wait_until_serving(port: int, timeout: float = DEADLINE) -> Response:
    """For apps started with ``--port``: poll until the app listens, return its answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get_once(port)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            time.sleep(0.05)


# --- serving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/healthz", "/some/deep/path?x=1&y=2"])
def test_any_get_answers_200_with_the_pod_name(app: StartApp, path: str) -> None:
    """Any GET path gets 200 and exactly ``You've hit <name>\\n``, as kubia answers."""
    running = app(name="kubia-abcde")
    response = get_once(running.port, path)
    assert response.status == 200
    assert response.body == b"You've hit kubia-abcde\n"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-length"] == str(len(response.body))


def test_port_option_serves_without_an_inherited_socket(app: StartApp) -> None:
    """``--port`` makes the app bind its own listening socket."""
    running = app(name="kubia-ported", use_port=True)
    response = wait_until_serving(running.port)
    assert (response.status, response.body) == (200, b"You've hit kubia-ported\n")


def test_keepalive_serves_two_requests_on_one_connection(app: StartApp) -> None:
    """HTTP/1.1 without ``Connection: close`` keeps the connection open for the next request."""
    running = app(name="kubia-keep")
    with connect(running.port) as sock:
        first = get(sock)
        second = get(sock, "/again")
    assert first.headers["connection"] == "keep-alive"
    assert (first.status, second.status) == (200, 200)
    assert first.body == second.body == b"You've hit kubia-keep\n"


def test_keepalive_timeout_closes_an_idle_connection(app: StartApp) -> None:
    """With ``--keepalive-timeout`` the app closes a connection that stays idle that long,
    without warning (no ``Connection: close``), and keeps one that is used in time."""
    running = app("--keepalive-timeout", "0.3")
    with connect(running.port) as idle, connect(running.port) as busy:
        assert get(idle).headers["connection"] == "keep-alive"
        for _ in range(4):  # 0.4 s of requests 0.1 s apart: never idle for 0.3 s
            assert get(busy).status == 200
            time.sleep(0.1)
        assert get(busy).status == 200
        idle.settimeout(DEADLINE)
        assert idle.recv(1) == b""  # closed by the app


@pytest.mark.parametrize("request_text", [
    "GET / HTTP/1.1\r\nHost: kubia\r\nConnection: close\r\n\r\n",
    "GET / HTTP/1.0\r\n\r\n",
])
def test_close_requests_get_connection_close(app: StartApp, request_text: str) -> None:
    """``Connection: close`` and HTTP/1.0 get one answer, then the app closes the connection."""
    running = app()
    with connect(running.port) as sock:
        sock.sendall(request_text.encode())
        response = read_response(sock)
        assert response.status == 200
        assert response.headers["connection"] == "close"
        wait_until_closed(sock)


# --- stopping ----------------------------------------------------------------------------------


def test_on_sigterm_exit_dies_at_once_and_its_port_refuses(app: StartApp) -> None:
    """``--on-sigterm exit`` (the field report's kubia): SIGTERM kills the process at once,
    even with an idle keep-alive connection open, and nothing listens on its port afterwards."""
    running = app("--on-sigterm", "exit")
    with connect(running.port) as idle:
        assert get(idle).status == 200  # the app is up, its signal disposition is set
        running.process.send_signal(signal.SIGTERM)
        assert running.wait_exit() == -signal.SIGTERM
        wait_until_closed(idle)
    with pytest.raises(ConnectionRefusedError):
        connect(running.port)


def test_on_sigterm_drain_with_nothing_in_flight_exits_0(app: StartApp) -> None:
    """``--on-sigterm drain`` with no request in flight: stops listening and exits with 0."""
    running = app("--on-sigterm", "drain")
    assert get_once(running.port).status == 200
    running.process.send_signal(signal.SIGTERM)
    assert running.wait_exit() == 0
    with pytest.raises(ConnectionRefusedError):
        connect(running.port)


def test_on_sigterm_drain_finishes_the_request_in_flight(app: StartApp) -> None:
    """``--on-sigterm drain``: after SIGTERM the app stops accepting and closes idle keep-alive
    connections, but answers a request still in flight (``Connection: close``), then exits 0."""
    running = app("--on-sigterm", "drain", name="kubia-drain")
    with connect(running.port) as idle, connect(running.port) as busy:
        assert get(idle).status == 200  # now an idle keep-alive connection
        # A request whose body has not fully arrived yet: the app is in the middle of it.
        busy.sendall(b"POST /upload HTTP/1.1\r\nHost: kubia\r\nContent-Length: 10\r\n\r\n01234")
        # A full round trip on a third connection, so the app has certainly read that head.
        assert get_once(running.port).status == 200
        time.sleep(0.1)

        running.process.send_signal(signal.SIGTERM)
        wait_until_closed(idle)
        wait_until_refused(running.port)
        assert running.process.poll() is None, "the app exited with a request in flight"

        busy.sendall(b"56789")
        response = read_response(busy)
        assert (response.status, response.body) == (200, b"You've hit kubia-drain\n")
        assert response.headers["connection"] == "close"
        wait_until_closed(busy)
    assert running.wait_exit() == 0


def test_on_sigterm_ignore_keeps_serving_until_sigkill(app: StartApp) -> None:
    """``--on-sigterm ignore``: SIGTERM changes nothing (old and new connections are served);
    only SIGKILL ends the process."""
    running = app("--on-sigterm", "ignore")
    with connect(running.port) as kept:
        assert get(kept).status == 200
        running.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert running.process.poll() is None
        assert get(kept).status == 200
        assert get_once(running.port).status == 200
    running.process.send_signal(signal.SIGKILL)
    assert running.wait_exit() == -signal.SIGKILL
    with pytest.raises(ConnectionRefusedError):
        connect(running.port)


def test_exit_on_stdin_eof(app: StartApp) -> None:
    """``--exit-on-stdin-eof``: the app exits (code 0) as soon as its stdin closes, so a dead
    parent never leaves pods behind."""
    running = app("--exit-on-stdin-eof")
    assert get_once(running.port).status == 200
    assert running.process.stdin is not None
    running.process.stdin.close()
    assert running.wait_exit() == 0
    with pytest.raises(ConnectionRefusedError):
        connect(running.port)


def test_without_exit_on_stdin_eof_stdin_closing_changes_nothing(app: StartApp) -> None:
    """Without the flag, a closed stdin does not stop the app (the flag is what does it)."""
    running = app()
    assert get_once(running.port).status == 200
    assert running.process.stdin is not None
    running.process.stdin.close()
    time.sleep(0.3)
    assert running.process.poll() is None
    assert get_once(running.port).status == 200
