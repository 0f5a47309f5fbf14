"""An event on a test's timeline: a chaos action, or something a backend observed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Something that happened during the test, ``at`` seconds (test time) from load start."""

    at: float
    source: str  # "chaos", "cluster", "alb", "kube-proxy", "load"
    kind: str  # machine-readable, e.g. "pod.deleted", "target.draining"
    subject: str  # the pod, target or node it is about
    message: str  # one human-readable line
