"""Nothing the kubernetes backend creates outlives its session: after a normal run, a Ctrl-C, a
SIGTERM and a worker that dies (``os._exit``), its namespaces are gone or going, as the API
shows; and ``pytest --ingress-sweep`` removes what a killed session left, and only that.

Against the local cluster (a real control plane; the kubelet stand-in confirms pod deletions,
so namespaces can finish deleting).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from pytest_ingress_chaos.localcluster.cluster import LocalCluster

from ..clusters import local_cluster

TIME_SCALE = 0.2
GONE_WITHIN = 60.0  # seconds: namespace deletion waits 5 s, then for every pod's end


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(time_scale=TIME_SCALE, stand_in_nodes=True) as running:
        yield running


@pytest.fixture(scope="module")
def core(cluster: LocalCluster) -> Iterator[client.CoreV1Api]:
    from kubernetes import config
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()


def run_namespaces(core: client.CoreV1Api, run_id: str) -> dict[str, bool]:
    """This run's namespaces: name -> still live (not being deleted)."""
    listed = core.list_namespace(label_selector=f"ingress-chaos.dev/run={run_id}").items
    return {ns.metadata.name: ns.metadata.deletion_timestamp is None for ns in listed}


def wait_gone(core: client.CoreV1Api, run_id: str) -> None:
    deadline = time.monotonic() + GONE_WITHIN
    while (left := run_namespaces(core, run_id)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"namespaces of run {run_id} outlived their session: {left}"


def pytest_args(cluster: LocalCluster, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
            "--ingress-backend", "kubernetes", "--kubeconfig", str(cluster.kubeconfig),
            "--ingress-time-scale", str(TIME_SCALE), "--ingress-steady-requests", "5", *extra]


def write_tests(path: Path, body: str) -> None:
    (path / "test_story.py").write_text(textwrap.dedent(body))


def run_id_of(output: str) -> str:
    match = re.search(r"ingress-chaos: .*run ([0-9a-f]{8})", output)
    assert match, output
    return match.group(1)


def test_a_normal_run_deletes_its_namespace(cluster: LocalCluster, core: client.CoreV1Api,
                                            tmp_path: Path) -> None:
    write_tests(tmp_path, """
        import pytest

        @pytest.mark.ingress_load(duration="3s")
        def test_short(ingress_load):
            ingress_load.run()
    """)
    done = subprocess.run(pytest_args(cluster), cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    wait_gone(core, run_id_of(done.stdout))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_deletes_its_namespace(cluster: LocalCluster,
                                                  core: client.CoreV1Api, tmp_path: Path,
                                                  signum: int) -> None:
    """Ctrl-C or SIGTERM in the middle of a load window."""
    write_tests(tmp_path, """
        import pytest

        @pytest.mark.ingress_load(duration="300s")
        def test_long(ingress_load):
            ingress_load.run()
    """)
    process = subprocess.Popen(pytest_args(cluster), cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        header = process.stdout.readline()
        while "run " not in header:
            header = process.stdout.readline()
            assert header, "pytest ended before its header"
        run_id = run_id_of(header)
        deadline = time.monotonic() + 120
        while not run_namespaces(core, run_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run_namespaces(core, run_id), "the session never created its namespace"
        time.sleep(3.0)  # provisioned, inside the window
        process.send_signal(signum)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            output = process.stdout.read()
            process.stdout.close()
    assert "Traceback" not in output, output
    wait_gone(core, run_id)


def test_a_worker_that_dies_leaves_no_namespace(cluster: LocalCluster,
                                                core: client.CoreV1Api,
                                                tmp_path: Path) -> None:
    """``os._exit`` inside a test under ``-n 2``: the worker's teardown never runs; the
    controller deletes its namespace."""
    write_tests(tmp_path, """
        import os
        import pytest

        @pytest.mark.ingress_load(duration="3s")
        def test_dies(ingress_load):
            ingress_load.start()
            os._exit(1)

        @pytest.mark.ingress_load(duration="3s")
        def test_lives(ingress_load):
            ingress_load.run()
    """)
    done = subprocess.run(pytest_args(cluster, "-n", "2"), cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert "crashed" in done.stdout or "worker" in done.stdout, done.stdout
    run_id = run_id_of(done.stdout)
    assert re.search(r"ingress-chaos: deleted ingress-chaos-\w+-gw\d, the namespace of worker "
                     r"gw\d, which died", done.stdout), done.stdout
    wait_gone(core, run_id)


def test_ingress_sweep_deletes_only_old_namespaces_of_this_plugin(
        cluster: LocalCluster, core: client.CoreV1Api, tmp_path: Path) -> None:
    old = str(int(time.time()) - 7200)
    labels = {"app.kubernetes.io/managed-by": "pytest-ingress-chaos",
              "ingress-chaos.dev/run": "deadbeef", "ingress-chaos.dev/created": old}
    names = {"ingress-chaos-deadbeef-gw7": labels,
             "ingress-chaos-young": {**labels, "ingress-chaos.dev/created": str(int(time.time()))},
             "someone-elses": {"ingress-chaos.dev/created": old}}
    for name, its_labels in names.items():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=name, labels=its_labels)))
    try:
        write_tests(tmp_path, "def test_never_runs():\n    raise AssertionError\n")
        dry = subprocess.run(pytest_args(cluster, "--ingress-sweep", "--ingress-sweep-dry-run"),
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "would delete ingress-chaos-deadbeef-gw7" in dry.stdout
        assert "test_never_runs" not in dry.stdout
        real = subprocess.run(pytest_args(cluster, "--ingress-sweep"), cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert real.returncode == 0, real.stdout + real.stderr
        assert "deleted ingress-chaos-deadbeef-gw7" in real.stdout
        live = {ns.metadata.name: ns.metadata.deletion_timestamp is None
                for ns in core.list_namespace().items}
        assert live.get("ingress-chaos-deadbeef-gw7") is not True  # gone or going
        assert live.get("ingress-chaos-young") is True
        assert live.get("someone-elses") is True
    finally:
        for name in names:
            try:
                core.delete_namespace(name)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc")
def test_no_sample_app_process_of_a_finished_run_is_left(cluster: LocalCluster,
                                                         core: client.CoreV1Api,
                                                         tmp_path: Path) -> None:
    """The pods of a finished run end as their namespace goes: the kubelet stand-in stops
    their processes (nothing of the run is left in the process table)."""
    write_tests(tmp_path, """
        import pytest

        @pytest.mark.ingress_load(duration="2s")
        def test_short(ingress_load, ingress_service):
            ingress_load.run()
            print("PODS", " ".join(pod.name for pod in ingress_service.pods()))
    """)
    done = subprocess.run([*pytest_args(cluster), "-s"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    pods = re.search(r"PODS (.+)", done.stdout)
    assert pods, done.stdout
    wait_gone(core, run_id_of(done.stdout))
    names = set(pods.group(1).split())
    deadline = time.monotonic() + 30
    while (left := _sampleapps(names)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"sample-app processes left behind: {left}"


def _sampleapps(names: set[str]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [word.decode(errors="replace") for word in argv]
        if "--name" in words and words[words.index("--name") + 1] in names:
            found.append(int(entry.name))
    return found if os.name == "posix" else []
