"""Which nodes the AWS Load Balancer Controller keeps as ``instance`` targets, by its version.

Read from the controller's code, release by release (docs/alb-facts.md section 7):

- v1.0.0 - v1.1.5: a node stays registered while its EC2 instance runs. Neither a cordon nor
  the label ``node.kubernetes.io/exclude-from-external-load-balancers`` drops it (only the older
  ``alpha.service-controller.kubernetes.io/exclude-balancer`` label does, which the simulator
  never sets).
- v1.1.6 - v1.1.9: a cordoned node (``spec.unschedulable``) is deregistered ([#1172]), and so
  is a node with that label, or one that is not Ready.
- v2.0.0 and later: a cordoned node stays registered; the label and NotReady drop it.

Taints (``ToBeDeletedByClusterAutoscaler`` from v2.1.1, ``karpenter.sh/disrupted:NoSchedule``
from v2.12.0) drop a node too, but the simulator's chaos never taints one, so they are not
modelled here. Versions are compared as numbers; one without a patch number stands for its
whole minor release, which must then behave the same throughout (``v1.1`` does not).

Imported by the ``sim`` marker's spec (pytest side) and by the simulator process: no asyncio.

[#1172]: https://github.com/kubernetes-sigs/aws-load-balancer-controller/pull/1172
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...base.backend import EXCLUDE_LABEL

__all__ = ["EXCLUDE_LABEL", "NEWEST", "NodePolicy", "NodeView", "controller_version"]

# The newest release whose node handling docs/alb-facts.md section 7 was read from; every
# release from v2.12.0 on treats nodes the same way.
NEWEST = "v3.5"

Version = tuple[int, int, int]
# ASCII digits only, a few of them: "v٢.1" or a thousand-digit number is not a version.
_FORM = re.compile(r"v?([0-9]{1,4})\.([0-9]{1,4})(?:\.([0-9]{1,4}))?")
_OLDEST: Version = (1, 0, 0)
_DROPS_CORDONED = ((1, 1, 6), (2, 0, 0))  # [from, until): v1.1.6 - v1.1.9
_HONOURS_LABEL: Version = (1, 1, 6)
_ACCEPTED = (f"a controller version like {NEWEST!r}, 'v2.13' or 'v1.1.9' "
             "(v1.0.0 or later)")


def _behaviour(version: Version) -> tuple[bool, bool]:
    """(drops cordoned nodes, honours the exclude label)"""
    return (_DROPS_CORDONED[0] <= version < _DROPS_CORDONED[1], version >= _HONOURS_LABEL)


def _parse(value: object) -> tuple[str, Version]:
    match = _FORM.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected {_ACCEPTED}, got {value!r}")
    major, minor, patch = match.groups()
    version = (int(major), int(minor), int(patch or 0))
    if version < _OLDEST:
        raise ValueError(f"expected {_ACCEPTED}, got {value!r}")
    if patch is None and (version[0], version[1]) == (1, 1):
        # "v1.1" stands for releases that treat cordoned nodes differently.
        raise ValueError(f"{value!r} is ambiguous: v1.1.0 - v1.1.5 keep a cordoned node "
                         "registered, v1.1.6 - v1.1.9 deregister it; give the patch version, "
                         "e.g. 'v1.1.5' or 'v1.1.9'")
    text = f"v{major}.{minor}" + (f".{patch}" if patch is not None else "")
    return text, version


def controller_version(value: object) -> str:
    """Spec parser: a controller version, normalised to ``vX.Y`` or ``vX.Y.Z``."""
    return _parse(value)[0]


@dataclass(frozen=True)
class NodeView:
    """What the controller reads of a node: the API's view, not whether its instance runs."""

    name: str
    unschedulable: bool
    excluded: bool  # labelled EXCLUDE_LABEL
    ready: bool  # the Ready condition is True


@dataclass(frozen=True)
class NodePolicy:
    """One controller version's rules for nodes as ``instance`` targets."""

    version: str
    drops_cordoned: bool
    honours_exclude_label: bool

    @classmethod
    def of(cls, value: str) -> NodePolicy:
        text, version = _parse(value)
        drops_cordoned, honours_label = _behaviour(version)
        return cls(text, drops_cordoned, honours_label)

    def drop_reason(self, node: NodeView) -> str | None:
        """Why this controller deregisters ``node``, or None while it keeps it."""
        if not node.ready:
            if self.honours_exclude_label:
                return f"{node.name} is NotReady"
            # Before v1.1.6 the controller asks EC2 whether the instance runs, at its next
            # reconcile; the Node turning NotReady (then deleted) is what brings one about.
            return f"the instance of {node.name} is no longer running"
        if node.excluded and self.honours_exclude_label:
            return f"{node.name} is labelled {EXCLUDE_LABEL}"
        if node.unschedulable and self.drops_cordoned:
            return f"{node.name} is cordoned, which controller {self.version} drops"
        return None

    def keep_reason(self, node: NodeView) -> str:
        """Why a node this controller still has registered is there (``drop_reason`` is None,
        or the controller has not reconciled since)."""
        due = self.drop_reason(node)
        if due is not None:
            return f"{due}, but the controller has not reconciled that yet (its lag)"
        if node.excluded:
            return f"controller {self.version} ignores the {EXCLUDE_LABEL} label"
        if node.unschedulable:
            return f"controller {self.version} keeps a cordoned node registered"
        return f"controller {self.version} keeps a Ready node registered"
