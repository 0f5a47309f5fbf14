"""The plugin's own hooks, for a project's ``conftest.py`` (added by ``pytest_addhooks``).

Modelled on pytest-benchmark's generate/update pair: the plugin builds the data (a
``generate`` hook may build it instead), an ``update`` hook may change it in place, then the
plugin uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..core.result import LoadResult
    from ..report.context import ReportContext


@pytest.hookspec
def pytest_ingress_manifests(manifests: list[dict[str, Any]], nodeid: str, mode: str) -> None:
    """Change, in place, the manifests a Kubernetes backend is about to apply for one test: the
    Deployment, the Service and the Ingress, in that order (add annotations, tolerations, a
    node selector, resources...). Keep their names and the Service's selector."""


@pytest.hookspec(firstresult=True)
def pytest_ingress_generate_json(result: LoadResult, context: ReportContext, item: pytest.Item
                                 ) -> dict[str, Any] | None:
    """Build one test's JSON report from its result and context; the first implementation to
    return a dict wins (the plugin's own comes last: everything in the result). Keep
    ``context.test`` and ``context.run``: the file name and the run's index need them; the
    HTML page draws what the report still has."""


@pytest.hookspec
def pytest_ingress_update_json(report: dict[str, Any], item: pytest.Item) -> None:
    """Change, in place, one test's JSON report (``context`` and ``result``) before it is
    written to ``--ingress-report-dir``."""
