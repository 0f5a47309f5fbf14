"""The kubia-compatible sample server: any GET answers 200 ``You've hit <pod name>``.

Run as a script (``python sampleapp.py --name kubia-abcde --port 8080``) so that a pod process
starts in a few tens of milliseconds: it needs nothing but the standard library and does not
import the plugin package. The simulator hands it an already-bound listening socket with
``--fd``, so the pod's address is known before the process runs.

``--on-sigterm`` chooses what the process does when it is asked to stop:

- ``exit``: die at once, dropping requests in flight, like the field report's kubia (a Rust
  binary behind tini with no SIGTERM handler);
- ``drain``: stop accepting, finish requests in flight, close idle keep-alive connections, exit;
- ``ignore``: keep serving until SIGKILL.

In a container image (the local cluster's real nodes, ``localcluster/images.py``) the two come
from the environment, ``INGRESS_CHAOS_ON_SIGTERM`` and ``INGRESS_CHAOS_KEEPALIVE_TIMEOUT``.

With ``--exit-on-stdin-eof`` the process exits when its parent goes away (stdin closes), so a
crashed simulator never leaves pods behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys

_MAX_HEAD = 64 * 1024
#: Defaults for --on-sigterm and --keepalive-timeout (the container image has no other way in).
ON_SIGTERM_ENV = "INGRESS_CHAOS_ON_SIGTERM"
KEEPALIVE_ENV = "INGRESS_CHAOS_KEEPALIVE_TIMEOUT"


class SampleApp:
    def __init__(self, name: str, keepalive_timeout: float | None) -> None:
        self.body = f"You've hit {name}\n".encode()
        self.keepalive_timeout = keepalive_timeout
        self.draining = False
        self.busy: set[asyncio.StreamWriter] = set()  # connections with a request in flight
        self.idle: set[asyncio.StreamWriter] = set()
        self.drained = asyncio.Event()

    async def serve_connection(self, reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
        self.idle.add(writer)
        try:
            while not self.draining:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                                  self.keepalive_timeout)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        asyncio.TimeoutError, ConnectionError):
                    return
                self.idle.discard(writer)
                self.busy.add(writer)
                keep_alive = await self._answer(head, reader, writer)
                self.busy.discard(writer)
                self.idle.add(writer)
                if not keep_alive:
                    return
        except ConnectionError:
            return
        finally:
            self.idle.discard(writer)
            self.busy.discard(writer)
            writer.close()
            if self.draining and not self.busy:
                self.drained.set()

    async def _answer(self, head: bytes, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        version = lines[0].rsplit(" ", 1)[-1] if lines[0] else ""
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length:
            await reader.readexactly(length)
        keep_alive = (version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                      and not self.draining)
        body = b"" if lines[0].startswith("HEAD ") else self.body  # HEAD: headers only
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\nConnection: %s\r\n\r\n%s"
            % (len(self.body), b"keep-alive" if keep_alive else b"close", body)
        )
        await writer.drain()
        return keep_alive

    def start_draining(self, server: asyncio.base_events.Server) -> None:
        self.draining = True
        server.close()  # stop accepting; the listening socket goes away
        for writer in list(self.idle):
            writer.close()
        if not self.busy:
            self.drained.set()


async def main(args: argparse.Namespace) -> None:
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.create_server((args.host, args.port), backlog=128)
    app = SampleApp(args.name, args.keepalive_timeout)
    # start_server listens again on the inherited socket: keep the accept queue long, or a
    # burst overflows it and the client's SYN retransmit costs a whole second.
    server = await asyncio.start_server(app.serve_connection, sock=sock, limit=_MAX_HEAD,
                                        backlog=1024)
    loop = asyncio.get_running_loop()
    if args.on_sigterm == "drain":
        loop.add_signal_handler(signal.SIGTERM, app.start_draining, server)
    elif args.on_sigterm == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif os.getpid() == 1:
        # exit, as a container's first process: the kernel ignores signals that PID 1 has no
        # handler for, so die at once by hand, as the field report's kubia does behind tini.
        signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(128 + signum))
    else:  # exit: the default action, the process dies at once
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if args.exit_on_stdin_eof:
        loop.add_reader(sys.stdin.fileno(), _exit_if_eof)
    await app.drained.wait()


def _exit_if_eof() -> None:
    if not os.read(sys.stdin.fileno(), 4096):
        os._exit(0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--name", default=socket.gethostname(), help="pod name to answer with")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--fd", type=int, default=None, help="inherited listening socket")
    # In a container the pod's annotations arrive as environment variables (the manifests
    # map them with the downward API); an empty one means the annotation is not set.
    parser.add_argument("--on-sigterm", choices=("exit", "drain", "ignore"),
                        default=os.environ.get(ON_SIGTERM_ENV) or "exit")
    keepalive = os.environ.get(KEEPALIVE_ENV) or None
    parser.add_argument("--keepalive-timeout", type=float,
                        default=float(keepalive) if keepalive else None,
                        help="close idle keep-alive connections after this many seconds")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse_args()))
