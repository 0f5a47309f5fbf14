"""An explicit ingress URL is checked before its window (issue 17, "nothing pretended"): nothing
listening, a name that does not resolve or a TLS handshake that fails is a setup error naming
where the URL came from, the address and the reason, never a window of failed requests; and
``peak_connections`` counts only connections that opened. Every server is on loopback."""

from __future__ import annotations

import ssl
import textwrap
from collections.abc import Iterator

import pytest
import trustme

from pytest_ingress_chaos.base.specs import LoadSpec
from pytest_ingress_chaos.core.load.generator import LoadGenerator
from pytest_ingress_chaos.core.result import summarize
from pytest_ingress_chaos.core.timeline import Timeline

from .localservers import answer_ok, closed_port, serve

FAST = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.1")
_TEST = """
    def test_it(ingress_load):
        ingress_load.run()
"""


def _write(pytester: pytest.Pytester, source: str = _TEST) -> None:
    pytester.makepyfile(textwrap.dedent(source))


def _assert_setup_error(result: pytest.RunResult, *lines: str) -> None:
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(list(lines))
    output = result.stdout.str()
    assert "requests failed" not in output and "Connections: peak" not in output, output
    assert "Traceback" not in output and "engines.py" not in output, output


@pytest.fixture
def untrusted_tls() -> Iterator[str]:
    """An https:// URL on loopback whose certificate comes from a CA nobody trusts."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    with serve(answer_ok, ssl_context=context) as url:
        yield url.replace("http://", "https://") + "/"


def test_nothing_listening_is_a_setup_error_naming_the_option(
        pytester: pytest.Pytester) -> None:
    port = closed_port()
    _write(pytester)
    result = pytester.runpytest_subprocess(*FAST, f"--ingress-url=http://127.0.0.1:{port}/")
    _assert_setup_error(result, f"*--ingress-url='http://127.0.0.1:{port}/': nothing listens "
                                f"at 127.0.0.1:{port} (connection refused)*")


def test_a_url_from_the_marker_is_named_as_the_marker(pytester: pytest.Pytester) -> None:
    port = closed_port()
    _write(pytester, f"""
        import pytest

        @pytest.mark.ingress_load(url="http://127.0.0.1:{port}/")
        def test_it(ingress_load):
            ingress_load.run()
    """)
    result = pytester.runpytest_subprocess(*FAST)
    _assert_setup_error(result, f"*marker ingress_load url='http://127.0.0.1:{port}/': nothing "
                                f"listens at 127.0.0.1:{port}*")


def test_a_name_that_does_not_resolve_is_a_setup_error_naming_the_ini_key(
        pytester: pytest.Pytester) -> None:
    # .invalid never resolves and the resolver answers so itself: no query leaves the machine.
    pytester.makeini("[pytest]\ningress_url = http://nonexistent.invalid:8080/\n")
    _write(pytester)
    result = pytester.runpytest_subprocess(*FAST)
    _assert_setup_error(result, "*ini ingress_url='http://nonexistent.invalid:8080/': "
                                "nonexistent.invalid did not resolve (dns failure: "
                                "nonexistent.invalid is reserved never to resolve*")


def test_a_failed_tls_handshake_is_a_setup_error_naming_the_env_var(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, untrusted_tls: str) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("PYTEST_INGRESS_URL", untrusted_tls)
    address = untrusted_tls.removeprefix("https://").rstrip("/")
    _write(pytester)
    result = pytester.runpytest_subprocess(*FAST)
    _assert_setup_error(result, f"*env PYTEST_INGRESS_URL='{untrusted_tls}': the TLS handshake "
                                f"with {address} failed (tls certificate verify failed: *")


def test_a_url_that_answers_still_gets_its_window(pytester: pytest.Pytester) -> None:
    _write(pytester)
    with serve(answer_ok) as url:
        result = pytester.runpytest_subprocess(*FAST, f"--ingress-url={url}/",
                                               "--ingress-duration=2s", "--ingress-rate=20")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_peak_connections_counts_only_connections_that_opened(scheme: str) -> None:
    """At a closed port no connection ever opens: peak 0, however many were tried."""
    timeline = Timeline()
    generator = LoadGenerator(f"{scheme}://127.0.0.1:{closed_port()}/",
                              LoadSpec(rate=50, duration=0.2, connections=5), timeline)
    generator.start()
    generator.wait()
    result = summarize(timeline, 50)
    assert result.by_outcome == {"connection refused": 10}
    assert result.peak_connections == 0


def test_peak_connections_counts_the_connections_that_did_open() -> None:
    with serve(answer_ok) as url:
        timeline = Timeline()
        generator = LoadGenerator(url + "/", LoadSpec(rate=50, duration=0.2, connections=3),
                                  timeline)
        generator.start()
        generator.wait()
    result = summarize(timeline, 50)
    assert result.by_outcome == {"200": 10}
    assert 1 <= result.peak_connections <= 3 + 1  # the pool, and at most one grown past it

