"""Cleanup that still happens when the session does not end the ordinary way.

pytest calls ``Backend.close()`` at the end of the session, and also after Ctrl-C. Two other
ways out would leave the run's namespace (and, on AWS, an ALB target group per test) behind:

- interpreter exit without the session's end (an error in another plugin's hook): an
  ``atexit`` handler closes the backend;
- SIGTERM, which CI systems send to cancel a job: Python's default action ends the process at
  once, running no ``atexit`` handler. While the backend lives, SIGTERM raises
  KeyboardInterrupt in the main thread instead, so pytest stops as on Ctrl-C and tears
  everything down in order (``base.stopsignals.interrupt_on_sigterm``). Only when SIGTERM
  has its default action and only from the main thread: a handler someone else installed is
  left alone.

Whatever remains after a SIGKILL is the sweeper's (``ingress-chaos-sweep``).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable

from ...base.stopsignals import interrupt_on_sigterm, restore_sigterm

log = logging.getLogger(__name__)


_lock = threading.Lock()
_armed: set[ExitCleanup] = set()  # one SIGTERM handler for every live backend
class ExitCleanup:
    """Runs ``close`` at interpreter exit and, while armed, lets SIGTERM interrupt the main
    thread; :meth:`disarm` undoes both."""

    def __init__(self, close: Callable[[], None], what: str) -> None:
        self._close = close
        self._what = what
        atexit.register(self._at_exit)
        with _lock:
            _armed.add(self)
            interrupt_on_sigterm()

    def _at_exit(self) -> None:
        try:
            self._close()
        except Exception:  # nothing can be raised to anyone at exit: say it in the log
            log.exception("closing %s at exit failed", self._what)

    def disarm(self) -> None:
        """Idempotent. The SIGTERM handler goes with the last armed cleanup."""
        atexit.unregister(self._at_exit)
        with _lock:
            _armed.discard(self)
            if not _armed:
                restore_sigterm()
