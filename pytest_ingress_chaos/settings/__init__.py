"""What a run is asked to do, resolved without pytest: the option table and the marker table.

- ``options``: ``--ingress-*`` options, ini keys and environment variables -> one
  ``SessionSettings``; every error names where the bad value came from.
- ``markers``: the marker table -> specs, and the ``pytest --markers`` help made from it.
"""
