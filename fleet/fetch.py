"""Bring a finished run folder home, unchanged and verified.

The board's ``results/<device>/<run_id>/`` arrives as a tar stream into a staging folder next
to the laptop's results, is checked (``cells.jsonl``'s size and SHA-256 against the board's),
and only then renamed into ``results/<device>/<run_id>/``.  A folder already there is replaced
only by a copy that extends it (cells.jsonl is append-only, so a newer copy of the same run
starts with the old one's bytes); otherwise the incoming run is kept beside it with the board's
name appended — nothing on the laptop is overwritten by something that is not its successor.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from fleet.config import Board
from fleet.remote import Remote
from runstore.folder import read_run

CELLS = "cells.jsonl"


class FetchError(RuntimeError):
    pass


def file_digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return path.stat().st_size, h.hexdigest()


def safe_extract(tar_path: Path, dest: Path, top: str) -> None:
    """Extract only plain files and folders under ``top`` (no links, no absolute or .. paths)."""
    with tarfile.open(tar_path) as tar:
        members = []
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            if not parts or parts[0] != top or ".." in parts or member.name.startswith("/"):
                raise FetchError(f"unexpected path {member.name!r} in the copy of {top}")
            if not (member.isfile() or member.isdir()):
                continue
            members.append(member)
        # the "data" filter where this Python has it (3.10.12+, 3.11.4+): it also drops odd modes
        extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, members=members, **extra)


def extends(old: Path, new: Path) -> bool:
    """True when ``new``'s cells.jsonl starts with all of ``old``'s (the same run, further on)."""
    old_cells, new_cells = old / CELLS, new / CELLS
    if not old_cells.exists():
        return True
    if not new_cells.exists():
        return False
    old_bytes = old_cells.read_bytes()
    with open(new_cells, "rb") as f:
        return f.read(len(old_bytes)) == old_bytes


def fetch_run(remote: Remote, run_dir: str, results: Path, board: Board) -> Path:
    """Copy the board's ``run_dir`` (``results/<device>/<run_id>``) into ``results``; its path."""
    parts = PurePosixPath(run_dir).parts
    if len(parts) != 3 or parts[0] != "results":
        raise FetchError(f"{board.name}: unexpected run folder {run_dir!r}")
    device, run_id = parts[1], parts[2]
    expected = remote.manifest(run_dir)
    results.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".fleet-incoming-{board.name}-", dir=results))
    try:
        tar_path = staging / "run.tar"
        with open(tar_path, "wb") as sink:
            remote.pack(run_dir, sink)
        safe_extract(tar_path, staging, run_id)
        tar_path.unlink()
        incoming = staging / run_id
        size, digest = file_digest(incoming / CELLS)
        if str(size) != expected.get("size") or digest != expected.get("sha256"):
            raise FetchError(f"{board.name}: the copy of {run_dir}/{CELLS} does not match the board's "
                             f"({size} bytes, sha256 {digest[:12]} here; {expected.get('size')} bytes, "
                             f"sha256 {expected.get('sha256', '')[:12]} there)")
        dest = results / device / run_id
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() and not (same_board(dest, incoming) and extends(dest, incoming)):
            dest = free_name(results / device / f"{run_id}-{board.name}")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(incoming, dest)
        return dest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def same_board(old: Path, new: Path) -> bool:
    def host(p: Path) -> object:
        try:
            return read_run(p).host
        except (OSError, ValueError):
            return None
    return host(old) == host(new)


def free_name(path: Path) -> Path:
    if not path.exists():
        return path
    i = 2
    while Path(f"{path}-{i}").exists():
        i += 1
    return Path(f"{path}-{i}")
