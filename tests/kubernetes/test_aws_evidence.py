"""The ALB's own view on the timeline, as on EKS, against a stand-in for AWS: AWS itself cannot
exist on these machines, so the local cluster's ALB controller stand-in publishes its simulated
ALBs through a real ELBv2 Query-protocol endpoint on loopback (``localcluster/elbv2api.py``) and
TargetGroupBinding objects in the API. The plugin finds them and polls them through boto3,
whose botocore parses every answer against its own service model, exactly as it would on EKS.

The field report's ip-mode kill: AWS reports the killed pod's target healthy, then draining,
the controller's deregistration lag (10 s, here five times faster) after the pod's deletion.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from pytest_ingress_chaos.localcluster.cluster import LocalCluster
from pytest_ingress_chaos.localcluster.elbv2api import Fault

from ..clusters import binaries_or_skip

TIME_SCALE = 0.2
LAG = 10.0  # the stand-in's deregistration lag, test seconds
FIELD_REPORT = """
    import pytest

    pytestmark = pytest.mark.kill_pods(at="5s")

    @pytest.mark.ingress_mode("ip")
    @pytest.mark.ingress_slo(max_errors=None)
    def test_ip_kill(ingress_load):
        ingress_load.run()

    @pytest.mark.ingress_mode("instance")
    def test_instance_kill(ingress_load):
        ingress_load.run()
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    # The stand-in nodes: real nodes run in real time only, and the field report's 10 s lag
    # is compressed here (the real nodes' ELBv2 view: tests/localcluster/).
    with LocalCluster(time_scale=TIME_SCALE, deregistration_lag=LAG, lag_jitter=0.5,
                      binaries=binaries_or_skip(), stand_in_nodes=True) as running:
        yield running


def run(pytester: pytest.Pytester, cluster: LocalCluster, *args: str) -> pytest.RunResult:
    pytester.makepyfile(textwrap.dedent(FIELD_REPORT))
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--ingress-backend", "kubernetes",
        "--kubeconfig", str(cluster.kubeconfig), "--ingress-time-scale", str(TIME_SCALE),
        "--ingress-steady-requests", "10", "--ingress-report-dir", "reports", *args)


def report(pytester: pytest.Pytester, test: str) -> dict[str, object]:
    (path,) = (pytester.path / "reports").glob(f"*{test}*.json")
    data: dict[str, object] = json.loads(path.read_text())
    return data


def with_aws_env(monkeypatch: pytest.MonkeyPatch, cluster: LocalCluster) -> None:
    for key, value in dict(line.split("=", 1) for line in
                           cluster.aws_env.read_text().splitlines()).items():
        monkeypatch.setenv(key, value)


def test_aws_env_reaches_the_stand_in_through_boto3(monkeypatch: pytest.MonkeyPatch,
                                                    cluster: LocalCluster) -> None:
    with_aws_env(monkeypatch, cluster)
    elbv2 = boto3.client("elbv2")
    assert elbv2.describe_target_groups()["TargetGroups"] == []  # no Ingress yet
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_target_health(TargetGroupArn="arn:aws:elasticloadbalancing:us-east-1:"
                                     "000000000000:targetgroup/none/0")


def test_the_field_report_with_the_albs_own_view(pytester: pytest.Pytester,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 cluster: LocalCluster) -> None:
    with_aws_env(monkeypatch, cluster)
    result = run(pytester, cluster)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["ingress-chaos: the ALB's own view (AWS API): on, region "
                                 "us-east-1, endpoint http://127.0.0.1:*"])
    ip = report(pytester, "test_ip_kill")
    events = ip["result"]["events"]  # type: ignore[index]
    notes = [e["message"] for e in events if e["kind"] == "aws.note"]
    assert notes[0].startswith("AWS: target group k8s-"), notes
    assert "(ip, found by TargetGroupBinding k8s-" in notes[0], notes
    assert notes[1].startswith("AWS: attributes: deregistration delay "), notes
    (kill,) = [e for e in events if e["source"] == "chaos"]
    victim = kill["subject"]
    own = [e for e in events if e["source"] == "aws" and e["subject"] == victim]
    kinds = [e["kind"] for e in own]
    assert kinds[:1] == ["target.registered"] and "(healthy)" in own[0]["message"], own
    assert "target.draining" in kinds, own
    (disruption,) = ip["result"]["disruptions"]  # type: ignore[index]
    assert disruption["lag_source"] == "aws"
    assert abs(disruption["deregistration_lag"] - LAG) <= 0.2 * LAG, disruption
    assert disruption["explanation"].startswith(f"target of {victim} stayed healthy ")
    assert "Remedy: a preStop sleep longer than" in disruption["explanation"]
    page = next((pytester.path / "reports").glob("*test_ip_kill*.html")).read_text()
    assert "ALB targets" in page and victim in page and "deregistration lag" in page

    instance = report(pytester, "test_instance_kill")
    events = instance["result"]["events"]  # type: ignore[index]
    own = [e for e in events if e["source"] == "aws" and e["kind"].startswith("target.")]
    assert {e["subject"] for e in own} == set(cluster.node_names), own
    assert all(e["kind"] == "target.registered" and "(healthy)" in e["message"] for e in own)
    (disruption,) = instance["result"]["disruptions"]  # type: ignore[index]
    assert disruption["deregistration_lag"] is None and disruption["errors"] == 0


def test_without_credentials_the_run_is_as_before_and_says_so(
        pytester: pytest.Pytester, cluster: LocalCluster) -> None:
    result = run(pytester, cluster)  # the suite's conftest.py leaves no AWS credentials
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["ingress-chaos: kubernetes (context *)",
                                 "ingress-chaos: the ALB's own view (AWS API) is off: no AWS "
                                 "credentials found (*)"])
    events = report(pytester, "test_ip_kill")["result"]["events"]  # type: ignore[index]
    assert not [e for e in events if e["kind"].startswith("target.")]


def test_a_denied_call_is_one_line_and_never_fails_the_test(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
        cluster: LocalCluster) -> None:
    with_aws_env(monkeypatch, cluster)
    assert cluster.elbv2 is not None
    cluster.elbv2.faults["DescribeTargetHealth"] = Fault(
        403, "AccessDenied", "User: arn:aws:iam::000000000000:user/ci is not authorized to "
        "perform: elasticloadbalancing:DescribeTargetHealth")
    try:
        result = run(pytester, cluster, "-k", "ip_kill")
    finally:
        cluster.elbv2.faults.clear()
    result.assert_outcomes(passed=1)
    events = report(pytester, "test_ip_kill")["result"]["events"]  # type: ignore[index]
    gaps = [e["message"] for e in events if e["kind"] == "aws.gap"]
    assert gaps == ['no AWS target health from here: DescribeTargetHealth was denied '
                    '(AccessDenied): add "elasticloadbalancing:DescribeTargetHealth" to the IAM '
                    "policy's Action list (deploy/aws-evidence-iam-policy.json)"], gaps
    assert not [e for e in events if e["kind"].startswith("target.")]


def test_aws_env_is_next_to_the_kubeconfig(cluster: LocalCluster) -> None:
    lines = dict(line.split("=", 1) for line in cluster.aws_env.read_text().splitlines())
    assert Path(cluster.aws_env).parent == Path(cluster.kubeconfig).parent
    assert lines["AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2"].startswith("http://127.0.0.1:")
    assert lines["AWS_DEFAULT_REGION"] == "us-east-1"
