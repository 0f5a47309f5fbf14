"""``pytest --ingress-sweep``: the backend's sweeper instead of a test run."""

from __future__ import annotations

import sys

import pytest

from ..backends import REGISTRY
from .options import settings_of


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.getoption("version", 0):  # pytest --version answers without reading settings
        return None
    settings = settings_of(config)
    if not settings.sweep:
        return None
    code = REGISTRY[settings.backend].sweep(settings, settings.sweep_ttl,
                                            dry_run=settings.sweep_dry_run, out=sys.stdout)
    if code is None:
        print(f"pytest-ingress-chaos: backend {settings.backend} leaves nothing behind to sweep")
        return 0
    return code
