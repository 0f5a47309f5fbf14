"""pytest-ingress-chaos: does your ingress keep serving, with zero errors, while pods die?

The public API is what tests annotate with: the fixtures' types (:class:`IngressLoad`,
:class:`Chaos`, :class:`Service`, :class:`PodInfo`), the result (:class:`LoadResult` with
its :class:`ErrorWindow`, :class:`Disruption` and :class:`Event` items) and the exceptions.
Everything else is reached through the markers and fixtures the plugin registers, and may
change.

The names are imported on first use, so that the processes the plugin starts (the simulator,
the load workers) import only what they run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

if TYPE_CHECKING:
    from .base.backend import PodInfo, Service
    from .base.errors import (
        BackendError,
        BackendTimeout,
        ChaosError,
        IngressChaosError,
        IngressSLOViolation,
        IngressVerdictVoid,
        LoadGeneratorError,
        SettingsError,
    )
    from .base.events import Event
    from .core.chaos import Chaos
    from .core.disruption import Disruption
    from .core.loadwindow import IngressLoad
    from .core.result import ErrorWindow, LoadResult

_EXPORTS = {
    "IngressLoad": "core.loadwindow",
    "Chaos": "core.chaos",
    "Service": "base.backend",
    "PodInfo": "base.backend",
    "LoadResult": "core.result",
    "ErrorWindow": "core.result",
    "Event": "base.events",
    "Disruption": "core.disruption",
    "IngressChaosError": "base.errors",
    "SettingsError": "base.errors",
    "ChaosError": "base.errors",
    "LoadGeneratorError": "base.errors",
    "BackendError": "base.errors",
    "BackendTimeout": "base.errors",
    "IngressSLOViolation": "base.errors",
    "IngressVerdictVoid": "base.errors",
}

__all__ = [
    "BackendError",
    "BackendTimeout",
    "Chaos",
    "ChaosError",
    "Disruption",
    "ErrorWindow",
    "Event",
    "IngressChaosError",
    "IngressLoad",
    "IngressSLOViolation",
    "IngressVerdictVoid",
    "LoadGeneratorError",
    "LoadResult",
    "PodInfo",
    "Service",
    "SettingsError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
