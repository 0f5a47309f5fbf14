"""The plugin end to end with ``--ingress-backend kubernetes``, as a user runs it, against the
local cluster: a real control plane, the kubelet stand-in running the sample app as local
processes (no kubelet or containers can run here) and the AWS Load Balancer Controller stand-in
driving the simulator's ALB from the API (AWS itself cannot exist here).

The field report must come out as on the simulator: in ip mode a killed pod costs errors in a
window of seconds; in instance mode none; in ip mode with a preStop longer than the
controller's lag, none. Time runs five times faster on both sides (the stand-ins and the test's
clock).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest
from kubernetes import client

from pytest_ingress_chaos.backends.kubernetes.labels import MANAGED_BY, MANAGED_BY_LABEL
from pytest_ingress_chaos.localcluster.cluster import LocalCluster

from ..clusters import local_cluster

TIME_SCALE = 0.2


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    # The stand-in nodes: the field report on real nodes is in
    # tests/localcluster/test_local_cluster_nodes.py.
    with local_cluster(time_scale=TIME_SCALE, stand_in_nodes=True) as running:
        yield running


def test_the_field_report_on_the_kubernetes_backend(pytester: pytest.Pytester,
                                                    cluster: LocalCluster) -> None:
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        pytestmark = pytest.mark.kill_pods(at="5s")

        @pytest.mark.ingress_mode("instance")
        def test_instance_mode_pod_kill_is_invisible(ingress_load):
            ingress_load.run()

        @pytest.mark.ingress_mode("ip")
        @pytest.mark.ingress_slo(max_errors=None)
        def test_ip_mode_pod_kill_costs_errors(ingress_load, ingress_service):
            result = ingress_load.run()
            assert set(result.by_outcome) - {"200"} <= {"502", "504", "timeout"}
            assert result.errors > 0
            (window,) = result.error_windows
            assert 5.0 <= window.start <= 7.0 and window.end - window.start <= 13.0
            kinds = [e.kind for e in result.events if e.at >= 0]
            assert kinds.index("kill_pods") < kinds.index("pod.deleted")
            assert "endpoint.not_ready" in kinds or "endpoint.removed" in kinds
            assert ingress_service.identity.namespace.startswith("ingress-chaos-")

        @pytest.mark.ingress_mode("ip")
        @pytest.mark.sample_service(prestop_sleep="15s", grace_period="45s")
        @pytest.mark.ingress_load(duration="25s")
        def test_ip_mode_with_prestop_longer_than_the_lag_passes(ingress_load):
            ingress_load.run()
    """))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--ingress-backend", "kubernetes",
        "--kubeconfig", str(cluster.kubeconfig), "--ingress-time-scale", str(TIME_SCALE),
        "--ingress-steady-requests", "10")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "ingress-chaos: backend kubernetes, default mode instance, seed *",
        "ingress-chaos: kubernetes (context *, server https://127.0.0.1:*, profile aws-alb, "
        "namespace ingress-chaos-*-main)",
        "*ingress-chaos summary*",
    ])
    result.stdout.re_match_lines([
        r"ok +instance +\d+ +0 +0s +- +.*test_instance_mode_pod_kill_is_invisible\[instance\]",
        r"ok +ip +\d+ +[1-9]\d* +.*test_ip_mode_pod_kill_costs_errors\[ip\]",
        r"ok +ip +\d+ +0 +0s +- +.*test_ip_mode_with_prestop_longer_than_the_lag_passes\[ip\]",
    ])
    # The session's namespace (the tests' objects and the IngressGroup anchor in it) is gone.
    with cluster.api_client() as api_client:
        left = client.CoreV1Api(api_client).list_namespace(
            label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}").items
    assert [namespace.metadata.name for namespace in left] == []


def test_a_chaos_marker_the_backend_cannot_do_is_refused_at_setup(
        pytester: pytest.Pytester, cluster: LocalCluster) -> None:
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.kill_pods(at="1s", signal="SIGKILL")
        def test_container_kill(ingress_load):
            ingress_load.run()
    """))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--ingress-backend", "kubernetes",
        "--kubeconfig", str(cluster.kubeconfig))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*marker kill_pods on test_container_kill: signal= kills a "
                                 "container only, which backend kubernetes cannot do*"])


def test_the_manifests_hook_changes_what_is_applied(pytester: pytest.Pytester,
                                                   cluster: LocalCluster) -> None:
    """A project's conftest.py adds an annotation to the Deployment and the pod template; the
    objects in the API carry it."""
    pytester.makeconftest("""
        def pytest_ingress_manifests(manifests, nodeid, mode):
            deployment = manifests[0]
            assert deployment["kind"] == "Deployment" and mode == "instance"
            deployment["metadata"].setdefault("annotations", {})["team"] = "platform"
            template = deployment["spec"]["template"]["metadata"]
            template.setdefault("annotations", {})["team"] = "platform"
    """)
    pytester.makepyfile(textwrap.dedent(f"""
        import pytest
        from kubernetes import client, config

        @pytest.mark.ingress_load(duration="1s")
        def test_annotated(ingress_load, ingress_service):
            ingress_load.run()
            api = config.new_client_from_config(config_file={str(cluster.kubeconfig)!r})
            try:
                ident = ingress_service.identity
                deployment = client.AppsV1Api(api).read_namespaced_deployment(
                    ident.deployment, ident.namespace)
                pods = client.CoreV1Api(api).list_namespaced_pod(
                    ident.namespace, label_selector=",".join(
                        f"{{k}}={{v}}" for k, v in ident.selector.items())).items
            finally:
                api.close()
            assert deployment.metadata.annotations["team"] == "platform"
            assert pods and all(p.metadata.annotations["team"] == "platform" for p in pods)
    """))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--ingress-backend", "kubernetes",
        "--kubeconfig", str(cluster.kubeconfig), "--ingress-time-scale", str(TIME_SCALE),
        "--ingress-steady-requests", "5")
    result.assert_outcomes(passed=1)
