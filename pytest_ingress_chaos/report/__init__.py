"""The reports of a load window's result, and of the run, pytest-free.

- ``terminal``: the plain-text report (the failure message, ``-v`` output) and the session's
  summary table.
- ``progress``: the live progress line of a running window and the thread that refreshes it.
- ``jsonreport``: the JSON report, one file per test, everything in the result with its
  ``context`` (where the figures came from).
- ``recordscsv``: every request of a window as one CSV row (``--ingress-records``).
- ``html``: the self-contained HTML page of one test, built from the JSON report's dict;
  ``svg`` draws its figure, from ``chart`` (requests by outcome, latency, error windows and
  chaos, in plain numbers) and ``lanes`` (what each pod, endpoint, target and node went
  through, from the events).
- ``png``: the same chart as a PNG, when matplotlib is installed (the ``plot`` extra).
- ``index``: the run's ``index.html``, one row per test, linked to its page.
"""
