"""Name resolution for the load generator, with a deadline of its own.

A name is resolved before connecting, not inside the connect timeout, so a slow or failing
resolver (the machine running the tests) is a ``dns failure`` and never an ingress timeout.
Names under ``.invalid`` fail at once without a query: RFC 6761 §6.4 reserves them never to
resolve and asks resolution libraries to answer so themselves (glibc sends the query anyway).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ipaddress
import socket

from ...base.errors import IngressChaosError

_THREADS = 8  # lookups at once; new connections wait for a free one, within the deadline


class NameNotResolved(IngressChaosError):
    """The ingress host name did not resolve within the deadline."""


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def never_resolves(host: str) -> bool:
    """``.invalid`` names (RFC 6761 §6.4)."""
    return host.rstrip(".").lower().rsplit(".", 1)[-1] == "invalid"


class Resolver:
    """Resolves on threads of its own: a lookup past its deadline keeps its thread until the
    system resolver gives up, and must not hold up the closing of the load thread's loop
    (``asyncio.run`` waits for every thread of the loop's default executor)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=_THREADS, thread_name_prefix="ingress-load-resolve")

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to for ``host``: itself when an IP literal, else the first
        address the system resolver gives within the deadline (in the order getaddrinfo sorts
        them, RFC 6724, the one curl and asyncio try first)."""
        if _literal(host):
            return host
        if never_resolves(host):
            raise NameNotResolved(f"{host} is reserved never to resolve (RFC 6761)")
        loop = asyncio.get_running_loop()
        lookup = loop.run_in_executor(self._threads, functools.partial(
            socket.getaddrinfo, host, port, type=socket.SOCK_STREAM))
        try:
            infos = await asyncio.wait_for(lookup, self.deadline)
        except asyncio.TimeoutError:
            raise NameNotResolved(f"{host} did not resolve within {self.deadline:g} s") from None
        except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
            raise NameNotResolved(f"{host} did not resolve: {exc}") from None
        return str(infos[0][4][0])

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
