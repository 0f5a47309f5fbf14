"""The package root's public names: each one a user imports resolves, in a fresh process."""

from __future__ import annotations

import subprocess
import sys

import pytest_ingress_chaos


def test_every_public_name_resolves_from_the_package_root() -> None:
    # A fresh interpreter: the names are imported lazily, on first use, so a stale entry in the
    # lazy table shows only when nothing else imported its module first.
    code = ("import pytest_ingress_chaos as p; "
            "print(sorted(n for n in p.__all__ if n != '__version__' and getattr(p, n) is None))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert set(pytest_ingress_chaos.__all__) >= {"IngressLoad", "LoadResult", "SettingsError"}
