"""Simulated timings, with the AWS Load Balancer Controller's and Kubernetes' defaults.

Every value is in test seconds; :meth:`SimTimings.wall` asks the run's
:class:`~...base.clock.TestClock` (the one owner of the time scale) to turn one into wall-clock
seconds, so a story can run ten times faster without changing its shape. Sources are
in docs/alb-facts.md and the README section "What the simulator models".
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from ...base.clock import TestClock


@dataclass(frozen=True, kw_only=True)
class SimTimings:
    clock: TestClock = field(default_factory=TestClock)
    # The kubelet sees a pod's deletion and starts its termination (preStop, then SIGTERM).
    # kube-proxy reprograms its rules a little sooner: the field report saw zero errors in
    # instance mode, where the two race.
    kubelet_lag: float = 0.5
    kube_proxy_lag: float = 0.1
    container_restart_delay: float = 1.0  # the kubelet's first restart; back-off is not modelled
    # After a pod's process is gone its IP answers with RST for a short while, then, once the
    # sandbox is torn down, nothing answers at all: connects time out. The field report's
    # 20 x 502 at 60 req/s over 3 pods match about one second of refusals.
    address_refuse: float = 1.0
    # A drained node's instance is terminated: its OS shuts down for a moment, during which
    # the NodePort still forwards (kube-proxy's rules live in the kernel), then its network is
    # gone. Its kubelet stops at once; the control plane marks the node NotReady once it has
    # heard nothing for the node-monitor grace period (40 s before Kubernetes 1.32, like the
    # rest of this control plane; 50 s from 1.32).
    node_shutdown: float = 1.0
    node_monitor_grace: float = 40.0
    # AWS Load Balancer Controller: EndpointSlice watch -> reconcile -> RegisterTargets /
    # DeregisterTargets -> ALB propagation; about 10 s in the field report.
    registration_lag: float = 10.0
    deregistration_lag: float = 10.0
    # Each reconcile's lag is drawn uniformly from lag +- lag_jitter: the issues report lags
    # from ~10 s to minutes, never a constant.
    lag_jitter: float = 2.0
    deregistration_delay: float = 300.0  # target group draining
    # Target group health checks (controller defaults).
    health_check_interval: float = 15.0
    health_check_timeout: float = 5.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    # ALB itself.
    connect_timeout: float = 10.0  # no connection to a target in 10 s -> 504
    idle_timeout: float = 60.0  # no response within the idle timeout -> 504
    # The ALB <-> target round trip (cross-zone in a VPC: about a millisecond), the time in
    # which a request and a target's keep-alive close can cross (upstream.py). In wall
    # seconds and never compressed, like the load rate: scaling it would shrink the race
    # below what the event loop can resolve.
    target_rtt: float = 0.001

    @property
    def time_scale(self) -> float:
        return self.clock.time_scale

    def wall(self, seconds: float) -> float:
        """Test seconds -> wall-clock seconds."""
        return self.clock.wall(seconds)

    def controller_lag(self, base: float, rng: random.Random) -> float:
        """One reconcile's lag, in wall seconds."""
        return self.wall(rng.uniform(max(0.0, base - self.lag_jitter), base + self.lag_jitter))

    def to_json(self) -> dict[str, Any]:
        """The timings as they cross to the simulator process: the clock as its time scale."""
        data = asdict(self)
        data["time_scale"] = data.pop("clock")["time_scale"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimTimings:
        fields = dict(data)
        return cls(clock=TestClock(float(fields.pop("time_scale", 1.0))), **fields)


# The defaults, the one place they are written: the sim marker and the local cluster read them.
DEFAULTS = SimTimings()
