"""The event kinds have one home, ``base.events.EventKind``: every kind is drawn in a lane of the
report and reported by at least one backend, and the report's and the verdict's tables name no
kind outside it."""

from __future__ import annotations

import ast
from pathlib import Path

from pytest_ingress_chaos import backends
from pytest_ingress_chaos.base.events import EventKind
from pytest_ingress_chaos.core.verdict import CHAOS_CONSEQUENCES
from pytest_ingress_chaos.report.lanes import KIND_LANES
from pytest_ingress_chaos.report.svg import MARK_COLOURS


def emitted_kinds() -> set[EventKind]:
    """The kinds the backends' source names as ``EventKind.NAME``."""
    found = set()
    for path in Path(backends.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "EventKind" and node.attr in EventKind.__members__:
                found.add(EventKind[node.attr])
    return found


def test_every_kind_has_a_lane() -> None:
    assert sorted(set(EventKind) - set(KIND_LANES)) == []
    assert set(KIND_LANES) <= set(EventKind)


def test_every_kind_has_an_emitter() -> None:
    assert sorted(kind.value for kind in set(EventKind) - emitted_kinds()) == []


def test_every_kind_is_described() -> None:
    assert all(kind.description for kind in EventKind)


def test_the_verdict_and_the_chart_name_known_kinds_only() -> None:
    assert set(CHAOS_CONSEQUENCES) <= set(EventKind)
    assert set(MARK_COLOURS) <= set(EventKind)


def test_a_kind_is_its_wire_value() -> None:
    assert EventKind.POD_GONE == "pod.gone"
    assert f"{EventKind.POD_GONE}" == "pod.gone" == str(EventKind.POD_GONE)
    assert EventKind("pod.gone") is EventKind.POD_GONE
