"""Which target group is the test's: the AWS Load Balancer Controller's TargetGroupBinding for
the Service in the test's namespace (``spec.serviceRef``, ``spec.targetGroupARN``), else the
tags the controller puts on what it creates (``elbv2.k8s.aws/cluster``, ``ingress.k8s.aws/stack``
= namespace/ingress, ``ingress.k8s.aws/resource`` = namespace/ingress-service:port)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ....base.errors import BackendError
from ..apis import ApiError, JsonDict, KubeApi

TGB = ("elbv2.k8s.aws", "v1beta1", "targetgroupbindings")
_TAGS_PER_CALL = 20  # DescribeTags takes at most 20 ARNs


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    target_type: str  # ip or instance
    load_balancer_arns: tuple[str, ...]
    found_by: str  # how: "TargetGroupBinding <name>" or "tags"
    description: JsonDict  # DescribeTargetGroups' entry (health check settings)


class TargetGroupNotFound(BackendError):
    """No target group for the service; the message says what was seen. The evidence turns it
    into one line of the report, never a failure of the test."""


def find(api: KubeApi, client: Any, namespace: str, ingress: str, service: str,
         timeout: float) -> TargetGroup:
    """The service's target group, waiting up to ``timeout`` wall seconds for the controller
    to create it."""
    deadline = time.monotonic() + timeout
    while True:
        seen: list[str] = []
        arn, how = _from_binding(api, namespace, service, seen)
        if arn is None:
            arn, how = _from_tags(client, namespace, ingress, service, seen)
        if arn is not None:
            (group,) = client.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
            return TargetGroup(arn, str(group.get("TargetType", "")),
                               tuple(group.get("LoadBalancerArns") or ()), how, group)
        if time.monotonic() > deadline:
            raise TargetGroupNotFound(f"no target group for service {service} in namespace "
                                      f"{namespace} within {timeout:g} s: {'; '.join(seen)}")
        time.sleep(0.5)


def _from_binding(api: KubeApi, namespace: str, service: str, seen: list[str]
                  ) -> tuple[str | None, str]:
    try:
        listed = api.call(f"list {TGB[2]} in namespace {namespace}",
                          api.custom.list_namespaced_custom_object, *TGB[:2], namespace, TGB[2])
    except ApiError as exc:
        seen.append(f"TargetGroupBindings not readable ({exc}; deploy/rbac.yaml)")
        return None, ""
    names = []
    for binding in listed.get("items") or []:
        spec = binding.get("spec") or {}
        names.append(str(binding["metadata"]["name"]))
        if (spec.get("serviceRef") or {}).get("name") == service and spec.get("targetGroupARN"):
            return str(spec["targetGroupARN"]), f"TargetGroupBinding {names[-1]}"
    seen.append(f"TargetGroupBindings in {namespace}: {', '.join(names) or 'none'}, none for "
                f"service {service}")
    return None, ""


def _from_tags(client: Any, namespace: str, ingress: str, service: str, seen: list[str]
               ) -> tuple[str | None, str]:
    arns = [group["TargetGroupArn"]
            for page in client.get_paginator("describe_target_groups").paginate()
            for group in page["TargetGroups"]]
    resource = f"{namespace}/{ingress}-{service}:"
    for start in range(0, len(arns), _TAGS_PER_CALL):
        described = client.describe_tags(ResourceArns=arns[start:start + _TAGS_PER_CALL])
        for entry in described["TagDescriptions"]:
            tags = {tag["Key"]: tag["Value"] for tag in entry.get("Tags") or []}
            if tags.get("ingress.k8s.aws/resource", "").startswith(resource):
                return str(entry["ResourceArn"]), "tags"
    seen.append(f"no target group of the {len(arns)} in the region is tagged "
                f"ingress.k8s.aws/resource={resource}<port>")
    return None, ""
