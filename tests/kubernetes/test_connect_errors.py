"""Cluster errors are sentences: a kubeconfig that cannot be used, a context that does not
exist, an API server that refuses, is silent or rejects the credentials is one error naming the
option, the file or server and the HTTP status, within seconds, and ``ingress-chaos-sweep``
prints it as one line. Everything runs on loopback: the kubeconfig files are real, the servers
are real sockets (a closed port, a listener that never answers, an HTTP server answering the
version request with 401 or 403 as an API server does)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ingress_chaos.backends.kubernetes.apis import ApiError
from pytest_ingress_chaos.backends.kubernetes.connect import (
    KubeconfigError,
    connect,
    connect_and_reach,
    reach,
)

from ..localservers import answering, closed_port, serve, silent_listener


def kubeconfig(path: Path, server: str, context: str = "local") -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "not-a-valid-token"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
        "current-context": context}))
    return path


@pytest.mark.parametrize(("content", "says"), [
    (None, r"kubeconfig /etc/passwd \(from --kubeconfig\) is not a kubeconfig: expected a "
           r"mapping with clusters, contexts and users, found a str"),
    ("clusters: [\n", r"kubeconfig .*/kubeconfig \(from --kubeconfig\) is not valid YAML at "
                      r"line 2: expected the node content"),
    ("- 1\n- 2\n", r"is not a kubeconfig: .* found a list"),
    ("clusters: 3\n", r"kubeconfig .*/kubeconfig \(from --kubeconfig\) is not a valid "
                      r"kubeconfig: "),
])
def test_a_kubeconfig_that_is_no_kubeconfig_is_one_sentence(
        tmp_path: Path, content: str | None, says: str) -> None:
    path = Path("/etc/passwd") if content is None else tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KubeconfigError, match=says) as caught:
        connect(path, None, environ={})
    assert caught.value.__cause__ is None or caught.value.__suppress_context__


def test_an_unreadable_kubeconfig_and_a_missing_context_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match=r"^cannot read kubeconfig .*/absent \(from "
                                              r"\$KUBECONFIG\): No such file or directory$"):
        connect(None, None, environ={"KUBECONFIG": str(tmp_path / "absent")})
    with pytest.raises(KubeconfigError, match=r"^cannot read kubeconfig .* \(from "
                                              r"--kubeconfig\): Is a directory$"):
        connect(tmp_path, None, environ={})
    path = kubeconfig(tmp_path / "config", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(KubeconfigError, match=r"kubeconfig .*/config \(from --kubeconfig\) has "
                                              r"no context 'nope': expected one of local"):
        connect(path, "nope", environ={})


def test_a_server_that_refuses_says_so(tmp_path: Path) -> None:
    server = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ApiError, match=rf"^the Kubernetes API server {server} \(context local, "
                                       r"kubeconfig .*/config\) did not answer within 5 s: the "
                                       r"connection was refused$"):
        connect_and_reach(kubeconfig(tmp_path / "config", server), None)


def test_a_silent_server_says_so_within_the_deadline(tmp_path: Path) -> None:
    with silent_listener() as server:
        connection = connect(kubeconfig(tmp_path / "config", server), None, environ={})
        with pytest.raises(ApiError, match=rf"^the Kubernetes API server {server} .* did not "
                                           r"answer within 0\.5 s: no answer \(timed out\)$"):
            reach(connection, timeout=0.5)
        connection.api_client.close()


@pytest.mark.parametrize(("status", "reason"), [(401, "Unauthorized"), (403, "Forbidden")])
def test_rejected_credentials_name_the_status(tmp_path: Path, status: int, reason: str) -> None:
    with serve(answering(status, reason)) as server:
        says = (rf"^the Kubernetes API server {server} \(context local, kubeconfig .*\) refused "
                rf"the credentials: {reason} \(HTTP {status}\)$")
        with pytest.raises(ApiError, match=says) as caught:
            connect_and_reach(kubeconfig(tmp_path / "config", server), None)
    assert caught.value.status == status


def _sweep(*args: str) -> subprocess.CompletedProcess[str]:
    # A deadline on the whole run: today's client would take 121 s against a silent server.
    return subprocess.run([sys.executable, "-m", "pytest_ingress_chaos.backends.kubernetes.sweeper",
                           *args], capture_output=True, text=True, timeout=60, check=False)


def test_the_sweeper_with_a_garbage_kubeconfig_prints_one_line() -> None:
    done = _sweep("--kubeconfig=/etc/passwd")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == ("ingress-chaos-sweep: kubeconfig /etc/passwd (from --kubeconfig) is "
                           "not a kubeconfig: expected a mapping with clusters, contexts and "
                           "users, found a str\n")


def test_the_sweeper_against_a_silent_server_says_so_in_seconds(tmp_path: Path) -> None:
    with silent_listener() as server:
        done = _sweep(f"--kubeconfig={kubeconfig(tmp_path / 'config', server)}",
                      "--timeout=1s")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"ingress-chaos-sweep: the Kubernetes API server {server} ")
    assert done.stderr.endswith("did not answer within 1 s: no answer (timed out)\n")
