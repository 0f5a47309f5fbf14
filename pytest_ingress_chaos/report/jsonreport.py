"""The JSON report: everything in the result, with the context, one file per test."""

from __future__ import annotations

import dataclasses
import json
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


def write(directory: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as ``<directory>/<test id made file-safe>.json``; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{file_stem(data['context']['test'])}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
