"""A cluster the session cannot use is one sentence, as a user runs pytest: a kubeconfig that is
no kubeconfig, a context it does not have, an API server that refuses, is silent or answers
401: one usage error at the session's start (the backend is created once per session) naming
the option, the file or server and the HTTP status, within ``--ingress-kube-timeout``; an xdist
worker that cannot reach the cluster the controller reached fails each test's setup with that
one line. No traceback through the plugin in any case.

Everything is on loopback: real kubeconfig files, real sockets (a closed port, a listener that
never answers, an HTTP server answering as an API server does). Also here: the load's
``dns_timeout`` and ``ca_bundle`` as session options, checked at start."""

from __future__ import annotations

import json
import ssl
import textwrap
from pathlib import Path

import pytest
import trustme

from .localservers import answer_ok, answering, closed_port, serve, silent_listener

QUIET = ("-p", "no:cacheprovider", "-p", "no:benchmark", "-q")
KUBE = ("--ingress-backend", "kubernetes", "--ingress-aws-evidence", "off")

TWO_TESTS = """
    def test_one(ingress_service):
        pass

    def test_two(ingress_backend):
        pass
"""


def _kubeconfig(pytester: pytest.Pytester, server: str) -> Path:
    path = pytester.path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "not-a-valid-token"}}],
        "contexts": [{"name": "local", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "local"}))
    return path


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(textwrap.dedent(TWO_TESTS))
    # A subprocess with a deadline: the client's own defaults would take minutes.
    return pytester.runpytest_subprocess(*QUIET, *KUBE, *args, timeout=60)


def _said(result: pytest.RunResult) -> list[str]:
    return [line for line in result.errlines if line]


def _one_usage_error(result: pytest.RunResult, says: str) -> None:
    """The whole run is one line on stderr, pytest's usage error, and no test ran."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert _said(result) == [f"ERROR: pytest-ingress-chaos: {says}"], result.stderr.str()
    assert "Traceback" not in result.stdout.str()
    assert "passed" not in result.stdout.str() and "error" not in result.stdout.str()


def test_a_kubeconfig_that_is_no_kubeconfig_is_one_usage_error(
        pytester: pytest.Pytester) -> None:
    # -q: the header (which used to be the only place that connected at start) is not shown.
    result = _run(pytester, "--kubeconfig=/etc/passwd")
    _one_usage_error(result, "kubeconfig /etc/passwd (from --kubeconfig) is not a kubeconfig: "
                             "expected a mapping with clusters, contexts and users, found a str")


def test_a_context_the_kubeconfig_lacks_is_one_usage_error(pytester: pytest.Pytester) -> None:
    path = _kubeconfig(pytester, f"http://127.0.0.1:{closed_port()}")
    result = _run(pytester, f"--kubeconfig={path}", "--kube-context=nope")
    _one_usage_error(result, f"kubeconfig {path} (from --kubeconfig) has no context 'nope': "
                             "expected one of local")


def test_a_server_that_refuses_names_it_and_the_deadline(pytester: pytest.Pytester) -> None:
    server = f"http://127.0.0.1:{closed_port()}"
    path = _kubeconfig(pytester, server)
    result = _run(pytester, f"--kubeconfig={path}")
    _one_usage_error(result, f"the Kubernetes API server {server} (context local, kubeconfig "
                             f"{path}) did not answer within 5 s (the default of "
                             "--ingress-kube-timeout): the connection was refused")


@pytest.mark.parametrize(("given", "named"), [
    (("--ingress-kube-timeout=0.5s",), "--ingress-kube-timeout='0.5s'"),
    (("-o", "ingress_kube_timeout=0.5s"), "ini ingress_kube_timeout='0.5s'"),
])
def test_a_silent_server_is_given_up_on_at_the_kube_timeout(
        pytester: pytest.Pytester, given: tuple[str, ...], named: str) -> None:
    with silent_listener() as server:
        path = _kubeconfig(pytester, server)
        result = _run(pytester, f"--kubeconfig={path}", *given)
    _one_usage_error(result, f"the Kubernetes API server {server} (context local, kubeconfig "
                             f"{path}) did not answer within 0.5 s ({named}): no answer "
                             "(timed out)")


def test_the_kube_timeout_from_the_environment_is_named(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_INGRESS_KUBE_TIMEOUT", "0.5s")
    with silent_listener() as server:
        result = _run(pytester, f"--kubeconfig={_kubeconfig(pytester, server)}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert _said(result)[0].endswith("did not answer within 0.5 s (env "
                                       "PYTEST_INGRESS_KUBE_TIMEOUT='0.5s'): no answer "
                                       "(timed out)"), result.errlines


def test_rejected_credentials_name_the_http_status(pytester: pytest.Pytester) -> None:
    with serve(answering(401, "Unauthorized")) as server:
        path = _kubeconfig(pytester, server)
        result = _run(pytester, f"--kubeconfig={path}")
    _one_usage_error(result, f"the Kubernetes API server {server} (context local, kubeconfig "
                             f"{path}) refused the credentials: Unauthorized (HTTP 401)")


def test_a_worker_that_cannot_reach_the_cluster_fails_each_setup_with_one_line(
        pytester: pytest.Pytester) -> None:
    # The xdist controller gets the server's version at start; the worker, connecting after
    # it, is turned away (401): each of its tests is a setup error with the sentence alone.
    with serve(answering(401, "Unauthorized", versions_first=1)) as server:
        path = _kubeconfig(pytester, server)
        result = _run(pytester, f"--kubeconfig={path}", "-p", "xdist", "-n", "1")
    says = (f"the Kubernetes API server {server} (context local, kubeconfig {path}) refused the "
            "credentials: Unauthorized (HTTP 401)")
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    # each test's setup error: the sentence alone, as its "ERROR at setup" section (the short
    # summary repeats it, untruncated under CI=true, so count the sections)
    sections = out.split("short test summary info")[0]
    assert sections.count(says) == 2, out
    assert "Traceback" not in out and "pytest_ingress_chaos/" not in out, out


# --- the load's DNS deadline and CA bundle as session options -------------------------------


@pytest.mark.parametrize(("given", "says"), [
    (("--ingress-ca-bundle=/nonexistent/ca.pem",),
     "--ingress-ca-bundle='/nonexistent/ca.pem': expected the path of a PEM file of CA "
     "certificates: cannot load it (No such file or directory)"),
    (("-o", "ingress_ca_bundle=/etc/hostname"),
     "ini ingress_ca_bundle='/etc/hostname': expected the path of a PEM file of CA "
     "certificates: cannot load it ("),
    (("--ingress-dns-timeout=0",),
     "--ingress-dns-timeout='0': expected a duration > 0s and <= 3600s"),
    (("-o", "ingress_dns_timeout=soon"), "ini ingress_dns_timeout='soon': "),
])
def test_a_bad_dns_timeout_or_ca_bundle_is_a_usage_error_naming_the_option(
        pytester: pytest.Pytester, given: tuple[str, ...], says: str) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(*QUIET, *given, timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    said = _said(result)
    assert len(said) == 1, said
    assert said[0].startswith(f"ERROR: pytest-ingress-chaos: {says}"), said


def test_the_dns_timeout_option_is_every_windows_default(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.ingress_load(rate=20, duration="0.2s", connections=1)
        def test_default(ingress_load):
            ingress_load.run()
            assert ingress_load.spec.dns_timeout == 0.25

        @pytest.mark.ingress_load(rate=20, duration="0.2s", connections=1, dns_timeout="1s")
        def test_own(ingress_load):
            ingress_load.run()
            assert ingress_load.spec.dns_timeout == 1.0
    """))
    monkeypatch.setenv("PYTEST_INGRESS_DNS_TIMEOUT", "250ms")
    with serve(answer_ok) as url:
        result = pytester.runpytest_subprocess(*QUIET, f"--ingress-url={url}", timeout=60)
    result.assert_outcomes(passed=2)


def test_the_ca_bundle_option_makes_a_private_ca_trusted(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the system's trust store, unchanged
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    authority = trustme.CA()
    bundle = pytester.path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(tls)
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.ingress_load(rate=20, duration="0.5s", connections=1)
        def test_https(ingress_load):
            ingress_load.run()
    """))
    with serve(answer_ok, ssl_context=tls) as url:
        https = url.replace("http://", "https://")
        trusted = pytester.runpytest_subprocess(*QUIET, f"--ingress-url={https}",
                                                f"--ingress-ca-bundle={bundle}", timeout=60)
        untrusted = pytester.runpytest_subprocess(*QUIET, f"--ingress-url={https}", timeout=60)
    trusted.assert_outcomes(passed=1)
    # without the bundle, the check of the URL before the window refuses it (issue 17)
    untrusted.assert_outcomes(errors=1)
    assert "tls certificate verify failed" in untrusted.stdout.str()
