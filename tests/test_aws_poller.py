"""The AWS target health poller's faults, through real boto3 against loopback: an endpoint that
does not answer is no data and one line, never an exception; data coming back says so."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions

from pytest_ingress_chaos.backends.kubernetes.aws import faults
from pytest_ingress_chaos.backends.kubernetes.aws.access import CALLS
from pytest_ingress_chaos.backends.kubernetes.aws.poller import MAX_INTERVAL, TargetHealthPoller

ARN = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/k8s-x/0123"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens on it any more


def test_an_endpoint_that_does_not_answer_is_one_gap_event() -> None:
    client = boto3.client(
        "elbv2", endpoint_url=f"http://127.0.0.1:{closed_port()}", region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=1))
    seen: list[tuple[str, str]] = []
    poller = TargetHealthPoller(client, ARN, lambda at, kind, subject, message:
                                seen.append((kind, message)), lambda target: target)
    for _ in range(3):
        poller.poll_once()
    assert [kind for kind, _ in seen] == ["aws.gap"]  # one line, not one per call
    assert "DescribeTargetHealth: the AWS endpoint did not answer (EndpointConnectionError" \
        in seen[0][1]
    assert 1.0 <= poller.interval <= MAX_INTERVAL  # polled less often while there is no answer


def throttled() -> botocore.exceptions.ClientError:
    """botocore's own error for ELBv2's throttling answer."""
    return botocore.exceptions.ClientError(
        {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeTargetHealth")


class _Client:
    """An ELBv2 client's answers, as botocore gives them: throttled ``throttled`` times, then
    one healthy target (the stand-in for AWS's throttling, which no endpoint here has)."""

    def __init__(self, throttled: int) -> None:
        self.throttled = throttled

    def describe_target_health(self, TargetGroupArn: str) -> dict[str, object]:
        if self.throttled:
            self.throttled -= 1
            raise throttled()
        return {"TargetHealthDescriptions": [
            {"Target": {"Id": "198.18.0.7", "Port": 8080}, "TargetHealth": {"State": "healthy"}}]}


def test_throttling_backs_off_and_the_data_coming_back_is_said() -> None:
    seen: list[tuple[str, str, str]] = []
    poller = TargetHealthPoller(_Client(throttled=3), ARN, lambda at, kind, subject, message:
                                seen.append((kind, subject, message)),
                                {"198.18.0.7": "kubia-a"}.__getitem__, interval=0.25)
    for _ in range(3):
        poller.poll_once()
    assert poller.interval == 2.0  # doubled on each throttled call
    poller.poll_once()
    assert poller.interval == 1.0  # and halves back once answered
    kinds = [kind for kind, _, _ in seen]
    assert kinds == ["aws.gap", "aws.gap", "target.registered"], seen
    assert seen[0][2] == ("no AWS target health from here: " + faults.describe(
        "DescribeTargetHealth", throttled()))
    assert seen[1][2].startswith("AWS target health again, after ")
    assert seen[2][1:] == ("kubia-a", "target 198.18.0.7 (kubia-a) registered (healthy), as "
                                      "AWS reports it")


def test_the_documented_iam_policy_allows_every_call_the_evidence_makes() -> None:
    policy = json.loads((Path(__file__).parents[1] / "deploy" /
                         "aws-evidence-iam-policy.json").read_text())
    (statement,) = policy["Statement"]
    assert sorted(statement["Action"]) == sorted(f"elasticloadbalancing:{call}"
                                                 for call in CALLS)
