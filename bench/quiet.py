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
(:data:`QUIET_SHARE` of it) says quiet in about 5 ms.

On a busy machine a spinning thread can wait on the run queue for longer than that window and use
no CPU in it; it is not quiet, it is queued.  Nor does schedstat see it: the kernel adds to a
thread's run time at its scheduler tick (every 1-4 ms) and to its queue wait only when it runs
again.  What does see it is the thread's state (``/proc/<pid>/task/<tid>/stat``): ``R``, running
or waiting to run, at once.  A window is quiet when no thread of the other workers was in state
``R`` at any reading in it and their run time grew by almost nothing.  (schedstat covers the live
threads only, while ``/proc/<pid>/stat`` also counts the ended ones: a window's difference needs
the former.)
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path

QUIET_POLL_S = 0.002  # how often the other workers' CPU time is read
QUIET_WINDOW_S = 0.005  # quiet = this long with (almost) no CPU time used or waited for by any other worker
QUIET_SHARE = 0.05  # "almost": under 5% of one core over the window (bookkeeping threads, a reply's tail)
SETTLE_MAX_S = 0.5  # never wait longer than this for a quiet side
SETTLE_FALLBACK_S = 0.05  # without /proc: a fixed wait (ORT's and libgomp's spin lasts milliseconds)


def _threads(pid: int) -> tuple[float, bool] | None:
    """Run time of every live thread of ``pid`` in seconds (schedstat, nanosecond resolution), and
    whether any of them is running or waiting to run (state ``R``); None when not readable."""
    total, found, running = 0, False, False
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            found = True
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between listing and reading
        running = running or stat[stat.rindex(")") + 2:stat.rindex(")") + 3] == "R"
    return (total / 1e9, running) if found else None


def _schedstat_seconds(pid: int) -> float | None:
    """Run time of every live thread of ``pid`` in seconds, nanosecond resolution (schedstat)."""
    found = _threads(pid)
    return found[0] if found is not None else None


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


def reading(pid: int) -> tuple[float, bool] | None:
    """(CPU seconds so far, a thread running or queued now) for a process; the CPU seconds in clock
    ticks, never "running", where only ``/proc/<pid>/stat`` can be read; None when nothing can."""
    found = _threads(pid)
    if found is not None:
        return found
    coarse = _stat_seconds(pid)
    return (coarse, False) if coarse is not None else None


def settle(pids: list[int], poll_s: float = QUIET_POLL_S, window_s: float = QUIET_WINDOW_S,
           max_s: float = SETTLE_MAX_S) -> float:
    """Wait until, over the last ``window_s``, no thread of ``pids`` was running or queued at a
    reading and none used more than :data:`QUIET_SHARE` of a core; the seconds waited (at most
    about ``max_s``)."""
    if not pids:
        return 0.0
    start = time.perf_counter()
    first = [reading(p) for p in pids]
    if all(v is None for v in first):
        time.sleep(SETTLE_FALLBACK_S)
        return time.perf_counter() - start
    readings: deque[tuple[float, list[tuple[float, bool] | None]]] = deque([(start, first)])
    while True:
        time.sleep(poll_s)
        now = time.perf_counter()
        current = [reading(p) for p in pids]
        readings.append((now, current))
        # the oldest reading at least a window ago is where the window starts
        while len(readings) > 2 and now - readings[1][0] >= window_s:
            readings.popleft()
        since, before = readings[0]
        if now - since >= window_s:
            used = max((b[0] - a[0] for a, b in zip(before, current) if a is not None and b is not None),
                       default=0.0)
            queued = any(r is not None and r[1] for _, rs in readings for r in rs)
            if not queued and used <= QUIET_SHARE * (now - since):
                return now - start
        if now - start >= max_s:
            return now - start
