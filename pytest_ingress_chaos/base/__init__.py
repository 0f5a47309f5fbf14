"""The base vocabulary every other layer speaks; it imports nothing of the package above it.

Each small rule has its one home here:

- ``units``: durations, rates, percentages and counts: parse, and format (``format_duration``,
  the one duration formatter, in a ``DurationStyle``); ``argparse_type`` lends the parsers to
  the command-line tools.
- ``clock``: test seconds <-> wall seconds, the one owner of the time scale and its range.
- ``outcomes``: the kinds of request outcome, which of them are a success (``is_success``,
  ``is_success_label``), how counts of them are written (``format_counts``: ``502 x20``), and
  how a load window ended (``VerdictKind``: pass, fail, void,
  interrupted).
- ``errors``: the package's one exception tree (its docstring draws all of it).
- ``events``: what happened on the timeline: ``EventKind`` (every kind a backend may report),
  ``Event``, the ``EventSink`` backends report into, and ``timeline_line``.
- ``kubia``: the sample app's answer (``You've hit <pod>``) and the pod name read from it.
- ``kubenames``: the Kubernetes API server's naming rules.
- ``specs``: frozen, self-validating specs of a load window, an SLO, a service and chaos.
- ``backend``: the backend contract the core drives (provisioning request, Service, PodInfo,
  capabilities).
- ``stopsignals``: SIGINT/SIGTERM handling, for the command-line tools (``StopSignals``) and
  for the kubernetes backend inside pytest (``interrupt_on_sigterm``).
"""
