"""pytest-ingress-chaos: does your ingress keep serving, with zero errors, while pods die?

The public API is what tests touch: the result of ``ingress_load.run()`` and the settings
objects. Everything else is reached through the markers and fixtures registered by the plugin.
"""

from __future__ import annotations

from .settings import KillPods, LoadSpec, ServiceSpec, SettingsError, SLOSpec
from .timeline import ErrorWindow, Event, LoadResult

__all__ = [
    "ErrorWindow",
    "Event",
    "KillPods",
    "LoadResult",
    "LoadSpec",
    "SLOSpec",
    "ServiceSpec",
    "SettingsError",
]
