"""Settling on real processes: a spinning worker is waited for, an idle one is not.

The scheduler waits before every round until the other workers are quiet (bench/quiet.py); these
tests use real child processes, since what matters is what /proc says of them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.quiet import (
    QUIET_WINDOW_S,
    SETTLE_MAX_S,
    _schedstat_seconds,
    _stat_seconds,
    cpu_seconds,
    reading,
    settle,
)

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")

# a child that says "go", spins on the CPU for SPIN seconds, says "done" and then sleeps
CHILD = """
import sys, time
print("go", flush=True)
end = time.perf_counter() + float(sys.argv[1])
while time.perf_counter() < end:
    pass
print("done", flush=True)
time.sleep(60)
"""


def start_child(spin_s: float) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(spin_s)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "go"
    return child


# a child that uses SPIN CPU seconds on a second thread, then on its main thread, keeps both
# threads alive (blocked) and says "done": its CPU time is about 2 x SPIN, over two threads (CPU
# time, not wall time: on a busy machine a wall-clock spin gets only a share of a core)
TWO_THREADS = """
import sys, threading, time
def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
spun, hold = threading.Event(), threading.Event()
def worker():
    spin(float(sys.argv[1]))
    spun.set()
    hold.wait()
threading.Thread(target=worker, daemon=True).start()
spun.wait()
spin(float(sys.argv[1]))
print("done", flush=True)
time.sleep(60)
"""


def test_cpu_time_has_nanosecond_resolution_and_counts_every_thread():
    # a fresh child: /proc/<pid>/stat also counts threads that have ended, schedstat only the live
    # ones, so a process whose thread pools came and went (this test process) would not compare
    child = subprocess.Popen([sys.executable, "-c", TWO_THREADS, "0.3"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "done"
        fine, coarse = _schedstat_seconds(child.pid), _stat_seconds(child.pid)
        assert fine is not None and coarse is not None
        assert fine >= 0.55, fine  # both threads' spins: one thread alone would be about 0.3
        assert abs(fine - coarse) < 0.1, (fine, coarse)  # the same clock, read at two resolutions
        assert fine != round(fine, 2)  # not whole clock ticks
        assert cpu_seconds(child.pid) == pytest.approx(fine, abs=0.05)
        assert settle([child.pid], max_s=5.0) < 5.0  # its main thread goes to sleep after "done"
        now = reading(child.pid)  # both threads blocked: neither running nor queued
        assert now is not None and now[1] is False and now[0] == pytest.approx(fine, abs=0.05)
    finally:
        child.kill()
        child.wait()
    assert cpu_seconds(2**22 + 7) is None  # no such process (above the default pid_max)


def test_settle_waits_for_a_spinning_worker_and_not_for_an_idle_one():
    child = start_child(0.4)
    try:
        spinning = reading(child.pid)
        assert spinning is not None and spinning[1] is True  # running, or queued on a busy machine
        waited = settle([child.pid], max_s=5.0)
        assert child.stdout is not None and child.stdout.readline().strip() == "done"
        # it waited for the spin to end (0.4 s, less the moment between "go" and the first reading)
        assert 0.2 <= waited < 4.0, waited
        again = settle([child.pid], max_s=5.0)  # now sleeping: quiet after one window
        assert QUIET_WINDOW_S <= again < 0.25, again
    finally:
        child.kill()
        child.wait()


def test_settle_gives_up_at_its_cap_and_tolerates_a_vanished_process():
    child = start_child(3.0)
    try:
        waited = settle([child.pid], max_s=0.2)
        assert 0.2 <= waited < 1.0, waited
    finally:
        child.kill()
        child.wait()
    assert settle([child.pid]) < SETTLE_MAX_S  # gone: nothing to wait for
