"""Small real TCP/HTTP servers on loopback, run in a background thread, for core tests."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    delay: float = 0.0) -> None:
    """HTTP/1.1 keep-alive server answering every request with 200 "You've hit local"."""
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            if delay:
                await asyncio.sleep(delay)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\nYou've hit local\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # holds the connection open until the client gives up
    writer.close()


async def reset_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts and closes without reading: curl says "Empty reply from server"."""
    writer.close()


@contextmanager
def serve(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Run ``handler`` on an ephemeral loopback port (with TLS when given a server context);
    yields ``http://127.0.0.1:<port>``."""
    started = threading.Event()
    state: dict[str, object] = {}
    writers: set[asyncio.StreamWriter] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            await handler(reader, writer)
        finally:
            writers.discard(writer)

    async def main() -> None:
        stop = asyncio.Event()
        server = await asyncio.start_server(tracked, "127.0.0.1", 0, backlog=1024,
                                            ssl=ssl_context)
        state.update(port=server.sockets[0].getsockname()[1], stop=stop,
                     loop=asyncio.get_running_loop())
        started.set()
        await stop.wait()
        server.close()
        for writer in list(writers):
            writer.transport.abort()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        loop: asyncio.AbstractEventLoop = state["loop"]  # type: ignore[assignment]
        loop.call_soon_threadsafe(state["stop"].set)  # type: ignore[attr-defined]
        thread.join(10)


def closed_port() -> int:
    """A loopback port nothing listens on (connects are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# A server in a process of its own, so that its work never competes with the load generator
# for the GIL: it answers every request, except that one arriving between two monotonic
# instants (one clock for every process) gets its answer only at the second.
_FROZEN_SERVER = """
import asyncio, sys, time
freeze_from, freeze_until = float(sys.argv[1]), float(sys.argv[2])
ANSWER = b"HTTP/1.1 200 OK\\r\\nContent-Length: 17\\r\\n\\r\\nYou've hit local\\n"

resumed = False

async def handle(reader, writer):
    global resumed
    try:
        while await reader.readuntil(b"\\r\\n\\r\\n"):
            now = time.monotonic()
            if freeze_from <= now < freeze_until:
                await asyncio.sleep(freeze_until - now)
                if not resumed:  # when the freeze really ended, on a busy machine
                    resumed = True
                    print(time.monotonic(), flush=True)
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


class FrozenServer:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        assert process.stdout is not None
        self.url = f"http://127.0.0.1:{int(process.stdout.readline())}/"

    def resumed_at(self) -> float:
        """When the server really answered again (a busy machine wakes it late)."""
        assert self.process.stdout is not None
        return float(self.process.stdout.readline())


@contextmanager
def serve_frozen(freeze_from: float, freeze_until: float) -> Iterator[FrozenServer]:
    """A keep-alive HTTP server in its own process that freezes (answers nothing) between two
    ``time.monotonic()`` instants, then answers everything; it ends when its stdin closes."""
    process = subprocess.Popen(
        [sys.executable, "-c", _FROZEN_SERVER, repr(freeze_from), repr(freeze_until)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        yield FrozenServer(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


# --- stand-ins for a Kubernetes API server that is not there or turns the client away --------


@contextmanager
def silent_listener() -> Iterator[str]:
    """A TCP port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


# What a v1.20 API server answers to GET /version (every field the client requires).
_VERSION = {"major": "1", "minor": "20", "gitVersion": "v1.20.2", "gitCommit": "0" * 40,
            "gitTreeState": "clean", "buildDate": "2021-01-13T13:20:00Z",
            "goVersion": "go1.15.5", "compiler": "gc", "platform": "linux/amd64"}


def answering(status: int, reason: str, *, versions_first: int = 0) -> Handler:
    """An HTTP server answering every request with a Kubernetes ``Status`` of ``status``; the
    first ``versions_first`` requests get the server's version instead (a cluster that turns
    the client away only later, e.g. a token revoked between two processes)."""
    body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "reason": reason, "code": status, "message": reason.lower()}).encode()
    answered = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        try:
            await reader.readuntil(b"\r\n\r\n")
            answered += 1
            head, text = (f"{status} {reason}", body) if answered > versions_first else \
                ("200 OK", json.dumps(_VERSION).encode())
            writer.write(f"HTTP/1.1 {head}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n".encode()
                         + text)
            await writer.drain()
        finally:
            writer.close()
    return handle
