"""The embedded simulator: a small cluster and an AWS ALB on loopback, self-contained.

- ``client.py``: the pytest side of the pipe (:class:`~.client.SimBackend`, the backend);
- ``server.py``: the simulator process (``python -m pytest_ingress_chaos.backends.sim.server``),
  so its timing does not disturb the load thread: ``cluster.py`` and ``controllers.py`` (the
  control plane), ``kubeproxy.py``, ``alb.py`` and ``upstream.py`` (the data plane),
  ``nodepolicy.py`` (the AWS controller's rules for nodes, by version), ``http11.py``,
  ``listener.py``, ``tasks.py`` and ``timings.py`` (the simulated timings and their defaults, on
  the run's clock);
- ``sampleapp.py``: the pod process, run as a script, importing nothing of the package;
- ``cli.py``: ``ingress-sim``, the simulated ingress for any HTTP client (its console script
  enters through ``pytest_ingress_chaos/ingress_sim.py``, which takes Ctrl-C first);
- ``spec.py``: the ``sim`` marker, the settings only the simulator understands;
- ``dataplane.py``: the local cluster's interface, the one module it may import (``__all__``).
"""
