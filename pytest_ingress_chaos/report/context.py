"""What a report says about where its figures came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ReportContext:
    test: str  # the pytest node id
    mode: str  # "ip", "instance", or "url" for an explicit endpoint
    backend: str
    url: str
    seed: int
    connections: int
    timeout: float  # request timeout, test seconds
    run: str  # the session's run id: which reports in a directory belong to one run

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
