"""A worker that dies while a process it forked keeps its answer pipe open (OpenVINO's helper did,
under an emulator): the supervisor sees the death at once, says how it died, and kills what is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from bench.supervisor import WorkerSupervisor

DIES_LEAVING_A_CHILD = """
import os, signal, sys, time
child = os.fork()
if child == 0:
    time.sleep(120)  # holds the copy of stdout it inherited
    os._exit(0)
print('{"type": "ready", "child": %d}' % child, flush=True)
time.sleep(0.2)
os.kill(os.getpid(), signal.SIGSEGV)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


def test_a_dead_worker_is_seen_although_its_child_holds_the_pipe(tmp_path):
    sup = WorkerSupervisor(job=None, log_path=tmp_path / "w.log", cell_timeout_s=60, load_timeout_s=60)  # type: ignore[arg-type]
    sup.proc = subprocess.Popen([sys.executable, "-c", DIES_LEAVING_A_CHILD], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
    threading.Thread(target=sup._pump, daemon=True).start()
    ready = sup.next_message(30)
    assert isinstance(ready, dict) and ready["type"] == "ready"
    child = int(ready["child"])
    start = time.monotonic()
    assert sup.next_message(60) is None  # the end of stream: the worker's exit, not the pipe's close
    assert time.monotonic() - start < 20  # far under the 60 s it would otherwise wait
    assert alive(child)  # the child still holds the pipe
    assert sup.exited() and sup.proc.returncode is None  # seen, not reaped: its group number stays reserved
    assert sup.await_exit(0.1)
    sup.kill()  # as the schedule does: the leftovers first, then how the worker ended
    status, text = sup.exit_description()
    assert status == "error" and text.startswith(f"worker died with signal {int(signal.SIGSEGV)}")
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
    sup.kill()  # a second kill does nothing


def test_a_live_worker_still_times_out(tmp_path):
    sup = WorkerSupervisor(job=None, log_path=tmp_path / "w.log", cell_timeout_s=60, load_timeout_s=60)  # type: ignore[arg-type]
    sup.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
    threading.Thread(target=sup._pump, daemon=True).start()
    assert sup.next_message(1.2) == "timeout"
    assert not sup.exited() and not sup.await_exit(0.2)
    sup.kill()
    assert sup.proc.returncode == -signal.SIGKILL
