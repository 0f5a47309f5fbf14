"""The option table wired into pytest: each setting as ``--ingress-*`` and ini ``ingress_*``,
and the session's settings resolved from them, the environment included, once per process.

The table itself and every rule on its values live in the pytest-free ``settings`` package;
this module only hands pytest's raw values over and turns a refusal into a usage error.
"""

from __future__ import annotations

import os

import pytest

from ..backends import REGISTRY
from ..base.errors import SettingsError
from ..base.units import describe
from ..settings.options import OptionDef, SessionSettings, options, resolve_session
from ..settings.paths import check_kubeconfig

SETTINGS_KEY = pytest.StashKey[SessionSettings]()


def option_table() -> tuple[OptionDef, ...]:
    return options(tuple(REGISTRY))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ingress-chaos", "ingress availability under chaos")
    for option in option_table():
        group.addoption(option.cli, dest=f"ingress_{option.name}", **option.cli_arguments(),
                        help=f"{option.help}. Also ini {option.ini}, env {option.env}.")
        # Typed numbers need pytest 8.4's int/float ini types; older pytest reads strings.
        typed = option.ini_type if pytest.version_tuple >= (8, 4) else "string"
        parser.addini(option.ini, help=option.help, default=None,
                      type=typed)  # type: ignore[arg-type]


def _ini(config: pytest.Config, option: OptionDef) -> object:
    try:
        return config.getini(option.ini)
    except (ValueError, TypeError) as exc:  # not the int or float it must be (or empty)
        accepted = describe(option.parse)
        expected = f"; expected {accepted}" if accepted else ""
        raise pytest.UsageError(
            f"pytest-ingress-chaos: ini {option.ini}: {exc}{expected}") from None


def settings_of(config: pytest.Config) -> SessionSettings:
    """The session's settings from the command line, the environment and the ini file,
    resolved on first use (``--ingress-sweep`` asks before any session exists) and kept."""
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is not None:
        return settings
    definitions = option_table()
    cli = {option.name: config.getoption(f"ingress_{option.name}") for option in definitions}
    ini = {option.name: _ini(config, option) for option in definitions}
    try:
        settings = resolve_session(definitions, cli, ini, os.environ)
        check_kubeconfig(settings)
    except SettingsError as exc:
        raise pytest.UsageError(f"pytest-ingress-chaos: {exc}") from None
    config.stash[SETTINGS_KEY] = settings
    return settings
