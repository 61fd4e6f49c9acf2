"""One user at a time per board: who holds a board's lock, and how long to wait for it.

The lock itself is ``flock`` on ``<board folder>/lock``, taken by ``board.sh start`` and held
by the started job until it ends (so a crashed laptop never leaves a board locked, and a
finished run frees it at once).  ``lock.holder`` says who took it and when; a second laptop
waits, polling, with one message naming them, and gives up after ``LOCK_TIMEOUT`` seconds.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from dataclasses import dataclass


def holder_name(run_id: str) -> str:
    """How this laptop names itself in a board's lock: user@host, process, fleet run."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} (pid {os.getpid()}, fleet run {run_id})"


@dataclass
class LockWait:
    """Waiting for a busy board: the first refusal starts the clock."""

    timeout_s: float
    started: float | None = None
    holder: str = ""
    since: str = ""

    def busy(self, info: dict[str, str], now: float | None = None) -> bool:
        """Record a refusal; True while it is still worth waiting."""
        now = time.monotonic() if now is None else now
        if self.started is None:
            self.started = now
        self.holder, self.since = info.get("holder", "someone"), info.get("since", "an unknown time")
        return now - self.started < self.timeout_s

    def message(self) -> str:
        return f"locked by {self.holder} since {self.since}"
