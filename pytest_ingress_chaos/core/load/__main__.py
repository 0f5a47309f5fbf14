"""``python -m pytest_ingress_chaos.core.load``: one load worker process (the child side of
``workers.py``). It imports only the load generator, never the plugin or pytest.

Reads its settings as one JSON line on stdin, answers ``ready``, waits for the common start
instant, runs its share of the schedule, and writes its records (pickled plain bytes and
strings) to stdout. A ``stop`` line or the end of stdin (the parent went away) ends its window.
"""

from __future__ import annotations

import json
import pickle
import sys
import threading

from ...base.clock import TestClock
from ...base.specs import LoadSpec
from ..timeline import Timeline
from .generator import LoadGenerator
from .workers import READY


def main() -> None:
    config = json.loads(sys.stdin.readline())
    timeline = Timeline(TestClock(config["time_scale"]))
    generator = LoadGenerator(config["url"], LoadSpec(**config["spec"]), timeline,
                              share=(config["offset"], config["stride"]),
                              headers=config["headers"])
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    first = sys.stdin.readline().strip()
    if first in ("", "stop"):
        return
    generator.start(at=float(first))

    def watch_parent() -> None:
        sys.stdin.readline()  # "stop", or end of input: the parent is done or gone
        generator.stop()

    threading.Thread(target=watch_parent, daemon=True).start()
    generator.wait()
    sys.stdout.buffer.write(pickle.dumps({"log": timeline.requests.export(),
                                          "not_sent": timeline.not_sent}))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
