"""``ingress-chaos-sweep`` against a real API server (the bare control plane: namespaces need no
kubelet): it lists, then deletes, only namespaces labelled as ours and older than the TTL."""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_ingress_chaos.backends.kubernetes import sweeper
from pytest_ingress_chaos.backends.kubernetes.apis import ApiError, JsonDict, KubeApi
from pytest_ingress_chaos.backends.kubernetes.labels import (
    CREATED_LABEL,
    MANAGED_BY_LABEL,
    session_labels,
)
from pytest_ingress_chaos.localcluster.controlplane import ControlPlane, find_binaries


@pytest.fixture(scope="module")
def control_plane() -> Iterator[ControlPlane]:
    found = find_binaries()
    if isinstance(found, str):
        pytest.skip(found)
    with ControlPlane(nodes=1, binaries=found) as running:
        yield running


@pytest.fixture
def api(control_plane: ControlPlane) -> Iterator[KubeApi]:
    with control_plane.api_client() as api_client:
        yield KubeApi(api_client)


def create(api: KubeApi, name: str, labels: dict[str, str]) -> None:
    api.call("create", api.core.create_namespace,
             {"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": name, "labels": labels}})


def state(api: KubeApi, name: str) -> str:
    """"alive", "deleting" or "gone"."""
    try:
        namespace: JsonDict = api.call("read", api.core.read_namespace, name)
    except ApiError as exc:
        if exc.status == 404:
            return "gone"
        raise
    return "deleting" if namespace["metadata"].get("deletionTimestamp") else "alive"


def test_sweep_lists_then_deletes_only_old_namespaces_of_ours(
        control_plane: ControlPlane, api: KubeApi, capsys: pytest.CaptureFixture[str]) -> None:
    tag = secrets.token_hex(3)
    now = int(time.time())
    old, young = f"ingress-chaos-old{tag}-main", f"ingress-chaos-young{tag}-main"
    foreign = f"team-foreign{tag}"  # an old created label, but not managed by us
    other_tool = f"other-tool{tag}"  # managed by someone else
    undated = f"ingress-chaos-undated{tag}-main"  # ours, no created label: never guessed
    create(api, old, session_labels("oldrun", now - 7200))
    create(api, young, session_labels("newrun", now - 60))
    create(api, foreign, {CREATED_LABEL: str(now - 7200)})
    create(api, other_tool, {MANAGED_BY_LABEL: "helm", CREATED_LABEL: str(now - 7200)})
    create(api, undated, {MANAGED_BY_LABEL: "pytest-ingress-chaos"})
    config = ["--kubeconfig", str(control_plane.kubeconfig)]

    assert sweeper.main([*config, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would delete {old} (run oldrun, 2h00m old)" in out, out
    for kept in (young, foreign, other_tool):
        assert kept not in out, out
    assert f"kept {undated}: no valid {CREATED_LABEL} label" in out, out
    assert all(state(api, name) == "alive"
               for name in (old, young, foreign, other_tool, undated)), "the dry run deleted"

    # A shorter TTL reaches the young one too (listed only: still a dry run).
    assert sweeper.main([*config, "--dry-run", "--ttl", "30s"]) == 0
    assert f"would delete {young}" in capsys.readouterr().out

    assert sweeper.main(config) == 0
    out = capsys.readouterr().out
    assert f"deleted {old} (run oldrun" in out, out
    assert state(api, old) in ("deleting", "gone")
    kept = (young, foreign, other_tool, undated)
    assert {name: state(api, name) for name in kept} == dict.fromkeys(kept, "alive")

    # Again: the deleted one is terminating or gone; nothing else is touched.
    assert sweeper.main(config) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not [line for line in lines if line.startswith("deleted ")], lines


def test_sweep_exit_code_1_when_the_api_fails(control_plane: ControlPlane,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with control_plane.api_client() as api_client:
        api_client.configuration.api_key = {"authorization": "Bearer wrong-token"}
        api = KubeApi(api_client)
        assert sweeper.sweep(api, 3600, dry_run=True, out=sys.stdout) == 1
    assert "Unauthorized" in capsys.readouterr().out


def test_the_sweeper_with_credentials_the_server_rejects_prints_one_line(
        control_plane: ControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = json.loads(control_plane.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": "wrong-token"}
    wrong = tmp_path / "kubeconfig"
    wrong.write_text(json.dumps(config))
    assert sweeper.main([f"--kubeconfig={wrong}", "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"ingress-chaos-sweep: the Kubernetes API server "
                            f"{control_plane.server} (context {config['current-context']}, "
                            f"kubeconfig {wrong}) refused the credentials: Unauthorized "
                            "(HTTP 401)\n")
