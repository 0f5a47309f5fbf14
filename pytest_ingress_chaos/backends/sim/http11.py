"""HTTP/1.1 for the simulated ALB: messages read off a stream by llhttp (Node.js's parser, through
httptools), and written back.

A maintained parser rather than one of our own: llhttp rejects what RFC 9112 forbids a proxy to
guess about (a non-numeric or a second Content-Length, a bad chunk size or chunk end, a broken
status line), and the ALB answers such a response with its 502 on a connection it does not
reuse; and it frames what the hand parser got wrong (trailers, interim 1xx answers).

llhttp rather than h11: the simulated ALB is CPU-bound on loopback, and per proxied exchange
(request in and out, response in and out) h11 took 88 us of CPU against 14 us for this module,
in an ALB that spends 73-80 us a request in all (benchmarks/README.md, "Simulated ALB
throughput").
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from dataclasses import dataclass, field

import httptools

from ...base.errors import IngressChaosError

MAX_HEAD = 64 * 1024  # a longer head is an error (and the streams' buffer size)
READ_SIZE = 64 * 1024
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length",
})


class HTTPParseError(IngressChaosError, ValueError):
    """A malformed message (llhttp's verdict), or a head longer than ``MAX_HEAD``."""


@dataclass
class Message:
    """A whole request or response: its start line's parts, the headers (names lower-cased,
    order kept; trailers dropped) and the body (de-chunked)."""

    version: str = "HTTP/1.1"
    method: str = ""  # a request's ("GET")
    target: str = ""  # a request's ("/")
    status: int = 0  # a response's
    reason: str = ""  # a response's
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # The connection can carry another message after this one: the sender did not ask to
    # close it (Connection: close, or HTTP/1.0 without keep-alive), and, for a response, its
    # body's end was known rather than marked by EOF, and nothing unframed followed it.
    keep_alive: bool = True

    @property
    def start_line(self) -> str:
        if self.method:
            return f"{self.method} {self.target} {self.version}"
        return f"{self.version} {self.status} {self.reason}"

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def framed_by_eof(self) -> bool:
        """A response whose body ends only when the connection does (RFC 9112, 6.3): no
        Content-Length, and chunked is not the final transfer coding."""
        codings = self.get("transfer-encoding").lower().split(",")
        return not self.get("content-length") and codings[-1].strip() != "chunked"


def _persistent(message: Message) -> bool:
    """What the message's version and Connection header say about keep-alive."""
    connection = message.get("connection").lower()
    if message.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


class _Parse:
    """httptools' callbacks for one connection's messages in one direction: llhttp reports a
    message's parts as it finds them, and complete messages queue in ``done``.

    For a response it needs the request's method: llhttp cannot be told that the answer to
    HEAD has no body, so here it ends with its head. Interim 1xx answers (100 Continue, 103
    Early Hints) are skipped; a 101 is an error, as the ALB never asks to switch protocols
    (Upgrade is hop-by-hop)."""

    def __init__(self, *, response_to: str | None = None) -> None:
        self.response_to = response_to
        self.parser: httptools.HttpRequestParser | httptools.HttpResponseParser = \
            httptools.HttpRequestParser(self) if response_to is None else \
            httptools.HttpResponseParser(self)
        self.done: deque[Message] = deque()
        self.current: Message | None = None  # begun, not yet complete
        self._head_done = False
        self._head_bytes = 0
        self._start: list[bytes] = []  # the request target or the reason phrase, in pieces
        self._body: list[bytes] = []

    def feed(self, data: bytes) -> None:
        """Parse ``data``; raises HTTPParseError on a malformed message."""
        began = self.current
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            if self.response_to is not None:
                raise HTTPParseError("101 Switching Protocols, which the ALB did not ask "
                                     "for") from None
            # A request asking to switch (WebSocket, h2c) is forwarded as a plain one, without
            # its hop-by-hop Upgrade header; what follows its head is the next request.
            offset = upgrade.args[0]
            if offset < len(data):
                self.feed(data[offset:])
            return
        except httptools.HttpParserError as exc:
            if self.response_to is not None and self.done:
                # Bytes after a complete response that are no message: the response stands,
                # the connection does not carry another one.
                self.done[0].keep_alive = False
                return
            raise HTTPParseError(str(exc) or type(exc).__name__) from None
        if self.current is not None and not self._head_done:
            # Counted from the read after the one the message began in, so never too much.
            self._head_bytes += len(data) if self.current is began else 0
            if self._head_bytes > MAX_HEAD:
                raise HTTPParseError(f"message head longer than {MAX_HEAD} bytes")

    def at_eof(self) -> None:
        """The peer closed: that ends a response framed by EOF; raises IncompleteReadError
        for any other message cut short."""
        message = self.current
        if message is not None and self._head_done and self.response_to is not None \
                and message.framed_by_eof():
            message.keep_alive = False
            self.on_message_complete()
        elif message is not None:
            raise asyncio.IncompleteReadError(b"", None)

    # --- httptools' callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.response_to is not None and self.done:
            self.done[0].keep_alive = False  # a second response to one request
        self.current = Message()
        self._head_done = False
        self._head_bytes = 0
        self._start.clear()
        self._body.clear()

    def on_url(self, url: bytes) -> None:
        self._start.append(url)

    def on_status(self, reason: bytes) -> None:
        self._start.append(reason)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.current is not None and not self._head_done:  # trailers are dropped
            self.current.headers.append((name.decode("latin-1").lower(),
                                         value.decode("latin-1").strip()))

    def on_headers_complete(self) -> None:
        message, parser = self.current, self.parser
        assert message is not None
        self._head_done = True
        message.version = f"HTTP/{parser.get_http_version()}"
        message.keep_alive = parser.should_keep_alive()
        start = b"".join(self._start).decode("latin-1")
        if isinstance(parser, httptools.HttpRequestParser):
            message.method, message.target = parser.get_method().decode("latin-1"), start
        else:
            message.status, message.reason = parser.get_status_code(), start
            if self.response_to == "HEAD" and message.status >= 200:
                # Complete with its head. llhttp, expecting a body, would call the connection
                # not reusable when no Content-Length frames one: judge by the headers alone.
                message.keep_alive = _persistent(message)
                self.on_message_complete()

    def on_body(self, data: bytes) -> None:
        if self.current is not None:
            self._body.append(data)
        elif self.done:
            self.done[0].keep_alive = False  # a body after an answer to HEAD

    def on_message_complete(self) -> None:
        message = self.current
        if message is None:  # the end of the body llhttp expected after an answer to HEAD
            return
        self.current = None
        message.body = b"".join(self._body)
        if self.response_to is not None and message.status < 200:
            return  # interim
        self.done.append(message)


class RequestReader:
    """The requests a client sends on one connection, in order (pipelining included)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._parse = _Parse()

    async def next(self) -> Message | None:
        """The next request; None when the client closed between requests. Raises
        HTTPParseError, IncompleteReadError (closed mid-request) or ConnectionError."""
        parse = self._parse
        while not parse.done:
            data = await self._reader.read(READ_SIZE)
            if not data:
                parse.at_eof()
                return None
            parse.feed(data)
        return parse.done.popleft()


async def read_response(reader: asyncio.StreamReader, method: str,
                        idle_timeout: float | None = None) -> Message:
    """The response to a ``method`` request, read whole. Each read waits at most
    ``idle_timeout`` seconds (the ALB's idle timeout: no byte for that long), then raises
    TimeoutError. Raises HTTPParseError on a malformed response, IncompleteReadError when the
    connection ends before the response does, ConnectionError on a reset."""
    parse = _Parse(response_to=method)
    while not parse.done:
        data = await _read(reader, idle_timeout)
        if not data:
            parse.at_eof()
            if not parse.done:  # nothing at all came
                raise asyncio.IncompleteReadError(b"", None)
            break
        parse.feed(data)
    return parse.done[0]


if sys.version_info >= (3, 11):
    async def _read(reader: asyncio.StreamReader, timeout: float | None) -> bytes:
        """One read, within ``timeout`` seconds. ``asyncio.timeout`` only arms a timer where
        ``wait_for`` wraps the read in a task: 4 against 11 us a read here, on a proxy whose
        whole exchange costs about 100 us."""
        async with asyncio.timeout(timeout):
            return await reader.read(READ_SIZE)
else:
    async def _read(reader: asyncio.StreamReader, timeout: float | None) -> bytes:
        return await asyncio.wait_for(reader.read(READ_SIZE), timeout)


def bodiless(method: str, status: int) -> bool:
    """Responses that never have a body, whatever their headers say (RFC 9112, 6.3): the
    answer to HEAD, 1xx, 204 and 304."""
    return method == "HEAD" or 100 <= status < 200 or status in (204, 304)


def encode(start_line: str, headers: list[tuple[str, str]], body: bytes, *,
           send_body: bool = True) -> bytes:
    """A message with ``content-length: len(body)`` unless ``headers`` have one already (the
    answer to HEAD keeps the target's); without ``send_body`` the body itself is left out."""
    lines = [start_line, *(f"{name}: {value}" for name, value in headers)]
    if not any(name == "content-length" for name, _ in headers):
        lines.append(f"content-length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if send_body else head
