"""The plugin's own hooks, for a project's ``conftest.py`` (added by ``pytest_addhooks``).

Modelled on pytest-benchmark's generate/update pair: the plugin builds the data, a hook may
change it in place, then the plugin uses it.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_ingress_manifests(manifests: list[dict[str, Any]], nodeid: str, mode: str) -> None:
    """Change, in place, the manifests a Kubernetes backend is about to apply for one test: the
    Deployment, the Service and the Ingress, in that order (add annotations, tolerations, a
    node selector, resources...). Keep their names and the Service's selector."""


@pytest.hookspec
def pytest_ingress_json_report(report: dict[str, Any], item: pytest.Item) -> None:
    """Change, in place, one test's JSON report (``context`` and ``result``) before it is
    written to ``--ingress-report-dir``."""
