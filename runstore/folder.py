"""The results folder of a run: ``results/<device>/<run_id>/`` with ``run.json`` and the
append-only ``cells.jsonl``.  Each record is flushed and synced to disk as soon as it exists,
so nothing measured is lost to a crash or Ctrl-C; a resumed run appends newer records and
the latest record of a cell wins.

This is the one reader of ``cells.jsonl`` (the suite, ``make report``, ``make compare`` and
``make eval`` all read through :func:`scan_cells` / :func:`read_cells`), so there is one damage
policy: a record appended to a torn line is recovered; a torn last line (a killed process) is
skipped and counted; any other unreadable line is *damage*, listed with its line number.
:func:`read_cells` skips damage with a warning; ``make compare``, which must not compare
half-read runs, refuses it (:mod:`compare.load`).
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runstore.identity import differences
from runstore.lock import Holder, RunInProgress, RunLock, live_runs, opening
from runstore.records import CellRecord, cell_key
from runstore.run_record import RUN_FIELDS, RunRecord

SCHEMA_VERSION = 1
RUN_FILE, CELLS_FILE = "run.json", "cells.jsonl"
DAMAGED_FILE = "cells.damaged"  # partial lines moved out of cells.jsonl (a run killed mid-write)
DONE_STATUSES = ("ok", "unsupported", "error", "oom", "timeout")


REPO_ROOT = Path(__file__).resolve().parent.parent
# system locations say what the platform is, not where a user keeps files: kept as they are
SYSTEM_DIRS = ("/proc", "/sys", "/dev", "/etc", "/usr", "/opt", "/lib", "/lib64", "/bin", "/sbin", "/run", "/var")
_ABS_PATH = re.compile(r"(?<![\w./~…-])/(?:[\w.@+~-]+/)*[\w.@+~-]+/?")


def portable_path(path: str) -> str:
    """A path as it may travel with the results: relative to the repository when inside it,
    a system location as it is, anything else of this machine's file system cut to its name."""
    if any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS):
        return path
    p = Path(path)
    try:
        return p.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        pass
    try:
        return p.resolve().relative_to(REPO_ROOT).as_posix()
    except (ValueError, OSError):
        return f"…/{p.name}" if p.name else "…"


def portable_text(text: str) -> str:
    """``text`` with every absolute path in it made portable (:func:`portable_path`)."""
    return _ABS_PATH.sub(lambda m: portable_path(m.group(0)), text)


def portable(data: Any) -> Any:
    """A JSON-like value with every string made portable: results are copied between machines
    and shared between people, so they carry no absolute path of the machine that ran them."""
    if isinstance(data, str):
        return portable_text(data) if "/" in data else data
    if isinstance(data, dict):
        return {k: portable(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [portable(v) for v in data]
    return data


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


def resume_decision(device_dir: Path, settings_hash: str, fingerprint: str,
                    identity: dict[str, Any], reopen_complete: bool = False) -> tuple[Path | None, str | None]:
    """The run folder to resume, or None and why the latest one with these settings is not.

    Only an unfinished run (interrupted, or killed while running) measured on the same host,
    software and hardware (``fingerprint``, the hash of ``identity``) is resumed: a complete
    run is never re-used by a new measurement (``make report RUN=...`` re-writes its report),
    and cells measured under two software stacks never end up in one run.  ``reopen_complete``
    is for ``REMEASURE=drift``, which asks to measure part of a finished run again, in that run
    (the fingerprint must still match).
    """
    latest = find_resumable(device_dir, settings_hash)
    if latest is None:
        return None, None
    try:
        run = json.loads((latest / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None, f"{latest} has an unreadable {RUN_FILE}"
    if run.get("status") == "complete" and not reopen_complete:
        when = str(run.get("finished") or run.get("started") or "?")
        return None, (f"{latest} is complete (finished {when}); measuring again in a new run "
                      f"(make report RUN={latest} re-writes its report without measuring)")
    recorded = run.get("fingerprints")
    if not isinstance(recorded, dict) or not run.get("fingerprint"):
        return None, f"{latest} was not resumed: it predates run fingerprints (an older wavebench)"
    if run["fingerprint"] != fingerprint:
        old = recorded.get(run["fingerprint"]) or {}
        why = "; ".join(differences(old, identity)) or "its fingerprint differs"
        return None, f"{latest} was not resumed: {why}"
    return latest, None


@dataclass
class OpenedRun:
    """The run folder this process measures in (locked for it), and what to tell the user."""

    folder: RunFolder
    resumed: bool
    why_not: str | None = None  # why the latest run with these settings was not resumed
    notes: list[str] = field(default_factory=list)  # a dead run's lock taken over; other runs measuring


def new_run_folder(device_dir: Path, settings_hash: str) -> Path:
    """Make a new run's folder; two runs started in one second get two folders (``-2``)."""
    run_id, n = new_run_id(settings_hash), 1
    while True:
        path = device_dir / (run_id if n == 1 else f"{run_id}-{n}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1


def open_run(device_dir: Path, settings_hash: str, fingerprint: str, identity: dict[str, Any], *,
             fresh: bool = False, reopen_complete: bool = False, command: str = "") -> OpenedRun:
    """Choose the run folder to measure in (resumed per :func:`resume_decision`, else new) and lock it.

    Raises :class:`RunInProgress`, naming who, when a process is measuring a run with the same
    settings in ``device_dir`` — also with ``fresh``: a second identical benchmark would only
    disturb the first's timings and its own.  A run with other settings measuring at the same
    time is allowed, and said in ``notes``.  The lock of a run that died (its process killed) is
    free, so that run is resumed as before; ``notes`` says whose it was.
    """
    me = Holder.this_process(command, settings_hash)
    with opening(device_dir):
        busy = live_runs(device_dir)
        for path, holder in busy:
            if holder.settings_hash == settings_hash:
                raise RunInProgress(path, holder)
        notes = [f"note: {path} is being measured at the same time ({holder.describe()}): "
                 "both runs' timings are disturbed" for path, holder in busy]
        existing, why_not = (None, None) if fresh else resume_decision(
            device_dir, settings_hash, fingerprint, identity, reopen_complete=reopen_complete)
        path = existing or new_run_folder(device_dir, settings_hash)
        lock = RunLock.take(path, me)
    if lock.previous is not None:
        notes.append(f"taking over {path} from {lock.previous.describe()}, which ended without "
                     "letting it go (killed or crashed)")
    return OpenedRun(RunFolder(path, lock), existing is not None, why_not, notes)


def _parse_line(line: str) -> dict | None:
    """One record, or None when the line is not one.

    A process killed mid-write leaves a partial line, and a resumed run then appends its next
    record to that same line; the record is recovered from the last ``{`` that starts a JSON
    object running to the end of the line.
    """
    try:
        value = json.loads(line)
        return value if isinstance(value, dict) else None
    except json.JSONDecodeError:
        pass
    start = line.find("{", 1)
    while start != -1:
        try:
            value = json.loads(line[start:])
            if isinstance(value, dict) and "model" in value and "runtime" in value:
                return value
        except json.JSONDecodeError:
            pass
        start = line.find("{", start + 1)
    return None


@dataclass
class CellScan:
    """What :func:`scan_cells` found: the latest record per cell key (first-measured order),
    whether the last line was torn, and the damaged lines elsewhere as ``(line number, text)``."""

    cells: list[CellRecord]
    torn_last_line: bool = False
    damaged: list[tuple[int, str]] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The cells as plain dicts (every field present, whichever version wrote them)."""
        return [cell.to_dict() for cell in self.cells]


def scan_cells(run_dir: str | Path) -> CellScan:
    """Read ``cells.jsonl`` of ``run_dir``.  Raises ``FileNotFoundError`` when it is missing."""
    path = Path(run_dir) / CELLS_FILE
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    scan = CellScan([])
    latest: dict[tuple, CellRecord] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _parse_line(line)
        try:
            cell = CellRecord.from_dict(record) if record is not None else None
        except ValueError:  # a JSON object, but not a cell (identity fields missing)
            cell = None
        if cell is None:
            if number == len(lines):
                scan.torn_last_line = True
            else:
                scan.damaged.append((number, line[:80]))
            continue
        latest[cell_key(cell)] = cell  # an existing key keeps its place, takes the new value
    scan.cells = list(latest.values())
    return scan


def _parse_whole(data: bytes) -> dict | None:
    """A whole cell record, or None."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) and "model" in value else None


def read_records(run_dir: str | Path) -> list[CellRecord]:
    """The cells of a run as typed records, the latest record per cell key, in first-measured order.

    A truncated last line (a killed process) is skipped silently; an unreadable line elsewhere is
    skipped with a warning, because that is damage the user may want to know about.  A missing
    ``cells.jsonl`` is an empty run.
    """
    try:
        scan = scan_cells(run_dir)
    except FileNotFoundError:
        return []
    for number, _ in scan.damaged:
        warnings.warn(f"{Path(run_dir) / CELLS_FILE}:{number}: unreadable record skipped", stacklevel=3)
    return scan.cells


def read_cells(run_dir: str | Path) -> list[dict]:
    """:func:`read_records` as plain dicts, for readers that tabulate fields by name (the report,
    ``make compare``): every field of :class:`CellRecord` is present, whichever version wrote it."""
    return [cell.to_dict() for cell in read_records(run_dir)]


def read_run(run_dir: str | Path) -> RunRecord:
    """``run.json`` as a typed :class:`RunRecord`, whichever version wrote it (fields it lacks are
    ``None``, keys this version does not know are in ``extra``); an empty record when the file is
    missing (cells alone can be reported).

    Raises ``ValueError`` when it is not a JSON object."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        return RunRecord.from_dict({})
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return RunRecord.from_dict(data)


def read_run_dict(run_dir: str | Path) -> dict[str, Any]:
    """:func:`read_run` as the plain object of the file, for readers that tabulate it by key (the
    report's settings and environment tables); an empty dict when the file is missing."""
    return read_run(run_dir).to_dict()


class RunFolder:
    """A run folder opened for writing; ``lock`` is this process's ownership of it (:func:`open_run`)."""

    def __init__(self, path: Path, lock: RunLock | None = None) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "logs").mkdir(exist_ok=True)
        self._tail_checked = False  # cells.jsonl's last line is checked before the first append
        self.lock = lock

    def release(self) -> None:
        """Let another run open this folder (the end of a run; the process's end does it too)."""
        if self.lock is not None:
            self.lock.release()

    @property
    def run_id(self) -> str:
        return self.path.name

    def read_run(self) -> RunRecord:
        return read_run(self.path)

    def write_run(self, record: RunRecord) -> None:
        """Write run.json atomically, with no absolute path of this machine in it."""
        tmp = self.path / (RUN_FILE + ".tmp")
        data = record.to_dict()
        tmp.write_text(json.dumps(portable(json.loads(json.dumps(data, default=str))), indent=2))
        tmp.replace(self.path / RUN_FILE)

    def update_run(self, **changes: Any) -> RunRecord:
        """Set fields of the stored run record (``TypeError`` for a name that is not one)."""
        record = self.read_run()
        for name, value in changes.items():
            if name not in RUN_FIELDS:
                raise TypeError(f"run.json has no field {name!r}; add it to runstore.run_record.RunRecord")
            setattr(record, name, value)
        self.write_run(record)
        return record

    def end_partial_line(self) -> str | None:
        """Keep ``cells.jsonl`` one JSON object per line for every other reader (pandas, jq).

        A run killed mid-write leaves a partial last line; appending to it would glue the next
        record onto it.  The partial text is moved to ``cells.damaged`` (a record that is only
        missing its newline is kept and ended instead).  Returns what was done, to say once.
        """
        path = self.path / CELLS_FILE
        if not path.exists() or path.stat().st_size == 0:
            return None
        with open(path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return None
            f.seek(0)
            data = f.read()
            start = data.rfind(b"\n") + 1
            partial = data[start:]
            if _parse_whole(partial) is not None:  # measured and complete: only the newline is missing
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
                return f"{CELLS_FILE}: ended a last record that had no newline"
            with open(self.path / DAMAGED_FILE, "ab") as damaged:
                damaged.write(partial + b"\n")
                damaged.flush()
                os.fsync(damaged.fileno())
            f.truncate(start)
            f.flush()
            os.fsync(f.fileno())
        return (f"{CELLS_FILE}: moved a partial last line ({len(partial)} bytes, a run killed mid-write) "
                f"to {DAMAGED_FILE}; that cell is measured again")

    def append_cell(self, record: dict[str, Any]) -> None:
        if not self._tail_checked:
            self._tail_checked = True
            note = self.end_partial_line()
            if note:
                warnings.warn(note, stacklevel=2)
        with open(self.path / CELLS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def cells(self) -> list[dict[str, Any]]:
        return read_cells(self.path)

    def done_keys(self) -> set[tuple]:
        return {cell_key(r) for r in self.cells() if r.get("status") in DONE_STATUSES}
