"""``python -m pytest_ingress_chaos.localcluster``: the ``ingress-local-cluster`` command."""

from .cluster import main

raise SystemExit(main())
