"""One test's AWS evidence: find its target group, read the target group's and the load
balancer's attributes once (and say where they differ from what the test's markers asked
for), poll target health until the service is torn down. Nothing here raises: what goes wrong
is a line in :attr:`Observation.lines` and, while polling, an ``aws.gap`` event."""

from __future__ import annotations

import threading
import time
from typing import Any

from ....base.specs import AlbSpec
from ....base.units import format_seconds
from ..apis import ApiError, KubeApi
from . import discovery, faults
from .access import Access
from .poller import DEFAULT_INTERVAL, Emit, TargetHealthPoller

SOURCE = "aws"
DISCOVERY_TIMEOUT = 20.0  # wall seconds for the controller to create the target group


class Observation:
    """The AWS view of one service's target group, from :meth:`start` to :meth:`stop`."""

    def __init__(self, access: Access, api: KubeApi, namespace: str, name: str, mode: str,
                 alb: AlbSpec, emit: Emit, *, interval: float = DEFAULT_INTERVAL,
                 discovery_timeout: float = DISCOVERY_TIMEOUT) -> None:
        self.access, self.api = access, api
        self.namespace, self.name, self.mode, self.alb = namespace, name, mode, alb
        self.emit = emit
        self.interval = interval
        self.discovery_timeout = discovery_timeout
        self.lines: list[str] = []  # for the report header
        self.group: discovery.TargetGroup | None = None
        self.poller: TargetHealthPoller | None = None
        self._names: dict[str, str] = {}  # target Id -> pod or node
        self._names_read = 0.0
        self._lock = threading.Lock()

    def start(self) -> None:
        client = self.access.client
        try:
            self.group = discovery.find(self.api, client, self.namespace, self.name,
                                        self.name, self.discovery_timeout)
        except discovery.TargetGroupNotFound as exc:
            self._say(f"the ALB's own view is off for this test: {exc}")
            return
        except Exception as exc:  # botocore's errors: no data, one line
            self._say(f"the ALB's own view is off for this test: "
                      f"{faults.describe(_call_of(exc), exc)}")
            return
        name = self.group.description.get("TargetGroupName") or self.group.arn
        self._say(f"target group {name} ({self.group.target_type}, found by "
                  f"{self.group.found_by})")
        self._read_attributes(client, self.group)
        self._read_names()
        self.poller = TargetHealthPoller(client, self.group.arn, self.emit, self.subject,
                                         interval=self.interval)
        self.poller.start()

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()  # its faults were aws.gap events while it ran

    def _say(self, line: str) -> None:
        self.lines.append(f"AWS: {line}")

    # --- attributes ----------------------------------------------------------------------

    def _read_attributes(self, client: Any, group: discovery.TargetGroup) -> None:
        found: dict[str, float] = {}
        described = group.description
        for key, field in (("HealthCheckIntervalSeconds", "healthcheck_interval"),
                           ("HealthCheckTimeoutSeconds", "healthcheck_timeout"),
                           ("HealthyThresholdCount", "healthy_threshold"),
                           ("UnhealthyThresholdCount", "unhealthy_threshold")):
            if key in described:
                found[field] = float(described[key])
        try:
            attributes = _pairs(client.describe_target_group_attributes(
                TargetGroupArn=group.arn)["Attributes"])
            if "deregistration_delay.timeout_seconds" in attributes:
                found["deregistration_delay"] = float(
                    attributes["deregistration_delay.timeout_seconds"])
            for arn in group.load_balancer_arns[:1]:
                balancer = _pairs(client.describe_load_balancer_attributes(
                    LoadBalancerArn=arn)["Attributes"])
                if "idle_timeout.timeout_seconds" in balancer:
                    found["idle_timeout"] = float(balancer["idle_timeout.timeout_seconds"])
        except Exception as exc:  # botocore's errors: the figures we have, and one line
            self._say(faults.describe(_call_of(exc), exc))
        shown = [f"deregistration delay {format_seconds(found['deregistration_delay'])}"
                 if "deregistration_delay" in found else "",
                 f"health check {described.get('HealthCheckPath', '?')} every "
                 f"{format_seconds(found['healthcheck_interval'])}, timeout "
                 f"{format_seconds(found['healthcheck_timeout'])}, healthy after "
                 f"{found['healthy_threshold']:g}, unhealthy after "
                 f"{found['unhealthy_threshold']:g}" if "healthcheck_interval" in found else "",
                 f"idle timeout {format_seconds(found['idle_timeout'])}"
                 if "idle_timeout" in found else ""]
        self._say("attributes: " + ", ".join(part for part in shown if part))
        for field, value in found.items():
            asked = float(getattr(self.alb, field))
            if abs(asked - value) >= 1:  # AWS takes whole seconds
                self._say(f"{field.replace('_', ' ')} is {value:g} in AWS, the test's alb "
                          f"marker asked for {asked:g}: the controller did not apply it")

    # --- who is behind a target ----------------------------------------------------------

    def subject(self, target_id: str) -> str:
        """The pod (ip: by its IP) or node (instance: by its provider ID) behind a target;
        the Id itself when neither is known."""
        with self._lock:
            if target_id not in self._names and time.monotonic() - self._names_read > 1.0:
                self._read_names()
            return self._names.get(target_id, target_id)

    def _read_names(self) -> None:
        self._names_read = time.monotonic()
        try:
            if self.mode == "ip":
                pods = self.api.call(f"list pods in namespace {self.namespace}",
                                     self.api.core.list_namespaced_pod, self.namespace)
                for pod in pods.get("items") or []:
                    ip = (pod.get("status") or {}).get("podIP")
                    if ip:  # kept when the pod goes: its target outlives it
                        self._names[str(ip)] = str(pod["metadata"]["name"])
            else:
                nodes = self.api.call("list nodes", self.api.core.list_node)
                for node in nodes.get("items") or []:
                    name = str(node["metadata"]["name"])
                    provider = str((node.get("spec") or {}).get("providerID") or "")
                    self._names[provider.rsplit("/", 1)[-1] or name] = name
        except ApiError:
            pass  # the Id is shown instead of the name; the next unknown Id tries again


def _pairs(attributes: list[dict[str, str]]) -> dict[str, str]:
    return {item["Key"]: item["Value"] for item in attributes}


def _call_of(exc: BaseException) -> str:
    """The API call a botocore ClientError names (its operation_name)."""
    return str(getattr(exc, "operation_name", "") or "an ELBv2 call")
