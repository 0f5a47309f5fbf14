"""Ending background tasks for good."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

_RECHECK = 0.1  # seconds between cancellations of a task that is still running


async def cancel_and_wait(tasks: Collection[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended, cancelling again those that go on.

    A single ``cancel()`` is not enough on Python 3.11: ``asyncio.wait_for`` swallows a
    cancellation that arrives just as its inner operation completes, and a loop such as a
    target's health checks then carries on, so a plain ``gather`` would wait forever.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RECHECK)
