"""What is shipped to the boards: the exact commit the laptop has, as a ``git archive``.

Uncommitted changes to tracked files are refused (they would not be on the boards, and the
results would claim a commit that did not produce them); ``ALLOW_DIRTY=1`` ships the last
commit anyway and says so.  Untracked files are never shipped (results/, .venv/ ...).
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class ShipError(ValueError):
    """No commit to ship (not a git checkout, or uncommitted changes); exit code 2."""


@dataclass(frozen=True)
class Commit:
    sha: str
    dirty: list[str]          # tracked files with uncommitted changes (shipped without them)

    @property
    def short(self) -> str:
        return self.sha[:12]


def git(*args: str, repo: Path = REPO_ROOT) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ShipError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def current_commit(allow_dirty: bool, repo: Path = REPO_ROOT) -> Commit:
    try:
        sha = git("rev-parse", "--verify", "HEAD", repo=repo).strip()
    except ShipError:
        raise ShipError(f"{repo} is not a git checkout with a commit; make fleet ships a commit "
                        "(git archive), clone the project with git") from None
    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no", repo=repo).splitlines()
             if line.strip()]
    if dirty and not allow_dirty:
        shown = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        raise ShipError(f"uncommitted changes ({shown}) would not reach the boards: commit or stash them, "
                        f"or ALLOW_DIRTY=1 to ship commit {sha[:12]} without them")
    return Commit(sha, dirty)


class Archive:
    """``git archive`` of the commit, made once and only if some board lacks it."""

    def __init__(self, commit: Commit, repo: Path = REPO_ROOT) -> None:
        self.commit, self.repo = commit, repo
        self._data: bytes | None = None
        self._lock = threading.Lock()

    def data(self) -> bytes:
        with self._lock:
            if self._data is None:
                proc = subprocess.run(["git", "-C", str(self.repo), "archive", "--format=tar", self.commit.sha],
                                      capture_output=True)
                if proc.returncode != 0:
                    raise ShipError(f"git archive {self.commit.short} failed: {proc.stderr.decode().strip()}")
                self._data = proc.stdout
            return self._data
