"""The stand-in ALBs as AWS shows them: the Elastic Load Balancing v2 API on loopback, and the
controller's TargetGroupBinding objects in the cluster.

AWS itself cannot exist on these machines. So that the plugin's AWS evidence
(``backends/kubernetes/aws/``) runs here exactly as it does on EKS, through boto3, this module
answers the read-only calls it makes, in the API's Query protocol (form-encoded POST, XML
answers, ``docs/aws-evidence.md``): DescribeLoadBalancers, DescribeTargetGroups,
DescribeTargetHealth, DescribeTargetGroupAttributes, DescribeLoadBalancerAttributes and
DescribeTags, with the simulator's true target states (initial, healthy, unhealthy, draining,
with AWS's reason codes). Requests are not signature-checked: any credentials will do.

Each Ingress of the :class:`~.albcontroller.AlbController` is one load balancer with one target
group, named and tagged as the real controller names and tags them; in ip mode a target is its
pod's IP (``status.podIP``), in instance mode its node's instance ID (from ``spec.providerID``,
the node's name when it has none). For each, a ``TargetGroupBinding`` (the controller's CRD,
``elbv2.k8s.aws/v1beta1``, installed on start) is created in the Ingress's namespace, owned by
the Ingress, as the controller does.

:attr:`Elbv2Api.faults` makes a call fail as AWS would (throttling, AccessDenied, ...), for the
tests of what the plugin does then.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from ..backends.sim.dataplane import (
    DRAINING,
    HEALTHY,
    INITIAL,
    LOOPBACK,
    UNHEALTHY,
    Target,
    cancel_and_wait,
    http11,
)
from ..base.errors import BackendError
from .kubeapi import Key, KubeApi, KubeApiError, Obj

if TYPE_CHECKING:
    from .albcontroller import AlbController
    from .albcontroller import _IngressStack as IngressStack  # one Ingress's ALB

__all__ = ["ACCOUNT", "REGION", "Elbv2Api", "Fault", "aws_environment"]

log = logging.getLogger(__name__)

REGION = "us-east-1"
ACCOUNT = "000000000000"  # no account's: the stand-in's
CLUSTER = "ingress-local-cluster"
XMLNS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
TGB_GROUP, TGB_VERSION, TGB_PLURAL = "elbv2.k8s.aws", "v1beta1", "targetgroupbindings"
# The AWS state and reason code of each simulated state (docs/aws-evidence.md).
_HEALTH = {
    INITIAL: ("Elb.InitialHealthChecking", "Initial health checks in progress."),
    HEALTHY: (None, None),
    UNHEALTHY: ("Target.FailedHealthChecks", "Health checks failed"),
    DRAINING: ("Target.DeregistrationInProgress", "Target deregistration is in progress"),
}

# A minimal TargetGroupBinding CRD: the fields the plugin reads, the rest kept as given.
TGB_CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{TGB_PLURAL}.{TGB_GROUP}"},
    "spec": {
        "group": TGB_GROUP,
        "names": {"kind": "TargetGroupBinding", "listKind": "TargetGroupBindingList",
                  "plural": TGB_PLURAL, "singular": "targetgroupbinding"},
        "scope": "Namespaced",
        "versions": [{
            "name": TGB_VERSION, "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        }],
    },
}


@dataclass(frozen=True)
class Fault:
    """How a call fails: the HTTP status and AWS's error code and message."""

    status: int
    code: str
    message: str


THROTTLED = Fault(400, "Throttling", "Rate exceeded")


def aws_environment(endpoint: str) -> dict[str, str]:
    """What a client needs to reach the stand-in: its endpoint, the region, dummy
    credentials (the stand-in checks none)."""
    return {
        # botocore's per-service variable: "AWS_ENDPOINT_URL_" + the service ID in capitals.
        "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2": endpoint,
        "AWS_REGION": REGION,  # the other SDKs' and the CLI's
        "AWS_DEFAULT_REGION": REGION,  # botocore's
        "AWS_ACCESS_KEY_ID": "AKIAINGRESSLOCAL0000",
        "AWS_SECRET_ACCESS_KEY": "ingress-local-cluster-dummy-secret",
    }


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class _Names:
    """The ARNs and names of one Ingress's load balancer and target group, stable for as
    long as the Ingress exists (a rebuilt stack keeps them)."""

    load_balancer: str
    load_balancer_arn: str
    target_group: str
    target_group_arn: str
    binding: str

    @classmethod
    def of(cls, key: Key, service: str) -> _Names:
        namespace, name = key
        digest = _digest(namespace, name, service)
        lb = f"k8s-{namespace[:8]}-{name[:8]}-{digest[:10]}"
        tg = f"k8s-{namespace[:8]}-{service[:8]}-{digest[10:20]}"
        prefix = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}"
        return cls(lb, f"{prefix}:loadbalancer/app/{lb}/{digest[20:36]}",
                   tg, f"{prefix}:targetgroup/{tg}/{digest[36:52]}", tg)


class Elbv2Api:
    """The ELBv2 endpoint for one controller's ALBs, and its TargetGroupBindings. Runs on the
    controller's event loop; :meth:`start` before the controller's first reconcile."""

    def __init__(self, controller: AlbController, api: KubeApi) -> None:
        self.controller = controller
        self.api = api
        self.port = 0
        #: Action -> how it fails, until removed (tests set it from any thread).
        self.faults: dict[str, Fault] = {}
        self.calls: dict[str, int] = {}  # action -> how often it was asked
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._pod_ips: dict[tuple[str, str], str] = {}  # (namespace, pod) -> its last IP
        self._actions: Mapping[str, Callable[[dict[str, str]], str]] = {
            "DescribeLoadBalancers": self._load_balancers,
            "DescribeTargetGroups": self._target_groups,
            "DescribeTargetHealth": self._target_health,
            "DescribeTargetGroupAttributes": self._target_group_attributes,
            "DescribeLoadBalancerAttributes": self._load_balancer_attributes,
            "DescribeTags": self._tags,
        }

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def start(self) -> None:
        await self._install_crd()
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("ELBv2 API stand-in at %s", self.endpoint)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await cancel_and_wait(list(self._connections))
            await self._server.wait_closed()

    # --- TargetGroupBindings --------------------------------------------------------------------

    async def _install_crd(self) -> None:
        try:
            await self.api.request("POST", "/apis/apiextensions.k8s.io/v1/"
                                   "customresourcedefinitions", body=TGB_CRD)
        except KubeApiError as exc:
            if exc.status != 409:
                raise
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{TGB_PLURAL}.{TGB_GROUP}"
        for _ in range(200):  # until the API serves the new kind (Established), 10 s at most
            crd = await self.api.get(path)
            conditions = (crd.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in conditions):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"CRD {TGB_PLURAL}.{TGB_GROUP} not established within 10 s")

    async def bind(self, key: Key, stack: IngressStack, ingress: Obj) -> None:
        """Create the stack's TargetGroupBinding, owned by its Ingress (idempotent)."""
        namespace, name = key
        names = _Names.of(key, stack.config.service)
        body = {
            "apiVersion": f"{TGB_GROUP}/{TGB_VERSION}", "kind": "TargetGroupBinding",
            "metadata": {
                "name": names.binding, "namespace": namespace,
                "labels": {"ingress.k8s.aws/stack-name": name,
                           "ingress.k8s.aws/stack-namespace": namespace},
                "ownerReferences": [{
                    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": name,
                    "uid": ingress["metadata"]["uid"], "controller": True,
                    "blockOwnerDeletion": True}],
            },
            "spec": {
                "serviceRef": {"name": stack.config.service, "port": self._service_port(stack)},
                "targetGroupARN": names.target_group_arn,
                "targetType": stack.config.mode,
            },
        }
        try:
            await self.api.request(
                "POST", f"/apis/{TGB_GROUP}/{TGB_VERSION}/namespaces/{namespace}/{TGB_PLURAL}",
                body=body)
        except KubeApiError as exc:
            if exc.status != 409:
                raise

    def _service_port(self, stack: IngressStack) -> int | str:
        service = self.controller.service(stack.config.namespace, stack.config.service) or {}
        ports = (service.get("spec") or {}).get("ports") or [{}]
        port: int | str = ports[0].get("port") or 80
        return port

    # --- the Query protocol ---------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests = http11.RequestReader(reader)
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while (request := await requests.next()) is not None:
                status, body = self._answer(request)
                writer.write(http11.encode(
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}",
                    [("content-type", "text/xml"), ("x-amzn-requestid", str(uuid.uuid4()))],
                    body.encode()))
                await writer.drain()
                if not request.keep_alive:
                    break
        except (http11.HTTPParseError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    def _answer(self, request: http11.Message) -> tuple[int, str]:
        params = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        action = params.get("Action", "")
        self.calls[action] = self.calls.get(action, 0) + 1
        handler = self._actions.get(action)
        if handler is None:
            return _error(Fault(400, "InvalidAction", f"The action {action!r} is not valid "
                                "for this stand-in (read-only Describe* calls only)"))
        fault = self.faults.get(action)
        if fault is not None:
            return _error(fault)
        try:
            result = handler(params)
        except Elbv2NotFound as exc:
            return _error(Fault(400, exc.code, str(exc)))
        return 200, (f'<{action}Response xmlns="{XMLNS}"><{action}Result>{result}'
                     f'</{action}Result><ResponseMetadata><RequestId>{uuid.uuid4()}'
                     f'</RequestId></ResponseMetadata></{action}Response>')

    # --- what there is --------------------------------------------------------------------------

    def _stacks(self) -> list[tuple[Key, IngressStack, _Names]]:
        return [(key, stack, _Names.of(key, stack.config.service))
                for key, stack in list(self.controller.stacks.items())]

    def _stack_by_group(self, arn: str) -> tuple[Key, IngressStack, _Names]:
        for found in self._stacks():
            if found[2].target_group_arn == arn:
                return found
        raise Elbv2NotFound("TargetGroupNotFound", f"Target groups '{arn}' not found")

    def _stack_by_balancer(self, arn: str) -> tuple[Key, IngressStack, _Names]:
        for found in self._stacks():
            if found[2].load_balancer_arn == arn:
                return found
        raise Elbv2NotFound("LoadBalancerNotFound", f"Load balancers '{arn}' not found")

    def _load_balancers(self, params: dict[str, str]) -> str:
        wanted = _members(params, "LoadBalancerArns")
        names = _members(params, "Names")
        found = [s for s in self._stacks()
                 if (not wanted or s[2].load_balancer_arn in wanted)
                 and (not names or s[2].load_balancer in names)]
        for arn in wanted:
            if arn not in {s[2].load_balancer_arn for s in found}:
                raise Elbv2NotFound("LoadBalancerNotFound", f"Load balancers '{arn}' not found")
        members = "".join(
            f"<member><LoadBalancerArn>{n.load_balancer_arn}</LoadBalancerArn>"
            f"<DNSName>{LOOPBACK}</DNSName><LoadBalancerName>{n.load_balancer}"
            "</LoadBalancerName><Scheme>internet-facing</Scheme><VpcId>vpc-local</VpcId>"
            "<State><Code>active</Code></State><Type>application</Type>"
            "<IpAddressType>ipv4</IpAddressType></member>"
            for _, _, n in found)
        return f"<LoadBalancers>{members}</LoadBalancers>"

    def _target_groups(self, params: dict[str, str]) -> str:
        wanted = _members(params, "TargetGroupArns")
        balancer = params.get("LoadBalancerArn")
        found = [s for s in self._stacks()
                 if (not wanted or s[2].target_group_arn in wanted)
                 and (balancer is None or s[2].load_balancer_arn == balancer)]
        for arn in wanted:
            if arn not in {s[2].target_group_arn for s in found}:
                raise Elbv2NotFound("TargetGroupNotFound", f"Target groups '{arn}' not found")
        members = []
        for _, stack, names in found:
            t = stack.timings
            members.append(
                f"<member><TargetGroupArn>{names.target_group_arn}</TargetGroupArn>"
                f"<TargetGroupName>{names.target_group}</TargetGroupName>"
                "<Protocol>HTTP</Protocol><Port>80</Port><VpcId>vpc-local</VpcId>"
                "<HealthCheckProtocol>HTTP</HealthCheckProtocol>"
                "<HealthCheckPort>traffic-port</HealthCheckPort>"
                "<HealthCheckEnabled>true</HealthCheckEnabled>"
                f"<HealthCheckIntervalSeconds>{round(t.health_check_interval)}"
                "</HealthCheckIntervalSeconds>"
                f"<HealthCheckTimeoutSeconds>{round(t.health_check_timeout)}"
                "</HealthCheckTimeoutSeconds>"
                f"<HealthyThresholdCount>{t.healthy_threshold}</HealthyThresholdCount>"
                f"<UnhealthyThresholdCount>{t.unhealthy_threshold}</UnhealthyThresholdCount>"
                f"<HealthCheckPath>{escape(stack.config.health_check_path)}</HealthCheckPath>"
                "<Matcher><HttpCode>200</HttpCode></Matcher>"
                f"<LoadBalancerArns><member>{names.load_balancer_arn}</member>"
                f"</LoadBalancerArns><TargetType>{stack.config.mode}</TargetType>"
                "<ProtocolVersion>HTTP1</ProtocolVersion></member>")
        return f"<TargetGroups>{''.join(members)}</TargetGroups>"

    def _target_health(self, params: dict[str, str]) -> str:
        _, stack, _ = self._stack_by_group(params.get("TargetGroupArn", ""))
        members = []
        for target in list(stack.group.targets.values()):
            target_id, port = self._target_id(stack, target)
            reason, description = _HEALTH.get(target.state, (None, None))
            health = f"<State>{target.state}</State>"
            if reason is not None:
                health += f"<Reason>{reason}</Reason><Description>{description}</Description>"
            members.append(
                f"<member><Target><Id>{escape(target_id)}</Id><Port>{port}</Port></Target>"
                f"<HealthCheckPort>{port}</HealthCheckPort>"
                f"<TargetHealth>{health}</TargetHealth></member>")
        return f"<TargetHealthDescriptions>{''.join(members)}</TargetHealthDescriptions>"

    def _target_id(self, stack: IngressStack, target: Target) -> tuple[str, int]:
        """AWS's name of a target: its pod's IP (ip) or its node's instance ID (instance), and
        its port. On real nodes the target's address is already the pod's IP (ip) or the node's
        NodePort (instance); the kubelet stand-in's are loopback addresses, so they are looked
        up in the pod's status and the Service."""
        namespace = stack.config.namespace
        if self.controller.real_nodes:
            if stack.config.mode == "ip":
                return target.host, target.port
            return self._instance_id(target.name), target.port
        service = self.controller.service(namespace, stack.config.service) or {}
        ports = (service.get("spec") or {}).get("ports") or [{}]
        if stack.config.mode == "ip":
            key = (namespace, target.name)
            pod = self.controller.pods.items.get(key)
            ip = str(((pod or {}).get("status") or {}).get("podIP") or "")
            if ip:
                self._pod_ips[key] = ip
            # A deleted pod's target keeps the IP it was registered with.
            port = ports[0].get("targetPort")
            return self._pod_ips.get(key, target.name), port if isinstance(port, int) else 8080
        return self._instance_id(target.name), int(ports[0].get("nodePort") or 0)

    def _instance_id(self, node_name: str) -> str:
        """The node's instance ID: the last part of its ``spec.providerID``, else its name."""
        node = self.controller.nodes.items.get(("", node_name)) or {}
        provider = str((node.get("spec") or {}).get("providerID") or "")
        return provider.rsplit("/", 1)[-1] or node_name

    def _target_group_attributes(self, params: dict[str, str]) -> str:
        _, stack, _ = self._stack_by_group(params.get("TargetGroupArn", ""))
        return _attributes({
            "deregistration_delay.timeout_seconds": f"{stack.timings.deregistration_delay:g}",
            "load_balancing.algorithm.type": stack.config.algorithm,
            "slow_start.duration_seconds": "0",
            "stickiness.enabled": "false",
        })

    def _load_balancer_attributes(self, params: dict[str, str]) -> str:
        _, stack, _ = self._stack_by_balancer(params.get("LoadBalancerArn", ""))
        return _attributes({
            "idle_timeout.timeout_seconds": f"{stack.timings.idle_timeout:g}",
            "routing.http2.enabled": "true",
        })

    def _tags(self, params: dict[str, str]) -> str:
        members = []
        for arn in _members(params, "ResourceArns"):
            for (namespace, name), stack, names in self._stacks():
                tags = {"elbv2.k8s.aws/cluster": CLUSTER,
                        "ingress.k8s.aws/stack": f"{namespace}/{name}"}
                if arn == names.target_group_arn:
                    tags["ingress.k8s.aws/resource"] = (
                        f"{namespace}/{name}-{stack.config.service}:"
                        f"{self._service_port(stack)}")
                elif arn == names.load_balancer_arn:
                    tags["ingress.k8s.aws/resource"] = "LoadBalancer"
                else:
                    continue
                pairs = "".join(f"<member><Key>{k}</Key><Value>{escape(v)}</Value></member>"
                                for k, v in tags.items())
                members.append(f"<member><ResourceArn>{arn}</ResourceArn><Tags>{pairs}</Tags>"
                               "</member>")
        return f"<TagDescriptions>{''.join(members)}</TagDescriptions>"


class Elbv2NotFound(BackendError):
    """A call named a load balancer or target group the stand-in does not have; answered as
    AWS answers it (``code``: TargetGroupNotFound, LoadBalancerNotFound)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _members(params: dict[str, str], name: str) -> list[str]:
    """A list parameter of the Query protocol: ``Name.member.1``, ``Name.member.2``, ..."""
    prefix = f"{name}.member."
    numbered = sorted((int(key[len(prefix):]), value) for key, value in params.items()
                      if key.startswith(prefix) and key[len(prefix):].isdigit())
    return [value for _, value in numbered]


def _attributes(values: Mapping[str, str]) -> str:
    members = "".join(f"<member><Key>{k}</Key><Value>{escape(v)}</Value></member>"
                      for k, v in values.items())
    return f"<Attributes>{members}</Attributes>"


def _error(fault: Fault) -> tuple[int, str]:
    return fault.status, (
        f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type><Code>{fault.code}</Code>'
        f"<Message>{escape(fault.message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
