"""Faults the load generator must name rightly and blame on the right party, each against a real
server on loopback: TLS that fails verification, names that do not resolve or resolve slowly,
credentials in the URL."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from pytest_ingress_chaos.base.specs import FieldError, LoadSpec, SLOSpec
from pytest_ingress_chaos.core.load.generator import LoadGenerator
from pytest_ingress_chaos.core.result import summarize
from pytest_ingress_chaos.core.timeline import Timeline
from pytest_ingress_chaos.core.verdict import FAIL, VOID, judge

from .localservers import Handler, answer_ok, serve


def _run(url: str, **spec: Any) -> Timeline:
    timeline = Timeline()
    generator = LoadGenerator(url, LoadSpec(**spec), timeline)
    generator.start()
    generator.wait()
    return timeline


def _recording(heads: list[bytes]) -> Handler:
    """A keep-alive server answering 200 that keeps the head of every request it gets."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                heads.append(head)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\nYou've hit local\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
    return handle


def _header(head: bytes, name: bytes) -> bytes:
    [value] = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")[1:]
               if line.lower().startswith(name.lower() + b":")]
    return value


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[trustme.CA, str]:
    """A throwaway CA and its PEM file; the system's trust store stays what it is (no
    $SSL_CERT_FILE pointing at it)."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    authority = trustme.CA()
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, str(path)


def _tls_server(authority: trustme.CA, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(name).configure_cert(context)
    return context


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_userinfo_in_the_url_is_sent_as_basic_auth_never_in_host(
        scheme: str, ca: tuple[trustme.CA, str]) -> None:
    authority, bundle = ca
    heads: list[bytes] = []
    tls = _tls_server(authority, "127.0.0.1") if scheme == "https" else None
    with serve(_recording(heads), ssl_context=tls) as url:
        port = url.rsplit(":", 1)[1]
        timeline = _run(f"{scheme}://us%40er:se%3Acret@127.0.0.1:{port}/", rate=20,
                        duration=0.2, ca_bundle=bundle)
    assert summarize(timeline, 20).by_outcome == {"200": 4}
    for head in heads:
        assert _header(head, b"Host") == f"127.0.0.1:{port}".encode()
        assert _header(head, b"Authorization") == \
            b"Basic " + base64.b64encode(b"us@er:se:cret")  # percent-decoded, as curl does
        assert b"secret" not in head.replace(b"se%3Acret", b"")


def test_a_certificate_from_an_untrusted_ca_is_its_own_outcome(
        ca: tuple[trustme.CA, str]) -> None:
    authority, _ = ca
    with serve(answer_ok, ssl_context=_tls_server(authority, "127.0.0.1")) as url:
        timeline = _run(url.replace("http://", "https://"), rate=20, duration=0.2)
    result = summarize(timeline, 20)
    assert result.by_outcome == {"tls certificate verify failed": 4}
    verdict = judge(result, SLOSpec())
    assert verdict.kind == FAIL  # what any client of this ingress would meet: its errors
    assert verdict.violations == ["4 of 4 requests failed; ingress_slo allows max_errors=0"]


def test_a_certificate_for_another_name_is_a_hostname_mismatch(
        ca: tuple[trustme.CA, str]) -> None:
    authority, bundle = ca
    with serve(answer_ok, ssl_context=_tls_server(authority, "ingress.test")) as url:
        timeline = _run(url.replace("http://", "https://"), rate=20, duration=0.2,
                        ca_bundle=bundle)
    assert summarize(timeline, 20).by_outcome == {"tls hostname mismatch": 4}


def test_ca_bundle_makes_a_private_ca_trusted(ca: tuple[trustme.CA, str]) -> None:
    authority, bundle = ca
    with serve(answer_ok, ssl_context=_tls_server(authority, "127.0.0.1")) as url:
        timeline = _run(url.replace("http://", "https://"), rate=20, duration=0.2,
                        ca_bundle=bundle)
    assert summarize(timeline, 20).by_outcome == {"200": 4}


@pytest.mark.parametrize("bad", ["/nonexistent/ca.pem", "/etc/hostname", ""])
def test_a_ca_bundle_that_cannot_be_loaded_is_refused_at_setup(bad: str) -> None:
    with pytest.raises(FieldError, match=r"^ca_bundle='.*': expected the path of a PEM file"):
        LoadSpec(ca_bundle=bad)


def _no_query(*args: object, **kwargs: object) -> Any:
    raise AssertionError(f"a DNS query left for {args[0]!r}")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_name_that_never_resolves_voids_the_window_without_a_query(
        scheme: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``.invalid`` (RFC 6761) fails at once, no query sent: asserted, since this machine's
    resolver would send one off the machine."""
    monkeypatch.setattr(socket, "getaddrinfo", _no_query)
    timeline = _run(f"{scheme}://nonexistent.invalid/", rate=20, duration=0.25, connections=1)
    result = summarize(timeline, 20)
    assert result.by_outcome == {"dns failure": 5}
    assert (result.errors, result.runner_errors) == (0, 5)
    verdict = judge(result, SLOSpec())
    assert verdict.kind == VOID
    assert verdict.violations[0].startswith("no request reached the ingress: all 5 failed on "
                                            "the machine running the tests (dns failure x5)")


def _slow_resolver(seconds: float) -> Callable[..., Any]:
    """A stand-in for a slow system resolver (this machine's must not be asked): answers
    127.0.0.1 after ``seconds``."""
    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> Any:
        time.sleep(seconds)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
    return getaddrinfo


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_slow_resolver_is_a_dns_failure_not_an_ingress_timeout(
        scheme: str, monkeypatch: pytest.MonkeyPatch, ca: tuple[trustme.CA, str]) -> None:
    authority, bundle = ca
    tls = _tls_server(authority, "ingress.test") if scheme == "https" else None
    with serve(answer_ok, ssl_context=tls) as url:
        port = url.rsplit(":", 1)[1]
        target = f"{scheme}://ingress.test:{port}/"
        monkeypatch.setattr(socket, "getaddrinfo", _slow_resolver(0.6))
        slow = _run(target, rate=20, duration=0.25, timeout=1.0, dns_timeout=0.3,
                    ca_bundle=bundle)
        # The connect timeout is the ingress's alone: resolving within dns_timeout does not
        # eat into it.
        fine = _run(target, rate=20, duration=0.25, timeout=0.5, dns_timeout=1.0,
                    ca_bundle=bundle, connections=1, keepalive=False)
    assert summarize(slow, 20).by_outcome == {"dns failure": 5}
    assert summarize(fine, 20).by_outcome == {"200": 5}


def test_an_ingress_url_that_never_resolves_is_a_setup_error_not_a_pass(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's case end to end: ``--ingress-url=http://nonexistent.invalid/`` passed."""
    monkeypatch.setattr(socket, "getaddrinfo", _no_query)  # in-process: no query may leave
    pytester.makepyfile("""
        import pytest
        @pytest.mark.ingress_load(connections=1, duration="1s", rate=10)
        def test_it(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest_inprocess("-p", "no:benchmark", "-p", "no:cacheprovider",
                                          "--ingress-url=http://nonexistent.invalid/")
    # Checked before the window (issue 17): a setup error, not even a void window.
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--ingress-url='http://nonexistent.invalid/': "
                                 "nonexistent.invalid did not resolve (dns failure*"])
