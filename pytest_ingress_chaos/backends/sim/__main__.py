"""``python -m pytest_ingress_chaos.backends.sim``: the ``ingress-sim`` command (see cli.py)."""

import sys

from .cli import main

sys.exit(main())
