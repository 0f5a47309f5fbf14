"""The simulated AWS Application Load Balancer: one listener, one target group.

Target type ``ip`` registers pod addresses; the AWS Load Balancer Controller does that from the
endpoints after a lag (``registration_lag``/``deregistration_lag``), so for about ten seconds
after a pod dies the ALB keeps sending to its address. Target type ``instance`` registers every
node's NodePort; kube-proxy on the node picks a ready pod, so a dead pod is routed around as
soon as kube-proxy syncs. Which nodes stay registered follows the controller's version
(nodepolicy.py): a node it keeps after its instance is gone takes requests it cannot answer.

The ALB routes each request round robin to a healthy target, fails open to every registered
target when none is healthy, and answers for itself as an ALB does: 503 with no registered
target, 502 when the target refuses or resets, 504 when no connection is made within the
connect timeout or no response comes within the idle timeout. Connections to targets are kept
alive and reused in ip mode (see upstream.py).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from ...base.events import EventKind
from . import http11
from .cluster import LOOPBACK, Emit, Node, Pod, Timers
from .listener import TrackedServer
from .nodepolicy import EXCLUDE_LABEL, NodePolicy, NodeView
from .tasks import cancel_and_wait
from .timings import SimTimings
from .upstream import UpstreamConnection, UpstreamPool

# Target states, as DescribeTargetHealth names them.
INITIAL, HEALTHY, UNHEALTHY, DRAINING = "initial", "healthy", "unhealthy", "draining"

# An ALB spans at least two Availability Zones with a node in each; DNS spreads clients'
# connections over the nodes, and each node keeps its own connections to the targets.
ALB_NODES = 2

_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
# A listener rule's http-header conditions: header name (lower case) -> the values it accepts
# (ALB: any of them, compared case-insensitively; "*" and "?" wildcards are not modelled).
HeaderConditions = Mapping[str, tuple[str, ...]]


@dataclass(eq=False)
class Target:
    name: str  # the pod or node behind it
    host: str
    port: int
    state: str = INITIAL
    passes: int = 0  # consecutive passed health checks
    failures: int = 0  # consecutive failed health checks
    outstanding: int = 0  # requests in flight to this target

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port} ({self.name})"


class TargetGroup:
    def __init__(self, timings: SimTimings, emit: Emit, algorithm: str = "round_robin",
                 health_check_path: str = "/") -> None:
        self.timings = timings
        self.emit = emit
        self.algorithm = algorithm
        self.health_check_path = health_check_path
        self.targets: dict[tuple[str, int], Target] = {}
        self.on_healthy: list[Callable[[Target], None]] = []
        self.on_removed: list[Callable[[Target], None]] = []
        self._next = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # --- membership ---------------------------------------------------------------------

    def register(self, target: Target, *, steady: str | None = None) -> None:
        """Add a target. ``steady`` (HEALTHY or UNHEALTHY) starts it in the state an ingress
        that has been serving for a while would show, which is where every test starts;
        otherwise it starts ``initial`` and is checked at once."""
        key = (target.host, target.port)
        if key in self.targets and self.targets[key].state != DRAINING:
            return
        target.state = steady or INITIAL
        self.targets[key] = target
        self.emit("alb", EventKind.TARGET_REGISTERED, target.name,
                  f"target {target.label} registered ({target.state})")
        self._start(self._health_checks(target))

    def deregister(self, key: tuple[str, int], reason: str | None = None) -> None:
        target = self.targets.get(key)
        if target is None or target.state == DRAINING:
            return
        target.state = DRAINING
        delay = self.timings.deregistration_delay
        because = f" ({reason})" if reason else ""
        self.emit("alb", EventKind.TARGET_DRAINING, target.name,
                  f"target {target.label} deregistered{because}: draining for {delay:g}s, "
                  "no new requests")
        self._start(self._remove_after_draining(key, target))

    async def _remove_after_draining(self, key: tuple[str, int], target: Target) -> None:
        await asyncio.sleep(self.timings.wall(self.timings.deregistration_delay))
        if self.targets.get(key) is target:
            del self.targets[key]
            self.emit("alb", EventKind.TARGET_REMOVED, target.name,
                      f"target {target.label} removed")
            for callback in self.on_removed:
                callback(target)

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await cancel_and_wait(list(self._tasks))

    # --- routing --------------------------------------------------------------------------

    def pick(self) -> Target | int:
        """A healthy target (round robin or least outstanding requests); when none is healthy,
        fail open to the unhealthy ones. With neither, the ALB's own status: 503 when no
        target is registered, 502 when only ``initial`` or draining ones are ([1124])."""
        candidates = [t for t in self.targets.values() if t.state == HEALTHY] or \
            [t for t in self.targets.values() if t.state == UNHEALTHY]
        if not candidates:
            registered = any(t.state != DRAINING for t in self.targets.values())
            return 502 if registered else 503
        self._next += 1
        if self.algorithm == "least_outstanding_requests":
            # Ties go round robin, as ALB does among equally loaded targets.
            fewest = min(t.outstanding for t in candidates)
            candidates = [t for t in candidates if t.outstanding == fewest]
        return candidates[self._next % len(candidates)]

    # --- health checks --------------------------------------------------------------------

    async def _health_checks(self, target: Target) -> None:
        # A new target stays "initial" until its first check, one interval after registration.
        # Checks start every interval, however long the previous one took to time out.
        loop = asyncio.get_running_loop()
        interval = self.timings.wall(self.timings.health_check_interval)
        next_check = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_check - loop.time()))
            if target.state == DRAINING or (target.host, target.port) not in self.targets:
                return
            next_check += interval
            self._record_check(target, await self._check(target))

    async def _check(self, target: Target) -> bool:
        timeout = self.timings.wall(self.timings.health_check_timeout)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port), timeout)
        except (OSError, asyncio.TimeoutError):
            return False
        try:
            writer.write(f"GET {self.health_check_path} HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
                         "User-Agent: ELB-HealthChecker/2.0\r\nConnection: close\r\n\r\n"
                         .encode())
            status = await asyncio.wait_for(reader.readline(), timeout)
            return status.split(b" ")[1:2] == [b"200"]
        except (OSError, asyncio.TimeoutError):
            return False
        finally:
            writer.close()

    def _record_check(self, target: Target, passed: bool) -> None:
        if target.state == DRAINING:
            return
        if passed:
            target.passes, target.failures = target.passes + 1, 0
            # docs/alb-facts.md: a new target needs one passing check to leave "initial".
            needed = 1 if target.state == INITIAL else self.timings.healthy_threshold
            new_state = HEALTHY if target.passes >= needed else target.state
        else:
            target.passes, target.failures = 0, target.failures + 1
            failing = target.failures >= self.timings.unhealthy_threshold
            new_state = UNHEALTHY if failing else target.state
        if new_state != target.state:
            target.state = new_state
            count = target.passes if passed else target.failures
            checks = (f"{'passed' if passed else 'failed'} {count} health check"
                      + ("s in a row" if count > 1 else ""))
            kind = EventKind.TARGET_HEALTHY if new_state == HEALTHY else EventKind.TARGET_UNHEALTHY
            self.emit("alb", kind, target.name,
                      f"target {target.label} is {new_state} ({checks})")
            if new_state == HEALTHY:
                for callback in self.on_healthy:
                    callback(target)


class IpTargetController:
    """The AWS Load Balancer Controller in ip mode: each endpoints change is reconciled a lag
    later (``registration_lag`` for new pods, ``deregistration_lag`` for gone ones, each drawn
    with jitter), against the endpoints and the target group as they are then, like the real
    controller reading its informer cache. Pods held back by their readiness gate are
    registered too; the gate turns true once their target is healthy."""

    def __init__(self, group: TargetGroup, timings: SimTimings, timers: Timers,
                 rng: random.Random, endpoints: Callable[[], list[Pod]],
                 on_gate: Callable[[tuple[str, int]], None]) -> None:
        self.group = group
        self.timings = timings
        self.timers = timers
        self.rng = rng
        self.endpoints = endpoints  # Ready and gated pods, now
        group.on_healthy.append(lambda target: on_gate((target.host, target.port)))

    def sync_now(self, ready: list[Pod]) -> None:
        for pod in ready:
            self.group.register(Target(pod.name, *pod.address), steady=HEALTHY)

    def on_endpoints(self, ready: list[Pod], gated: list[Pod]) -> None:
        timings = self.timings
        self.timers.later(timings.controller_lag(timings.registration_lag, self.rng),
                          self._register_missing)
        self.timers.later(timings.controller_lag(timings.deregistration_lag, self.rng),
                          self._deregister_gone)

    def _registered(self) -> set[tuple[str, int]]:
        return {key for key, target in self.group.targets.items() if target.state != DRAINING}

    def _register_missing(self) -> None:
        registered = self._registered()
        for pod in self.endpoints():
            if pod.address not in registered:
                self.group.register(Target(pod.name, *pod.address))

    def _deregister_gone(self) -> None:
        wanted = {pod.address for pod in self.endpoints()}
        for key in self._registered() - wanted:
            self.group.deregister(key)


class InstanceTargetController:
    """The AWS Load Balancer Controller in instance mode: the targets are the nodes' NodePorts.
    Every test starts with each node registered. A change to a node that the API shows (a
    cordon, a label, NotReady) is reconciled a deregistration lag later, against the nodes as
    they are then, under the rules of the controller's version (nodepolicy.py). A terminated
    instance is no change the API shows until its node turns NotReady: until then the target
    stays, and says so when it stops answering while the ALB still sends it requests."""

    def __init__(self, group: TargetGroup, timings: SimTimings, timers: Timers,
                 rng: random.Random, policy: NodePolicy, nodes: dict[str, Node],
                 node_ports: dict[str, int]) -> None:
        self.group = group
        self.timings = timings
        self.timers = timers
        self.rng = rng
        self.policy = policy
        self.nodes = nodes
        self.node_ports = node_ports  # node -> its NodePort on loopback

    def sync_now(self, states: dict[str, str]) -> None:
        """Register every node in the state an ingress serving for a while shows."""
        for name, port in self.node_ports.items():
            self.group.register(Target(name, LOOPBACK, port), steady=states[name])

    def on_node(self, node: Node) -> None:
        if node.gone:
            self._report_unreachable(node)
        self.timers.later(self.timings.controller_lag(self.timings.deregistration_lag,
                                                      self.rng), self._reconcile)

    @staticmethod
    def _view(node: Node) -> NodeView:
        return NodeView(node.name, node.unschedulable, EXCLUDE_LABEL in node.labels,
                        node.ready)

    def _reconcile(self) -> None:
        for name, port in self.node_ports.items():
            reason = self.policy.drop_reason(self._view(self.nodes[name]))
            if reason is not None:
                self.group.deregister((LOOPBACK, port), reason)

    def _report_unreachable(self, node: Node) -> None:
        target = self.group.targets.get((LOOPBACK, self.node_ports[node.name]))
        if target is None or target.state != HEALTHY:
            return  # draining, or unhealthy already: the ALB sends it no new requests
        timings = self.timings
        view = self._view(node)
        if not view.excluded:
            advice = (f" (to avoid this: drain_node(exclude_from_load_balancers=True), which "
                      f"labels the node {EXCLUDE_LABEL} and waits for its deregistration "
                      "before the drain)")
        elif self.policy.honours_exclude_label:
            advice = " (the wait after the exclusion was shorter than the controller's lag)"
        else:
            advice = ""
        self.group.emit(
            "alb", EventKind.TARGET_UNREACHABLE, node.name,
            f"target {target.label} refuses connections, but the ALB still counts it "
            f"healthy: requests sent to it get 502 until {timings.unhealthy_threshold} "
            f"failed health checks ({timings.health_check_interval:g}s apart) mark it "
            f"unhealthy. It is still registered: {self.policy.keep_reason(view)}{advice}")


class ALBListener:
    """The ALB's HTTP listener: a reverse proxy in front of the target group, on
    ``ALB_NODES`` nodes that share the target group and each have their own connection pool."""

    def __init__(self, group: TargetGroup, timings: SimTimings, *, keep_alive: bool,
                 conditions: HeaderConditions | None = None) -> None:
        """``keep_alive``: reuse connections to targets (ip targets; see upstream.py).
        ``conditions``: the rule's http-header conditions; a request that does not meet them
        gets the listener's default action, as on an ALB whose IngressGroup has no default
        backend: a fixed 404 (docs/alb-facts.md §11)."""
        self.group = group
        self.timings = timings
        self.conditions = {name.lower(): tuple(v.lower() for v in values)
                           for name, values in (conditions or {}).items()}
        self.server = TrackedServer(self._serve, limit=http11.MAX_HEAD)
        self.pools = [UpstreamPool(timings.wall(timings.idle_timeout), timings.target_rtt,
                                   reuse=keep_alive)
                      for _ in range(ALB_NODES)]
        self._node_turn = itertools.cycle(self.pools)  # DNS round robin over the nodes
        # After the deregistration delay the ALB closes what it still holds to the target.
        group.on_removed.append(self._forget)

    def _forget(self, target: Target) -> None:
        for pool in self.pools:
            pool.discard((target.host, target.port))

    async def start(self, port: int = 0) -> int:
        """Listen on ``port`` (0: an ephemeral one); returns the port."""
        return await self.server.start(port)

    async def close(self) -> None:
        await self.server.close()
        for pool in self.pools:
            pool.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pool = next(self._node_turn)
        requests = http11.RequestReader(reader)
        try:
            while True:
                try:
                    request = await requests.next()
                except (asyncio.IncompleteReadError, http11.HTTPParseError):
                    return
                if request is None:
                    return
                response = await self._forward(pool, request)
                keep_alive = request.keep_alive
                response_headers = [*response[1], ("connection",
                                                   "keep-alive" if keep_alive else "close")]
                writer.write(http11.encode(response[0], response_headers, response[2],
                                           send_body=request.method != "HEAD"))
                await writer.drain()
                if not keep_alive:
                    return
        except ConnectionError:
            return
        finally:
            writer.close()

    def _matches(self, request: http11.Message) -> bool:
        return all(request.get(name).lower() in values
                   for name, values in self.conditions.items())

    async def _forward(self, pool: UpstreamPool, request: http11.Message
                       ) -> tuple[str, list[tuple[str, str]], bytes]:
        if not self._matches(request):
            return _NO_RULE
        target = self.group.pick()
        if isinstance(target, int):
            return _alb_error(target)
        target.outstanding += 1
        try:
            return await self._exchange(pool, target, request)
        finally:
            target.outstanding -= 1

    async def _exchange(self, pool: UpstreamPool, target: Target, request: http11.Message
                        ) -> tuple[str, list[tuple[str, str]], bytes]:
        timings = self.timings
        address = (target.host, target.port)
        connection = pool.take(address)
        if connection is None:
            try:
                connection = await pool.connect(address, timings.wall(timings.connect_timeout))
            except asyncio.TimeoutError:
                return _alb_error(504)
            except OSError:
                return _alb_error(502)  # refused or reset while connecting
        return await self._send(pool, address, connection, request)

    async def _send(self, pool: UpstreamPool, address: tuple[str, int],
                    connection: UpstreamConnection, request: http11.Message
                    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """One request and its response on ``connection``, which goes back to the pool when
        the target allows keep-alive. A response the parser rejects is answered with 502 and
        its connection closed: what follows it on the stream cannot be framed."""
        keep = False
        try:
            headers = [(k, v) for k, v in request.headers if k not in http11.HOP_BY_HOP]
            headers += [("x-forwarded-for", LOOPBACK), ("x-forwarded-proto", "http"),
                        ("connection", "keep-alive" if pool.reuse else "close")]
            connection.writer.write(http11.encode(request.start_line, headers, request.body))
            idle = self.timings.wall(self.timings.idle_timeout)
            response = await http11.read_response(connection.reader, request.method, idle)
            without_body = http11.bodiless(request.method, response.status)
            keep = pool.reuse and response.keep_alive
        except asyncio.TimeoutError:
            return _alb_error(504)
        except (OSError, asyncio.IncompleteReadError, http11.HTTPParseError):
            # The target reset or closed before a full response (on a reused connection,
            # that is a request crossing the target's keep-alive close), or sent a malformed
            # one.
            return _alb_error(502)
        finally:
            # A target removed while this request was in flight has had its connections
            # closed already (_forget): this one goes too.
            if keep and address in self.group.targets:
                pool.put(address, connection)
            else:
                connection.close()
        # A bodiless answer (to HEAD) keeps the target's content-length: the size of the
        # body a GET would have had.
        kept = [(k, v) for k, v in response.headers
                if k not in http11.HOP_BY_HOP or (without_body and k == "content-length")]
        return response.start_line, kept, response.body


def _alb_error(status: int) -> tuple[str, list[tuple[str, str]], bytes]:
    reason = _REASONS[status]
    body = (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n").encode()
    return (f"HTTP/1.1 {status} {reason}",
            [("server", "awselb/2.0"), ("content-type", "text/html")], body)


# The controller's default action for a listener whose rules match nothing: fixed 404.
_NO_RULE = ("HTTP/1.1 404 Not Found",
            [("server", "awselb/2.0"), ("content-type", "text/plain; charset=utf-8")], b"")
