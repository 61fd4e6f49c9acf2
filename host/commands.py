"""Running external commands (``vcgencmd``, ``tegrastats``, ``nvidia-smi``) through one injectable runner.

Readers (the energy sensors, the environment fingerprint, the platform detector) never call
:mod:`subprocess` themselves: they get a :class:`CommandRunner`, so tests can replay recorded
output (see :class:`energy.fakes.FakeRunner`) and a user can wrap commands (``ssh pi ...``)
without touching the readers.  :func:`command_output` is the fingerprint's "never raises" view.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str = ""

    @property
    def output(self) -> str:
        """stdout and stderr together: some tools print their refusals on either."""
        return (self.stdout + "\n" + self.stderr).strip()


class LineStream(Protocol):
    """Lines of a long-running command (``tegrastats``), and a way to stop it."""

    def __iter__(self) -> Iterator[str]: ...

    def close(self) -> None: ...


class CommandRunner(Protocol):
    def run(self, argv: Sequence[str], timeout: float = 5.0) -> CommandResult:
        """Run to completion.  Raises ``FileNotFoundError`` when the program does not exist."""
        ...

    def stream(self, argv: Sequence[str]) -> LineStream:
        """Start a command that prints lines until closed.  ``FileNotFoundError`` if missing."""
        ...


class _PopenStream:
    def __init__(self, argv: Sequence[str]) -> None:
        self._proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
        )

    def __iter__(self) -> Iterator[str]:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            yield line.rstrip("\n")

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class SubprocessRunner:
    """The real runner."""

    def run(self, argv: Sequence[str], timeout: float = 5.0) -> CommandResult:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)

    def stream(self, argv: Sequence[str]) -> LineStream:
        return _PopenStream(argv)


def command_output(argv: Sequence[str], runner: CommandRunner | None = None, timeout: float = 3.0) -> str | None:
    """The stripped stdout of a successful command; ``None`` when it is missing, fails, is too
    slow or prints nothing.  Never raises: a runner must never break the environment fingerprint."""
    if not argv:
        return None
    try:
        result = (runner or SubprocessRunner()).run(list(argv), timeout=timeout)
    except Exception:
        return None
    if result.returncode != 0:
        return None
    return str(result.stdout).strip() or None
