"""Just enough HTTP/1.1 for the simulated ALB: read a message head and body from a stream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length",
})


class HTTPParseError(ValueError):
    pass


@dataclass
class Head:
    """A request line or status line, and the headers (names lower-cased, order kept)."""

    start_line: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.headers:
            if key == name:
                return value
        return default

    @property
    def method(self) -> str:
        """A request's method ("GET")."""
        return self.start_line.split(" ", 1)[0]

    @property
    def status(self) -> int:
        """A response's status code; raises ValueError on a malformed status line."""
        return int(self.start_line.split(" ")[1])

    @property
    def version(self) -> str:
        parts = self.start_line.split(" ")
        # "HTTP/1.1 200 OK" for a response, "GET / HTTP/1.1" for a request
        return parts[0] if self.start_line.startswith("HTTP/") else parts[-1]

    def wants_close(self) -> bool:
        connection = self.get("connection").lower()
        return "close" in connection or (self.version == "HTTP/1.0"
                                         and "keep-alive" not in connection)


async def read_head(reader: asyncio.StreamReader) -> Head:
    """Read up to the blank line; raises IncompleteReadError on a clean EOF before any byte."""
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw[:-4].decode("latin-1").split("\r\n")
    head = Head(lines[0])
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise HTTPParseError(f"malformed header line {line!r}")
        head.headers.append((name.strip().lower(), value.strip()))
    return head


async def read_body(reader: asyncio.StreamReader, head: Head, *, until_eof: bool) -> bytes:
    """Read the body framed by Content-Length or chunked encoding; a response with neither is
    read until EOF when ``until_eof`` (a request has no body then)."""
    if "chunked" in head.get("transfer-encoding").lower():
        chunks: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # (trailers are not supported) final CRLF
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = head.get("content-length")
    if length:
        return await reader.readexactly(int(length))
    return await reader.read() if until_eof else b""


def bodiless(method: str, status: int) -> bool:
    """Responses that never have a body, whatever their headers say (RFC 9112, 6.3): the
    answer to HEAD, 1xx, 204 and 304."""
    return method == "HEAD" or 100 <= status < 200 or status in (204, 304)


def reusable(response: Head, *, without_body: bool) -> bool:
    """Whether the connection can carry another request after this response: the server
    did not ask to close it, and the body's end was known rather than marked by EOF."""
    framed = without_body or bool(response.get("content-length")) or \
        "chunked" in response.get("transfer-encoding").lower()
    return framed and not response.wants_close()


def encode(start_line: str, headers: list[tuple[str, str]], body: bytes, *,
           send_body: bool = True) -> bytes:
    """A message with ``content-length: len(body)`` unless ``headers`` have one already (the
    answer to HEAD keeps the target's); without ``send_body`` the body itself is left out."""
    lines = [start_line, *(f"{name}: {value}" for name, value in headers)]
    if not any(name == "content-length" for name, _ in headers):
        lines.append(f"content-length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if send_body else head
