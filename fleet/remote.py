"""Run control on one board: each operation is one short SSH command running ``board.sh``.

The board keeps, under its wavebench folder (``~/wavebench`` by default)::

    code/<commit>/       the shipped commit (git archive), one folder per commit
    venv/                the virtual environment, set up by scripts/setup_env.sh
    results/             the suite's results (results/<device>/<run_id>/, as with make bench)
    artifacts/<digest>/  edge-runtime artifacts from the laptop (make export), checked, one folder per set
    runs/<fleet run>/    pid, log, exit, phase, run_dir: what the laptop polls
    lock, lock.holder    the board's lock (flock) and who holds it since when

A fleet run's name (:meth:`fleet.config.Board.run_id`) depends only on the commit, the board
and the settings, so the same command finds its run again: re-attaching to it while it runs,
or starting it again (the suite resumes) when it ended early.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

from fleet.config import Board
from fleet.ssh import Connection, Result, quote

BOARD_SH = (Path(__file__).with_name("board.sh")).read_text()
JOB_SH = (Path(__file__).with_name("job.sh")).read_text()
JOB_MARK = "#--job--#"


class RemoteError(RuntimeError):
    """The board answered, but not as expected (a full disk, a missing tool)."""


@dataclass
class StartReply:
    state: str                 # started | attached | finished | busy
    info: dict[str, str] = field(default_factory=dict)


@dataclass
class Status:
    state: str                 # running | finished | dead | none
    phase: str = ""            # setup | run
    exit: str = ""             # the job's exit: a number or "setup-failed N"
    run_dir: str = ""          # results/<device>/<run_id> relative to the board's folder
    cells: int | None = None   # lines in cells.jsonl
    log: str = ""              # the log's last bytes


def parse_fields(text: str) -> tuple[dict[str, str], str]:
    """``key=value`` lines up to ``--log--``; the rest is returned as is."""
    head, _, rest = text.partition("--log--\n")
    fields = {}
    for line in head.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return fields, rest


class Remote:
    def __init__(self, board: Board, conn: Connection) -> None:
        self.board, self.conn = board, conn

    def call(self, command: str, *args: str, input: bytes | str | None = None, timeout: float = 120.0) -> Result:
        argv = ["sh", "-c", BOARD_SH, "wavebench-fleet", command, self.board.dir, *args]
        result = self.conn.run(argv, input=input, timeout=timeout)
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise RemoteError(f"{self.board.name}: {command} failed on the board (exit {result.returncode}): {tail}")
        return result

    def has_commit(self, commit: str) -> bool:
        return self.call("have", commit).stdout.strip() == "yes"

    def unpack(self, commit: str, archive: bytes) -> None:
        self.call("unpack", commit, input=archive, timeout=600)

    def has_artifacts(self, digest: str) -> bool:
        return self.call("have-artifacts", digest).stdout.strip() == "yes"

    def ship_artifacts(self, digest: str, write: Callable[[IO[bytes]], None], timeout: float = 3600.0) -> None:
        """Stream a tar of edge-runtime artifacts (``write`` writes it) into ``artifacts/<digest>/``;
        the board keeps it only when every file's sha256 is the manifest's."""
        argv = ["sh", "-c", BOARD_SH, "wavebench-fleet", "artifacts", self.board.dir, digest]
        result = self.conn.pipe_in(" ".join(quote(a) for a in argv), write, timeout=timeout)
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise RemoteError(f"{self.board.name}: shipping the edge-runtime artifacts failed "
                              f"(exit {result.returncode}): {tail}")

    def start(self, run_id: str, commit: str, holder: str, environment: dict[str, str]) -> StartReply:
        env_lines = "".join(f"export {k}={quote(v)}\n" for k, v in sorted(environment.items()))
        payload = env_lines + JOB_MARK + "\n" + JOB_SH
        out = self.call("start", run_id, commit, self.board.profile, self.board.venv_path, holder,
                        input=payload).stdout
        fields, _ = parse_fields(out)
        return StartReply(fields.pop("state", "?"), fields)

    def status(self, run_id: str, log_bytes: int = 1500) -> Status:
        fields, log = parse_fields(self.call("status", run_id, str(log_bytes), timeout=60).stdout)
        cells = fields.get("cells")
        return Status(state=fields.get("state", "?"), phase=fields.get("phase", ""), exit=fields.get("exit", ""),
                      run_dir=fields.get("run_dir", ""), cells=int(cells) if cells and cells.isdigit() else None,
                      log=log)

    def read_file(self, relative: str) -> str:
        return self.call("file", relative).stdout

    def manifest(self, run_dir: str) -> dict[str, str]:
        return parse_fields(self.call("manifest", run_dir).stdout)[0]

    def pack(self, run_dir: str, sink) -> None:
        argv = ["sh", "-c", BOARD_SH, "wavebench-fleet", "pack", self.board.dir, run_dir]
        result = self.conn.pipe_out(" ".join(quote(a) for a in argv), sink)
        if result.returncode != 0:
            raise RemoteError(f"{self.board.name}: copying {run_dir} failed: {result.stderr.strip()[-300:]}")

    def stop(self, run_id: str, wait_s: int = 60) -> str:
        fields, _ = parse_fields(self.call("stop", run_id, str(wait_s), timeout=wait_s + 60).stdout)
        return fields.get("state", "?")


def log_tail(log: str, lines: int = 8) -> str:
    """The last lines of a board's log, progress-bar redraws (\\r) reduced to their last state."""
    out = []
    for line in log.replace("\r\n", "\n").split("\n"):
        line = line.split("\r")[-1].rstrip()
        if line:
            out.append(line)
    return "\n".join(out[-lines:])


def current_cell(log: str) -> str:
    """The cell being measured, from the suite's progress bar (``tera onnxruntime b1 4s: 40%|...``)."""
    for segment in reversed(log.replace("\n", "\r").split("\r")):
        if "|" in segment and ":" in segment:
            description = segment.split(":")[0].strip()
            if description and "%" not in description and "|" not in description:
                return description
    return ""
