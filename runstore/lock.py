"""One owner per run folder: the process measuring a run holds an exclusive ``flock`` on
``<run>/run.lock`` from the moment it chooses the folder until it ends.

Why: two ``make bench`` with the same settings started 20 s apart both chose the first's
unfinished run, both appended to one ``cells.jsonl`` (cells measured twice) and each disturbed
the other's timings.  Now the second one sees the first holding the run and is refused with
who holds it (:class:`RunInProgress`).

Why ``flock`` and not a pid file: the kernel releases the lock when its process ends, however
it ends (SIGKILL, an out-of-memory kill, power loss), so a stale lock is simply a free one — no
pid to test, no guessing whether a pid was re-used.  The file also says who holds it (host, pid,
command, since, settings hash), for the refusal's message and for ``make report``; a clean
release empties it, so a non-empty file that nobody holds is the trace of a run that died,
which the next run takes over (and says so).

Readers never take the lock: ``make report`` of a run being measured is not blocked, it only
asks :func:`holder_of` (a shared, non-blocking probe that is let go at once).

Choosing a folder and locking it is one step per device folder, serialised by a second flock
on the ``results/<device>/`` folder itself (held for milliseconds), so that two runs started at
the same instant see each other instead of each making a new folder unnoticed.  ``flock`` is a
local-file-system lock (Linux emulates it over NFS with POSIX locks, which other hosts see).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

LOCK_FILE = "run.lock"
# A free lock may be probed (make report) at the very moment a run takes it: the probe's shared
# lock lasts microseconds, so the run tries again for this long before it calls the lock taken.
TAKE_GRACE_S = 1.0


@dataclass(frozen=True)
class Holder:
    """Who measures a run: written into its lock file, named when another run is refused."""

    host: str
    pid: int
    command: str
    since: str
    settings_hash: str = ""

    @classmethod
    def this_process(cls, command: str, settings_hash: str) -> Holder:
        return cls(socket.gethostname(), os.getpid(), command, time.strftime("%Y-%m-%dT%H:%M:%S%z"), settings_hash)

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host} (`{self.command}`), since {self.since}"


def _parse_holder(data: bytes) -> Holder | None:
    """The holder written in a lock file; None when it is empty (released) or unreadable."""
    try:
        value = json.loads(data)
        return Holder(str(value["host"]), int(value["pid"]), str(value.get("command") or "?"),
                      str(value.get("since") or "?"), str(value.get("settings_hash") or ""))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


UNKNOWN = Holder("?", 0, "?", "?")  # a holder caught writing its name (a reader's probe, not an opener's)


def _try_flock(f: IO[bytes], operation: int) -> bool:
    try:
        fcntl.flock(f.fileno(), operation | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise


class RunInProgress(Exception):
    """Another process is measuring this run (or another run with the same settings)."""

    def __init__(self, run_dir: Path, holder: Holder) -> None:
        self.run_dir, self.holder = Path(run_dir), holder
        super().__init__(
            f"{run_dir} is being measured by another run with the same settings: {holder.describe()}. "
            "Two benchmarks at once on one machine disturb each other's timings: wait for it to finish, "
            "or stop it (Ctrl-C) and run the same command again to resume it")


def holder_of(run_dir: str | Path) -> Holder | None:
    """Who is measuring ``run_dir`` now, or None when nobody is.  Takes nothing: a reader's probe."""
    try:
        f = open(Path(run_dir) / LOCK_FILE, "rb")
    except FileNotFoundError:
        return None
    with f:
        if _try_flock(f, fcntl.LOCK_SH):
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return None
        return _parse_holder(f.read()) or UNKNOWN


def live_runs(device_dir: Path) -> list[tuple[Path, Holder]]:
    """The run folders of ``device_dir`` that a process is measuring now, with who."""
    found = []
    for lock in sorted(device_dir.glob(f"*/{LOCK_FILE}")):
        holder = holder_of(lock.parent)
        if holder is not None:
            found.append((lock.parent, holder))
    return found


class RunLock:
    """This process's exclusive lock on one run folder; :meth:`release` (or the process's end) frees it."""

    def __init__(self, run_dir: Path, file: IO[bytes], holder: Holder, previous: Holder | None) -> None:
        self.run_dir, self.holder = run_dir, holder
        self.previous = previous  # who held it last without releasing it: a run that died
        self._file: IO[bytes] | None = file

    @classmethod
    def take(cls, run_dir: Path, holder: Holder, grace_s: float = TAKE_GRACE_S) -> RunLock:
        """Lock ``run_dir`` for ``holder`` (this process); raises :class:`RunInProgress` when it is held."""
        f = open(Path(run_dir) / LOCK_FILE, "a+b")  # created if missing, never emptied before it is held
        deadline = time.monotonic() + grace_s
        while not _try_flock(f, fcntl.LOCK_EX):
            if time.monotonic() >= deadline:
                f.seek(0)
                current = _parse_holder(f.read()) or UNKNOWN
                f.close()
                raise RunInProgress(run_dir, current)
            time.sleep(0.01)
        f.seek(0)
        previous = _parse_holder(f.read())
        f.truncate(0)
        f.write(json.dumps(asdict(holder)).encode())
        f.flush()
        return cls(run_dir, f, holder, previous)

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        """Empty the file (a clean end leaves no trace of a holder) and let go; idempotent."""
        if self._file is None:
            return
        f, self._file = self._file, None
        with f:
            f.truncate(0)
            f.flush()
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextmanager
def opening(device_dir: Path) -> Iterator[None]:
    """Lock the device folder itself while choosing and locking a run folder in it: one process
    at a time.  A lock on the folder writes nothing into ``results/``; where the file system
    cannot lock a folder (NFS), choosing goes on unserialised: each run folder's own lock still
    keeps it to one owner, only two runs started at the same instant may then both start."""
    device_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(device_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocking: each holder keeps it for milliseconds
        except OSError:  # a folder this file system cannot lock (Ctrl-C while waiting is KeyboardInterrupt)
            pass
        yield
    finally:
        os.close(fd)  # closing lets the lock go
