"""Every module of the package is in the layering: named by an import-linter contract in
pyproject.toml, or inside a package that a contract names as a whole.

A package that is the container of a contract (``containers = [...]``: it has an order of its
own) must name each of its modules, so a module added there cannot slip out of that order
either. lint-imports checks the contracts themselves; this checks that they leave nothing out.
"""

from __future__ import annotations

import pkgutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest_ingress_chaos

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest's own dependency on Python 3.10
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
ROOT = pytest_ingress_chaos.__name__


def _layer_names(layer: str) -> list[str]:
    """``"a : b"`` (independent siblings) or ``"a | b"`` -> ``["a", "b"]``."""
    return [name.strip().strip("()") for name in layer.replace("|", ":").split(":")
            if name.strip()]


def named_by(contracts: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """The modules the contracts name (absolute), and the containers among them."""
    named: set[str] = set()
    containers: set[str] = set()
    for contract in contracts:
        own_containers = contract.get("containers", [])
        containers.update(own_containers)
        named.update(own_containers)
        for layer in contract.get("layers", []):
            for name in _layer_names(layer):
                named.update([f"{c}.{name}" for c in own_containers] or [name])
        for key in ("modules", "source_modules", "forbidden_modules"):
            named.update(contract.get(key, []))
    return named, containers


def uncovered(modules: Sequence[str], contracts: Iterable[Mapping[str, Any]]) -> list[str]:
    """The modules no contract covers. A module is covered when it is named; or, unless it is
    inside a container, when an ancestor package is named (as one unit of a layer); a package
    also when a module inside it is named (its modules are layered one by one)."""
    named, containers = named_by(contracts)

    def covered(module: str) -> bool:
        if module == ROOT or module in named:
            return True
        if any(name.startswith(module + ".") for name in named):
            return True
        parts = module.split(".")
        for depth in range(len(parts) - 1, 1, -1):
            ancestor = ".".join(parts[:depth])
            if ancestor in containers:
                return False  # a container names each of its modules
            if ancestor in named:
                return True
        return False

    return [module for module in modules if not covered(module)]


def package_modules() -> list[str]:
    found = [module.name for module in pkgutil.walk_packages(pytest_ingress_chaos.__path__,
                                                               prefix=ROOT + ".")]
    return [ROOT, *found]


def contracts() -> list[dict[str, Any]]:
    with PYPROJECT.open("rb") as file:
        importlinter: dict[str, Any] = tomllib.load(file)["tool"]["importlinter"]
    assert importlinter["root_package"] == ROOT
    return list(importlinter["contracts"])


def test_every_module_of_the_package_is_covered_by_a_contract() -> None:
    modules = package_modules()
    assert f"{ROOT}.plugin.session" in modules and f"{ROOT}.core.load.engines" in modules
    assert uncovered(modules, contracts()) == []


def test_every_package_with_modules_of_its_own_order_is_a_container() -> None:
    """The layer packages whose modules depend on each other each have a contract inside."""
    _, containers = named_by(contracts())
    assert {f"{ROOT}.{name}" for name in ("base", "core", "settings", "plugin", "report")} \
        <= containers


def test_a_module_left_out_of_its_containers_contract_is_found() -> None:
    """The check can fail: a new module in a container, or at the package root, is reported;
    one in a package named as a whole (the simulator) is not."""
    added = [f"{ROOT}.plugin.newglue", f"{ROOT}.core.load.newengine", f"{ROOT}.newtool",
             f"{ROOT}.backends.sim.newpart"]
    assert uncovered([*package_modules(), *added], contracts()) == added[:3]
