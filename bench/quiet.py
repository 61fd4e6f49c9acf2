"""Waiting until the other workers are quiet before a round is timed.

An idle ONNX Runtime or OpenMP thread pool spins for a while after a call and would steal a core
from the runtime being measured next; a worker that just answered may still be encoding its
reply.  The scheduler therefore waits, before every round and canary, until the other live
workers stop using CPU.

How quiet is read matters for the wall time of a run: the suite waits before every round (about
1,500 of them in the lab suite).  ``/proc/<pid>/stat`` counts CPU time in clock ticks (10 ms), so
"no growth" can only be told over 20 ms or more, and every round paid for it (76 s of a 12-minute
``make bench``: ``docs/benchmarks/suite-time.md``).  ``/proc/<pid>/task/<tid>/schedstat`` counts
each thread's run time in nanoseconds, so a window of :data:`QUIET_WINDOW_S` with almost no CPU
(:data:`QUIET_SHARE` of it) says quiet in about 10 ms.

On a busy machine a spinning thread can wait on the run queue for longer than that window and use
no CPU in it; it is not quiet, it is queued.  schedstat's second field is that wait, so what a
window counts is a thread's *demand* (run time plus run-queue wait): a preempted spinner demands a
full core, a blocked thread nothing.  schedstat covers the live threads only (/proc/<pid>/stat also
counts the ended ones), which is what a window's difference needs.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path

QUIET_POLL_S = 0.002  # how often the other workers' CPU time is read
QUIET_WINDOW_S = 0.01  # quiet = this long with (almost) no CPU time used by any other worker
QUIET_SHARE = 0.05  # "almost": under 5% of one core over the window (bookkeeping threads, a reply's tail)
SETTLE_MAX_S = 0.5  # never wait longer than this for a quiet side
SETTLE_FALLBACK_S = 0.05  # without /proc: a fixed wait (ORT's and libgomp's spin lasts milliseconds)


def _schedstat_seconds(pid: int, fields: int = 1) -> float | None:
    """Seconds summed over every live thread of ``pid``, nanosecond resolution (schedstat): run
    time with ``fields=1``, run time plus run-queue wait with ``fields=2``."""
    total, found = 0, False
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            values = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
            total += sum(int(v) for v in values[:fields])
            found = True
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between listing and reading
    return total / 1e9 if found else None


def _stat_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` in clock ticks (all threads), where schedstat is off."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds used so far by a process, all its live threads included (Linux /proc); None
    when it cannot be read (no such process, not Linux)."""
    if pid is None:
        return None
    found = _schedstat_seconds(pid)
    return found if found is not None else _stat_seconds(pid)


def demand_seconds(pid: int | None) -> float | None:
    """Seconds a process's live threads ran or waited to run (schedstat), so far; CPU seconds where
    schedstat is off; None when it cannot be read."""
    if pid is None:
        return None
    found = _schedstat_seconds(pid, fields=2)
    return found if found is not None else _stat_seconds(pid)


def settle(pids: list[int], poll_s: float = QUIET_POLL_S, window_s: float = QUIET_WINDOW_S,
           max_s: float = SETTLE_MAX_S) -> float:
    """Wait until none of ``pids`` ran or waited to run for more than :data:`QUIET_SHARE` of the
    last ``window_s``; the seconds waited (at most about ``max_s``)."""
    if not pids:
        return 0.0
    start = time.perf_counter()
    first = [demand_seconds(p) for p in pids]
    if all(v is None for v in first):
        time.sleep(SETTLE_FALLBACK_S)
        return time.perf_counter() - start
    readings: deque[tuple[float, list[float | None]]] = deque([(start, first)])
    while True:
        time.sleep(poll_s)
        now = time.perf_counter()
        current = [demand_seconds(p) for p in pids]
        # the oldest reading at least a window ago is where the window starts
        while len(readings) > 1 and now - readings[1][0] >= window_s:
            readings.popleft()
        since, before = readings[0]
        if now - since >= window_s:
            used = max((b - a for a, b in zip(before, current) if a is not None and b is not None), default=0.0)
            if used <= QUIET_SHARE * (now - since):
                return now - start
        if now - start >= max_s:
            return now - start
        readings.append((now, current))
