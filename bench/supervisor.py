"""One worker process and its messages: start it, send it commands, read its answers with a
timeout, kill it, and say why it ended.

The worker reads its job and then its commands from stdin, and answers in JSON lines on stdout
(``worker/process.py``); a reader thread turns those lines into a queue so that a hung worker
becomes a timeout here instead of a hung suite.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.job import WorkerJob

REPO_ROOT = Path(__file__).resolve().parent.parent
EXIT_POLL_S = 0.5  # how often a wait for a message looks whether the worker has exited
EXIT_GRACE_S = 1.0  # after its exit, how long the reader thread gets to hand over its last lines


class WorkerSupervisor:
    """Runs one worker process for a group of cells and relays its messages with timeouts."""

    def __init__(self, job: WorkerJob, log_path: Path, cell_timeout_s: float, load_timeout_s: float) -> None:
        self.job, self.log_path = job, log_path
        self.cell_timeout_s, self.load_timeout_s = cell_timeout_s, load_timeout_s
        self.proc: subprocess.Popen | None = None
        self.messages: queue.Queue = queue.Queue()
        self.killed = False

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log, cwd=str(REPO_ROOT), env=env,
                                     text=True, start_new_session=True)
        log.close()
        self.send(self.job.to_dict())
        threading.Thread(target=self._pump, daemon=True).start()

    def send(self, message: dict[str, Any]) -> bool:
        """Write one command line; False when the worker is gone (its exit says why)."""
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def close_input(self) -> None:
        """End of commands: the worker finishes, says ``done`` and exits."""
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.messages.put(json.loads(line))
            except ValueError:
                continue
        self.messages.put(None)  # end of stream

    def next_message(self, timeout: float) -> dict[str, Any] | None | str:
        """A message, ``None`` at end of stream, or ``"timeout"``.

        The end of stream is also the worker's own exit: a process the worker forked (a library's
        helper: OpenVINO's under an emulator, seen in docs/platforms.md) keeps a copy of its answer
        pipe open after it died, and waiting for the pipe to close would wait out the cell's timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            try:
                return self.messages.get(timeout=min(left, EXIT_POLL_S))
            except queue.Empty:
                if not self.exited():
                    continue
            try:  # exited: what it wrote before is read within the grace; then the stream has ended
                return self.messages.get(timeout=EXIT_GRACE_S)
            except queue.Empty:
                return None

    def exited(self) -> bool:
        """Whether the worker process has ended, without reaping it: its pid (and so its process
        group's number) stays reserved until :meth:`kill` has signalled what it left behind."""
        if self.proc is None or self.proc.returncode is not None:
            return True
        if not hasattr(os, "waitid"):  # macOS: poll() reaps, the group number may then be reused
            return self.proc.poll() is not None
        try:
            found = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return found is not None

    def await_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the worker to end (not reaped); whether it has."""
        deadline = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def kill(self) -> None:
        """The worker and whatever it left in its session (it is a session leader: its pid is the
        group's), also when the worker itself has already exited."""
        if self.proc is None or self.killed:
            return
        self.killed = True  # once: a later pid of that number is another process's
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            if self.proc.poll() is None:
                self.proc.kill()
        self.proc.wait()

    def exit_description(self) -> tuple[str, str]:
        """(status, message) for a worker that ended without finishing its cells."""
        assert self.proc is not None
        code = self.proc.wait()
        tail = _log_tail(self.log_path)
        if code in (-signal.SIGKILL, 137):
            return "oom", f"worker killed by SIGKILL (exit {code}), most likely out of memory; {tail}"
        if code < 0:
            return "error", f"worker died with signal {-code}; {tail}"
        return "error", f"worker exited with code {code}; {tail}"


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = [l for l in path.read_text().splitlines() if l.strip()]
    except OSError:
        return "no log"
    return "log: " + " | ".join(text[-lines:])[-500:] if text else "empty log"
