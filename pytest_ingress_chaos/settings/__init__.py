"""What a run is asked to do, resolved without pytest: the option table, the marker table, and
the filesystem checks of the settings that name paths.

- ``options``: ``--ingress-*`` options, ini keys and environment variables -> one
  ``SessionSettings``; every error names where the bad value came from.
- ``markers``: the marker table -> specs, and the ``pytest --markers`` help made from it.
- ``paths``: the settings that name files and directories, checked against the filesystem at
  start (the report directory created), each refusal naming its source.
"""
