"""The measuring core: one load window from its schedule to its verdict, pytest-free.

- ``load/``: the open-model load generator (schedule, generator thread, engines, request
  records, statistics, worker processes and their child-side entry ``__main__``).
- ``timeline``: the thread-safe recorder of requests and events.
- ``disruption``: per chaos action, the stretch of errors it caused and when service recovered.
- ``result``: ``LoadResult`` and ``summarize()``.
- ``verdict``: ``judge()``, the SLO violations with the right party blamed.
- ``chaos``: imperative chaos (``Chaos``) and the markers' schedule (``ChaosSchedule``).
- ``loadwindow``: ``IngressLoad``, one window's start / sleep / run / close.
- ``plan``: one test's plan from its parsed markers and the backend's traits, the rules on
  markers together (chaos inside the window, url vs provisioning, capabilities) checked.
"""
