"""``python -m pytest_ingress_chaos.backends.sim``: the simulator process (see server.py)."""

from .server import main

main()
