"""The results folder of a run: ``results/<device>/<run_id>/`` with ``run.json`` and the
append-only ``cells.jsonl``.  Each record is flushed and synced to disk as soon as it exists,
so nothing measured is lost to a crash or Ctrl-C; a resumed run appends newer records and
the latest record of a cell wins.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from runners.records import cell_key

SCHEMA_VERSION = 1
RUN_FILE, CELLS_FILE = "run.json", "cells.jsonl"
DONE_STATUSES = ("ok", "unsupported", "error", "oom", "timeout")


def wavebench_version() -> str:
    import tomllib

    try:
        data = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
        return data["project"]["version"]
    except (OSError, KeyError, ValueError):
        return "unknown"


def new_run_id(settings_hash: str) -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + settings_hash


def find_resumable(device_dir: Path, settings_hash: str) -> Path | None:
    """The latest run folder made with the same measuring settings, if any."""
    if not device_dir.is_dir():
        return None
    candidates = []
    for run_json in device_dir.glob(f"*/{RUN_FILE}"):
        try:
            data = json.loads(run_json.read_text())
        except (OSError, ValueError):
            continue
        if data.get("settings_hash") == settings_hash and data.get("schema_version") == SCHEMA_VERSION:
            candidates.append(run_json.parent)
    return max(candidates, key=lambda p: p.name) if candidates else None


def read_cells(run_dir: Path) -> list[dict[str, Any]]:
    """Latest record per cell key; a truncated last line (a killed writer) is skipped."""
    path = Path(run_dir) / CELLS_FILE
    latest: dict[tuple, dict[str, Any]] = {}
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        latest[cell_key(record)] = record
    return list(latest.values())


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "logs").mkdir(exist_ok=True)

    @property
    def run_id(self) -> str:
        return self.path.name

    def read_run(self) -> dict[str, Any]:
        p = self.path / RUN_FILE
        return json.loads(p.read_text()) if p.exists() else {}

    def write_run(self, data: dict[str, Any]) -> None:
        tmp = self.path / (RUN_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(self.path / RUN_FILE)

    def update_run(self, **changes: Any) -> dict[str, Any]:
        data = self.read_run()
        data.update(changes)
        self.write_run(data)
        return data

    def append_cell(self, record: dict[str, Any]) -> None:
        with open(self.path / CELLS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def cells(self) -> list[dict[str, Any]]:
        return read_cells(self.path)

    def done_keys(self) -> set[tuple]:
        return {cell_key(r) for r in self.cells() if r.get("status") in DONE_STATUSES}
