"""pytest glue: the entry point (``pytest11``: ``ingress_chaos = pytest_ingress_chaos.plugin``).

Everything that measures, simulates or decides lives in the pytest-free layers; the glue reads
the user's options and markers, builds core objects from them, and reports what they found. It
names no concrete backend: the registry (``backends/__init__.py``) does. Its modules, each one
part of the glue (the import-linter contract in pyproject.toml keeps their order):

- ``options``: the option table as ``--ingress-*`` options and ini keys; the settings resolved;
- ``sweep``: ``pytest --ingress-sweep``, the backend's sweeper instead of a test run;
- ``session``: the session plugin object (state, header, xdist node hooks, summary table);
- ``planning``: a test's markers read into its plan (``core.plan`` holds the rules);
- ``window``: the load window through the test's call phase (live progress, verdicts);
- ``fixtures``: ``ingress_backend``, ``ingress_mode``, ``ingress_service``, ``ingress_chaos``,
  ``ingress_load``;
- ``reporting``: a finished window's result in every report;
- ``hookspecs``: the plugin's own hooks, for a project's ``conftest.py``.

This module is what pytest registers: it re-exports the hooks and fixtures of the others and
creates the session at configure time.
"""

from __future__ import annotations

import pytest

from ..base.errors import SettingsError
from ..settings.markers import marker_help
from ..settings.paths import create_report_dir
from . import hookspecs
from .fixtures import (
    _ingress_plan,
    ingress_backend,
    ingress_chaos,
    ingress_load,
    ingress_mode,
    ingress_service,
)
from .options import pytest_addoption, settings_of
from .planning import pytest_generate_tests, pytest_runtest_setup
from .reporting import (
    pytest_ingress_generate_json,
    pytest_runtest_call_interrupted,
    pytest_runtest_makereport,
)
from .session import IngressSession, backend_markers
from .sweep import pytest_cmdline_main
from .window import pytest_enter_pdb, pytest_runtest_call

__all__ = [
    "_ingress_plan", "ingress_backend", "ingress_chaos", "ingress_load", "ingress_mode",
    "ingress_service", "pytest_addhooks", "pytest_addoption", "pytest_cmdline_main",
    "pytest_configure", "pytest_enter_pdb", "pytest_generate_tests",
    "pytest_ingress_generate_json", "pytest_runtest_call", "pytest_runtest_call_interrupted",
    "pytest_runtest_makereport", "pytest_runtest_setup",
]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    for line in marker_help(backend_markers()):
        config.addinivalue_line("markers", line)
    settings = settings_of(config)
    try:  # at start, not after the first window
        create_report_dir(settings)
    except SettingsError as exc:
        raise pytest.UsageError(f"pytest-ingress-chaos: {exc}") from None
    IngressSession.start(config, settings)
