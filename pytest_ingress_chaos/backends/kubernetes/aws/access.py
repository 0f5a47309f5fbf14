"""AWS access the standard way: boto3's credential chain (environment, shared files and
``--aws-profile``, web identity / IRSA, container and instance metadata) and endpoint chain
(``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2``, the config file), so
the plugin reaches whatever the AWS CLI would. boto3 is imported here only, and only when the
evidence is asked for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What the plugin needs to read (docs/aws-evidence.md has the IAM policy).
CALLS = ("DescribeTargetGroups", "DescribeTargetHealth", "DescribeTargetGroupAttributes",
         "DescribeLoadBalancers", "DescribeLoadBalancerAttributes", "DescribeTags")


@dataclass(frozen=True)
class Access:
    """An ELBv2 client, or why there is none (``off``: the header's one line)."""

    client: Any = None  # a botocore client for elbv2
    region: str = ""
    endpoint: str = ""
    off: str = ""


def open_access(evidence: str, profile: str, *, region: str | None = None,
                aws_profile: str | None = None) -> Access:
    """The ELBv2 client for ``evidence`` (auto, on, off) under the ingress ``profile``."""
    if evidence == "off":
        return Access(off="turned off (--ingress-aws-evidence off)")
    if evidence == "auto" and profile != "aws-alb":
        return Access(off=f"the {profile} ingress profile is not aws-alb "
                      "(--ingress-aws-evidence on asks for it anyway)")
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        return Access(off="boto3 is not installed (pip install 'pytest-ingress-chaos[aws]')")
    try:
        session = boto3.Session(profile_name=aws_profile, region_name=region)
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        return Access(off=f"no AWS credentials: {exc}")
    if credentials is None:
        return Access(off="no AWS credentials found (environment, AWS_PROFILE or "
                      "--aws-profile, web identity, instance metadata)")
    if session.region_name is None:
        return Access(off="no AWS region (--aws-region, AWS_REGION or AWS_DEFAULT_REGION, or "
                      "the profile's region)")
    # Our own back-off (poller.py) rather than botocore's retries: a throttled poll is skipped,
    # never repeated late.
    config = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"},
                                    connect_timeout=2, read_timeout=5)
    client = session.client("elbv2", config=config)
    return Access(client=client, region=session.region_name,
                  endpoint=str(client.meta.endpoint_url))
