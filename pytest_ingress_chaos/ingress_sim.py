"""The ``ingress-sim`` console script: it takes SIGINT and SIGTERM first, then imports the
command (``backends/sim/cli.py``) and runs it.

The command imports most of the package, which takes a while (a fifth of a second on a busy
machine). With Python's default handlers, a Ctrl-C in that time printed a KeyboardInterrupt
traceback. This module imports only :mod:`.stopsignals` (and the package's ``__init__``, which
imports nothing), so the command takes the signals almost as soon as Python has started: from
then on a signal stops the run in order (exit status 130 for SIGINT, 143 for SIGTERM, with one
line on stderr, if it came before the ingress was up). What is left is Python's own start-up
before this module runs (``site``, the ``.pth`` files of the environment), in which Ctrl-C is
still Python's KeyboardInterrupt, and SIGTERM still its default action; nothing has been
started then. ``python -m pytest_ingress_chaos.backends.sim`` takes them later, once its parent
packages are imported.
"""

from __future__ import annotations

from .base.stopsignals import StopSignals


def main() -> int:
    signals = StopSignals()  # before anything else: see the module's docstring
    from .backends.sim.cli import main as run_command

    return run_command(signals=signals)
