"""One error tree: every exception class the package defines derives from ``IngressChaosError``
(the machinery failed) or ``IngressVerdict`` (the ingress did not pass), as ``base/errors.py``
draws it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest_ingress_chaos
from pytest_ingress_chaos.base.errors import (
    IngressChaosError,
    IngressSLOViolation,
    IngressVerdict,
    IngressVerdictVoid,
)


def package_exceptions() -> list[type[BaseException]]:
    found = []
    for module in pkgutil.walk_packages(pytest_ingress_chaos.__path__, "pytest_ingress_chaos."):
        if module.name.endswith("__main__"):
            continue
        for _, value in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.name:
                found.append(value)
    return found


def test_every_exception_derives_from_the_tree() -> None:
    found = package_exceptions()
    assert len(found) > 15  # the walk saw the whole package
    outside = [f"{cls.__module__}.{cls.__qualname__}" for cls in found
               if not issubclass(cls, (IngressChaosError, IngressVerdict))]
    assert outside == []


def test_the_docstring_draws_every_class() -> None:
    tree = inspect.getmodule(IngressChaosError).__doc__ or ""  # type: ignore[union-attr]
    missing = [cls.__name__ for cls in package_exceptions() if cls.__name__ not in tree]
    assert missing == []


def test_the_verdicts_share_a_base_outside_the_machinerys_errors() -> None:
    for verdict in (IngressSLOViolation, IngressVerdictVoid):
        assert issubclass(verdict, IngressVerdict) and issubclass(verdict, AssertionError)
        assert not issubclass(verdict, IngressChaosError)
