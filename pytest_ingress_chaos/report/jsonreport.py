"""The JSON report: everything in the result, with the context, one file per test.

Strict JSON (RFC 8259): a float that is not finite (NaN, infinity), which ``json.dumps`` would
write as a bare ``NaN`` or ``Infinity`` that no strict reader accepts, is written as ``null``,
wherever it is, also in what a ``pytest_ingress_update_json`` hook added
(``docs/report-formats.md``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

from ..core.result import LoadResult
from .context import ReportContext


def to_json(result: LoadResult, context: ReportContext) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["error_rate"] = result.error_rate
    data["held_rate"] = result.held_rate
    return {"context": context.to_json(), "result": data}


def file_stem(test: str) -> str:
    """The pytest node id made file-safe: the name every report file of one test starts with."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("_")


def strict(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by None, in dicts, lists and
    tuples at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(item) for item in value]
    return value


def dumps(data: Any) -> str:
    """Strict JSON text of ``data`` (see the module docstring)."""
    return json.dumps(strict(data), indent=2, allow_nan=False)


def write(directory: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as ``<directory>/<test id made file-safe>.json``; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{file_stem(data['context']['test'])}.json"
    path.write_text(dumps(data) + "\n")
    return path
