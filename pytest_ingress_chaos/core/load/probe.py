"""An explicit URL checked before its load window: is anything there?

A window at a URL where nothing listens, whose name does not resolve or whose TLS handshake
fails would send every request into the same failure and report it as the ingress's errors,
though no request ever reached an ingress. One connection before the window tells instead: the
name resolved by the engines' own :class:`Resolver` (same deadline, same ``.invalid`` rule), one
TCP connect and, for ``https://``, the TLS handshake with the engines' own trust settings, all
within the request timeout. Nothing is sent on it. A provisioned service needs no such check:
its backend waits for steady answers before the window.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

from ...base import outcomes
from ...base.errors import SettingsError
from .engines import classify_error, tls_context
from .names import NameNotResolved, Resolver


def check_reachable(url: str, *, origin: str, timeout: float, dns_timeout: float,
                    ca_bundle: str | None) -> None:
    """Raise a :class:`SettingsError` naming ``origin`` (where the URL came from, as
    ``--ingress-url='http://...'``), the address and the reason when one connection to ``url``
    cannot be made. ``timeout`` and ``dns_timeout`` are wall seconds."""
    reason = asyncio.run(_unreachable(url, timeout, dns_timeout, ca_bundle))
    if reason is not None:
        raise SettingsError(f"{origin}: {reason}; the load window needs a server there, so it "
                            "did not start")


async def _unreachable(url: str, timeout: float, dns_timeout: float,
                       ca_bundle: str | None) -> str | None:
    """Why ``url`` cannot be reached, or None when it can."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    resolver = Resolver(dns_timeout)
    try:
        address = await resolver.resolve(host, port)
    except NameNotResolved as exc:
        return f"{host} did not resolve (dns failure: {exc})"
    finally:
        resolver.close()
    where = _where(host, address, port)
    step = f"the TLS handshake with {where}" if https else f"the connect to {where}"
    try:
        # The handshake sends SNI for, and verifies the certificate against, the URL's host.
        _, writer = await asyncio.wait_for(asyncio.open_connection(
            address, port, ssl=tls_context(ca_bundle) if https else None,
            server_hostname=host if https else None), timeout)
    except asyncio.TimeoutError:
        return f"{step} did not finish within {timeout:g} s"
    except ssl.SSLError as exc:
        return f"{step} failed ({outcomes.label(classify_error(exc))}: {exc})"
    except OSError as exc:
        if classify_error(exc) == outcomes.CONNECTION_REFUSED:
            return f"nothing listens at {where} (connection refused)"
        return f"{step} failed ({exc.strerror or exc})"
    writer.transport.abort()  # nothing to say: the window opens its own connections
    return None


def _where(host: str, address: str, port: int) -> str:
    """``host:port``, with the address a name resolved to: ``ingress.test (127.0.0.1):80``."""
    shown = f"[{address}]" if ":" in address else address
    return f"{shown}:{port}" if host == address else f"{host} ({address}):{port}"
