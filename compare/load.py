"""Find and read wavebench result folders, read-only.

A *run folder* holds ``run.json`` and ``cells.jsonl`` (``results/<device>/<run_id>/``).  A path
given to compare may be a run folder, a device folder (``results/<device>/``) or a results root
(``results/``).  Anything else — no ``run.json`` found, a ``run.json`` that is not a wavebench
run, a ``schema_version`` this version cannot read — raises :class:`ResultError`, whose message
names the folder and says what was expected.  Nothing is ever written here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runstore.folder import CELLS_FILE, scan_cells
from runstore.records import CellRecord, cell_key

SUPPORTED_SCHEMA_VERSIONS = (1,)
REQUIRED_RUN_FIELDS = ("schema_version", "run_id", "device")


class ResultError(Exception):
    """A folder that compare cannot read; the message names it and what was expected."""


@dataclass
class Run:
    """One run folder: its ``run.json`` and its cells (the latest typed record per cell key)."""

    path: Path
    meta: dict[str, Any]
    cells: dict[tuple, CellRecord]
    label: str | None = None  # explicit label given on the command line (NAME=DIR)
    skipped_lines: int = 0
    order: int = 0  # position among the inputs, for stable group ordering
    warnings: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id"))

    @property
    def device(self) -> str:
        return str(self.meta.get("device"))

    @property
    def device_label(self) -> str:
        """The device as compare names it: a board profile run on other hardware (a rehearsal,
        ``hardware_note`` in run.json) is labelled with the hardware actually measured."""
        if self.meta.get("hardware_note"):
            return f"{self.device} on {self.meta.get('device_name') or 'other hardware'}"
        return self.device

    @property
    def host(self) -> str | None:
        return self.meta.get("host")

    @property
    def environment(self) -> dict[str, Any]:
        env = self.meta.get("environment")
        return env if isinstance(env, dict) else {}

    @property
    def started(self) -> str:
        for key in ("started", "started_at", "timestamp", "created"):
            if self.meta.get(key):
                return str(self.meta[key])
        stamps = [c.timestamp for c in self.cells.values() if c.timestamp]
        return min(stamps) if stamps else self.run_id


def read_run_json(folder: Path) -> dict[str, Any]:
    path = folder / "run.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultError(f"{folder}: not a wavebench result (expected run.json and cells.jsonl "
                          "in a run folder results/<device>/<run_id>/)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path}: not a wavebench run.json (unreadable JSON: {exc})") from None
    if not isinstance(meta, dict):
        raise ResultError(f"{path}: not a wavebench run.json (expected a JSON object)")
    missing = [k for k in REQUIRED_RUN_FIELDS if k not in meta]
    if missing:
        raise ResultError(f"{path}: not a wavebench run.json (missing {', '.join(missing)}; "
                          "expected schema_version, run_id, device written by make bench)")
    version = meta["schema_version"]
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        wb = meta.get("wavebench_version", "unknown")
        supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
        raise ResultError(f"{folder}: incompatible results (schema_version {version!r} from "
                          f"wavebench {wb}; this compare reads schema_version {supported})")
    return meta


def read_cells(folder: Path) -> tuple[dict[tuple, CellRecord], int]:
    """The latest typed record per cell key (through the run store), and the skipped torn last line.

    A truncated last line (a run killed mid-write) is skipped; a damaged line elsewhere is an
    error: a comparison of a half-read run would mislead.
    """
    path = folder / CELLS_FILE
    try:
        scan = scan_cells(folder)
    except FileNotFoundError:
        raise ResultError(f"{folder}: not a wavebench result (run.json present but cells.jsonl "
                          "missing)") from None
    except OSError as exc:
        raise ResultError(f"{path}: unreadable ({exc})") from None
    if scan.damaged:
        lineno, _ = scan.damaged[0]
        raise ResultError(f"{path}:{lineno}: not a wavebench cell record (expected a JSON object "
                          "with model, runtime, ...)")
    return {cell_key(r): r for r in scan.cells}, int(scan.torn_last_line)


def load_run(folder: str | Path, label: str | None = None) -> Run:
    folder = Path(folder)
    meta = read_run_json(folder)
    cells, skipped = read_cells(folder)
    run = Run(folder, meta, cells, label=label, skipped_lines=skipped)
    if skipped:
        run.warnings.append(f"{folder / 'cells.jsonl'}: skipped a truncated last line")
    return run


def find_run_folders(path: str | Path) -> list[Path]:
    """Run folders under ``path``: itself, ``path/<run>``, or ``path/<device>/<run>``."""
    path = Path(path)
    if not path.exists():
        raise ResultError(f"{path}: no such folder (expected a results/ folder or a run folder)")
    if not path.is_dir():
        raise ResultError(f"{path}: not a folder (expected a results/ folder or a run folder)")
    if (path / "run.json").is_file() or (path / "cells.jsonl").is_file():
        return [path]
    found: list[Path] = []
    for child in sorted(p for p in path.iterdir() if p.is_dir()):
        if (child / "run.json").is_file() or (child / "cells.jsonl").is_file():
            found.append(child)
            continue
        for grandchild in sorted(p for p in child.iterdir() if p.is_dir()):
            if (grandchild / "run.json").is_file() or (grandchild / "cells.jsonl").is_file():
                found.append(grandchild)
    if not found:
        raise ResultError(f"{path}: not a wavebench result (expected run.json in it, or "
                          "<device>/<run_id>/run.json below it)")
    return found


def parse_spec(spec: str) -> tuple[str | None, str]:
    """``NAME=DIR`` -> (NAME, DIR); ``DIR`` -> (None, DIR)."""
    if "=" in spec:
        name, _, folder = spec.partition("=")
        if name and "/" not in name and folder:
            return name, folder
    return None, spec


def load_results(specs: list[str]) -> list[Run]:
    """Every run under every given folder (``DIR`` or ``NAME=DIR``); raises on the first bad one.

    A label given as ``NAME=DIR`` names the group of those runs in the report.
    """
    runs: list[Run] = []
    seen: set[Path] = set()
    for spec in specs:
        label, folder = parse_spec(spec)
        for run_folder in find_run_folders(folder):
            resolved = run_folder.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            run = load_run(run_folder, label=label)
            run.order = len(runs)
            runs.append(run)
    if not runs:
        raise ResultError("no results given")
    return runs
