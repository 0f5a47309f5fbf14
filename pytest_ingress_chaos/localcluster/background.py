"""Background tasks a stand-in owns: started together, ended together, failures logged.

A stand-in's work happens in tasks (a watch, a pod's termination sequence, a reconcile loop).
An exception in one of them must show in the log at once, not as "Task exception was never
retrieved" at interpreter exit, and stopping the stand-in must end every one of them, even a
task that swallows one cancellation (see ``backends/sim/tasks.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..backends.sim.dataplane import cancel_and_wait

__all__ = ["Background"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Background:
    """A set of tasks; :meth:`close` cancels them and waits until each one has ended."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str = "") -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name or None)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "%s: task %s failed", self.owner, task.get_name(), exc_info=task.exception()
            )

    async def close(self) -> None:
        await cancel_and_wait(list(self._tasks))
