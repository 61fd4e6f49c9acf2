"""One board's course, run in its own thread: reach it, ship the commit, start (or re-attach
to) the run, follow it until it ends, bring the results home.

Every failure ends this board only, with its reason and the board's log tail: the other boards
go on.  A dropped link is retried every poll until ``reconnect_timeout_s`` (the run goes on on
the board meanwhile); a refused key or a bad host key is not retried.  The waits are
``Event.wait(poll_s)``, so a stop request (Ctrl-C) ends the thread within one poll.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fleet.artifacts import Shipment
from fleet.config import Board
from fleet.fetch import FetchError, fetch_run
from fleet.lock import LockWait, holder_name
from fleet.progress import Bars, plan_size
from fleet.remote import Remote, RemoteError, Status, current_cell, log_tail
from fleet.ship import Archive, ShipError
from fleet.ssh import Connection, SshError
from runstore.folder import read_run
from runstore.run_record import RunRecord


@dataclass(frozen=True)
class Options:
    results: Path                       # the laptop's results folder
    poll_s: float = 5.0
    lock_timeout_s: float = 600.0
    reconnect_timeout_s: float = 900.0


@dataclass
class Outcome:
    """How a board ended: ``finished`` (results home), ``failed`` or ``detached`` (Ctrl-C)."""

    board: Board
    state: str = "failed"
    reason: str = ""
    local_run: Path | None = None
    exit_code: int | None = None        # the suite's exit code on the board
    log: str = ""
    counts: dict[str, int] = field(default_factory=dict)


class Detached(Exception):
    """The laptop was told to stop following (Ctrl-C); the board's run goes on."""


class BoardDriver:
    def __init__(self, board: Board, conn: Connection, archive: Archive, options: Options,
                 bars: Bars, stop: threading.Event, shipment: Shipment | None = None) -> None:
        self.board, self.conn, self.archive, self.options = board, conn, archive, options
        self.remote = Remote(board, conn)
        self.bars, self.stop = bars, stop
        self.shipment = shipment  # the laptop's edge-runtime artifacts this board's run can use
        self.run_id = board.run_id(archive.commit.sha, shipment.digest if shipment else "")
        self.outcome = Outcome(board)
        self.total: int | None = None

    # -- the course -------------------------------------------------------------------------
    def run(self) -> Outcome:
        try:
            self._course()
        except Detached:
            self.outcome.state, self.outcome.reason = "detached", "still running on the board"
        except SshError as exc:
            self.outcome.reason = exc.reason
        except (RemoteError, FetchError, ShipError) as exc:
            self.outcome.reason = str(exc)
        except Exception as exc:  # one board's surprise must not end the others
            self.outcome.reason = f"{type(exc).__name__}: {exc}"
        if self.outcome.state == "failed":
            self.bars.update(self.board.name, None, None, "FAILED")
        return self.outcome

    def _course(self) -> None:
        name = self.board.name
        self.bars.update(name, None, None, "connecting")
        if not self.remote.has_commit(self.archive.commit.sha):   # first contact: fails fast
            self.bars.update(name, None, None, f"shipping commit {self.archive.commit.short}")
            self.remote.unpack(self.archive.commit.sha, self.archive.data())
        self.conn.ensure_master()
        self._ship_artifacts()
        self._start()
        status = self._follow()
        self._finish(status)

    def _ship_artifacts(self) -> None:
        """The edge-runtime artifacts this board's run can use (fleet/artifacts.py), once per set."""
        if self.shipment is None:
            return
        shipment = self.shipment
        if self.remote.has_artifacts(shipment.digest):
            self.bars.message(self.board.name, f"edge-runtime artifacts already there: {shipment.describe()}")
            return
        self.bars.update(self.board.name, None, None, f"shipping {shipment.describe()}")
        self.remote.ship_artifacts(shipment.digest, shipment.write_tar)
        self.bars.message(self.board.name, f"shipped {shipment.describe()} (checksums verified on the board)")

    def _environment(self) -> dict[str, str]:
        shipped = {"WAVEBENCH_ARTIFACTS": self.shipment.digest} if self.shipment else {}
        return {**self.board.settings, **self.board.env, **shipped}

    def _start(self) -> None:
        wait = LockWait(self.options.lock_timeout_s)
        said_busy = False
        while True:
            reply = self.remote.start(self.run_id, self.archive.commit.sha, holder_name(self.run_id),
                                      self._environment())
            if reply.state == "busy":
                if not wait.busy(reply.info):
                    raise RemoteError(f"{wait.message()}; gave up after {self.options.lock_timeout_s:g}s "
                                      f"(LOCK_TIMEOUT=seconds waits longer)")
                if not said_busy:
                    self.bars.message(self.board.name, f"busy: {wait.message()}; waiting up to "
                                                       f"{self.options.lock_timeout_s:g}s (LOCK_TIMEOUT)")
                    said_busy = True
                self.bars.update(self.board.name, None, None, "waiting for the board's lock")
                self._sleep()
                continue
            words = {"started": f"started fleet run {self.run_id} (profile {self.board.profile})",
                     "attached": f"re-attached to fleet run {self.run_id}, running since "
                                 f"{reply.info.get('since', '?')}",
                     "finished": f"fleet run {self.run_id} had already finished; fetching its results"}
            self.bars.message(self.board.name, words.get(reply.state, f"start answered {reply.state!r}"))
            return

    def _follow(self) -> Status:
        lost_since: float | None = None
        while True:
            try:
                status = self.remote.status(self.run_id)
            except SshError as exc:
                if exc.lasting:
                    raise
                now = time.monotonic()
                if lost_since is None:
                    lost_since = now
                    self.bars.message(self.board.name, f"connection lost ({exc.reason}); the run goes on on "
                                                       f"the board; retrying every {self.options.poll_s:g}s")
                elif now - lost_since > self.options.reconnect_timeout_s:
                    raise SshError(f"connection lost for over {self.options.reconnect_timeout_s:g}s "
                                   f"({exc.reason}); the run goes on on the board: run the same command "
                                   f"again to re-attach", lasting=False) from None
                self.bars.update(self.board.name, None, self.total, "connection lost, retrying")
                self._sleep()
                continue
            if lost_since is not None:
                self.bars.message(self.board.name, "reconnected")
                lost_since = None
                self.conn.ensure_master()
            self.outcome.log = status.log
            if status.state != "running":
                return status
            self._show(status)
            self._sleep()

    def _show(self, status: Status) -> None:
        if status.run_dir and self.total is None:
            try:
                # run.json's text as the board has it (no local folder yet): parsed here, once
                run = RunRecord.from_dict(json.loads(self.remote.read_file(status.run_dir + "/run.json")))
                self.total = plan_size(run)
            except (ValueError, RemoteError):
                self.total = None
        if status.phase == "setup":
            note = "setting up the board's venv"
        elif not status.run_dir:
            note = "starting"
        else:
            note = current_cell(status.log) or "running"
        self.bars.update(self.board.name, status.cells if status.run_dir else None, self.total, note)

    def _finish(self, status: Status) -> None:
        tail = log_tail(status.log)
        if status.state == "dead":
            raise RemoteError(f"the run died on the board (no exit code: killed, out of memory or a "
                              f"reboot); the same command resumes it\n{indent(tail)}")
        if status.state != "finished":
            raise RemoteError(f"the board has no run {self.run_id} (state {status.state})")
        if status.exit.startswith("setup-runtimes-failed"):
            raise RemoteError(f"installing the optional runtimes on the board failed ({status.exit}; what make "
                              f"setup-runtimes RUNTIMES={self.board.settings.get('RUNTIMES', '')} runs)\n{indent(tail)}")
        if status.exit.startswith("setup-failed"):
            raise RemoteError(f"the board's set-up (scripts/setup_env.sh) failed ({status.exit})\n{indent(tail)}")
        try:
            code = int(status.exit)
        except ValueError:
            raise RemoteError(f"the run ended with {status.exit!r}\n{indent(tail)}") from None
        self.outcome.exit_code = code
        if code == 2:
            raise RemoteError(f"the board refused the settings (exit 2)\n{indent(tail)}")
        if code not in (0, 1):
            what = "was interrupted on the board" if code == 130 else f"ended with exit code {code}"
            raise RemoteError(f"the run {what}; the same command resumes it\n{indent(tail)}")
        if not status.run_dir:
            raise RemoteError(f"the run ended but wrote no run folder\n{indent(tail)}")
        self.bars.update(self.board.name, status.cells, self.total, "copying the results home")
        local = fetch_run(self.remote, status.run_dir, self.options.results, self.board)
        self.outcome.local_run = local
        try:
            self.outcome.counts = read_run(local).counts or {}
        except (OSError, ValueError):
            self.outcome.counts = {}
        self.outcome.state = "finished"
        self.bars.update(self.board.name, status.cells, self.total, "done")

    def _sleep(self) -> None:
        if self.stop.wait(self.options.poll_s):
            raise Detached()


def indent(text: str) -> str:
    return "\n".join("    | " + line for line in text.splitlines()) if text else "    | (empty log)"
