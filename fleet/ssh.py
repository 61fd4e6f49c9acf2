"""The SSH transport: the system OpenSSH client, with one shared connection per board.

Why the system client (and not asyncssh or paramiko): it is the user's own SSH — every line of
``~/.ssh/config`` (aliases, ``Match``, ``ProxyJump``, certificates, hardware keys), the agent
and ``known_hosts`` work exactly as they do in a terminal, and nothing new is installed.
The options forced on every call make it safe to run unattended:

- ``BatchMode=yes``: never a password or passphrase prompt in the middle of a run (a missing
  key fails at once, and :func:`classify` says how to set one up);
- ``StrictHostKeyChecking=yes``: an unknown or changed host key fails, never auto-accepted;
- ``ServerAliveInterval``/``CountMax``: a silently dead link is noticed within ~15 s;
- ``ControlMaster``/``ControlPath``: a poll every few seconds reuses one authenticated
  connection (a board's sshd forks one short session, no key exchange).  The master is a child
  process the laptop owns (:class:`Connection`), so nothing outlives ``make fleet``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Sequence

SSH_CONFIG_ENV = "SSH_CONFIG"   # an ssh_config file to use instead of ~/.ssh/config (tests, CI)
FORCED = ("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ServerAliveInterval=5",
          "-o", "ServerAliveCountMax=3", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR")


class SshError(RuntimeError):
    """``ssh`` itself failed (exit 255): ``reason`` is one line for the user; ``lasting`` tells a
    refused key or a bad host key (retrying cannot help) from a network failure (it can)."""

    def __init__(self, reason: str, lasting: bool, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.lasting, self.detail = reason, lasting, detail


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def classify(host: str, stderr: str) -> SshError:
    """Turn ssh's own error output into one line saying what is wrong and what to do."""
    text = stderr.strip()
    last = text.splitlines()[-1] if text else "no output"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key for" in text and "has changed" in text:
        return SshError(f"host key CHANGED for {host} — refused (a re-imaged board, or someone in the "
                        f"middle); if you expect it: ssh-keygen -R <host>, check the new fingerprint, "
                        f"ssh {host} once by hand", lasting=True, detail=text)
    if "Host key verification failed" in text or "No " in text and "host key is known" in text:
        return SshError(f"unknown host key for {host} — refused (never auto-accepted): ssh {host} once "
                        f"by hand and check the fingerprint it shows", lasting=True, detail=text)
    if "Permission denied" in text or "Too many authentication failures" in text:
        return SshError(f"key refused by {host} (no password prompts in a fleet run): set up a key "
                        f"with ssh-keygen -t ed25519 && ssh-copy-id {host}", lasting=True, detail=text)
    for marker in ("Connection refused", "timed out", "No route to host", "Could not resolve",
                   "Network is unreachable", "Connection reset", "Connection closed",
                   "closed by remote host", "Broken pipe", "not resolve hostname", "port 22: ",
                   "kex_exchange_identification", "Timeout, server"):
        if marker in text:
            return SshError(f"{host} unreachable: {last}", lasting=False, detail=text)
    return SshError(f"ssh to {host} failed: {last}", lasting=False, detail=text)


class Connection:
    """Runs commands on one board; keeps a shared master connection open while it is useful."""

    def __init__(self, host: str, control_dir: Path, tag: str, config: str | None = None) -> None:
        self.host = host
        self.config = config if config is not None else os.environ.get(SSH_CONFIG_ENV) or None
        # one master per board, even when two boards are one machine (%C: host, port, user)
        self.control_path = str(control_dir / f"{tag}-%C")
        self.master: subprocess.Popen | None = None

    def base_argv(self, master: bool = False) -> list[str]:
        argv = ["ssh"]
        if self.config:
            argv += ["-F", self.config]
        argv += list(FORCED)
        argv += ["-o", f"ControlPath={self.control_path}",
                 "-o", "ControlMaster=" + ("yes" if master else "no"), "-o", "ControlPersist=no"]
        return argv

    def run(self, command: Sequence[str] | str, input: bytes | str | None = None,
            timeout: float = 120.0, check_ssh: bool = True) -> Result:
        """Run ``command`` (a string for the remote shell, or argv quoted for it) on the board.

        Raises :class:`SshError` when ssh itself fails (exit 255) and ``check_ssh``; the remote
        command's own exit code is returned.  ``subprocess.TimeoutExpired`` becomes a (not lasting)
        SshError: a link that stopped answering.
        """
        remote = command if isinstance(command, str) else " ".join(quote(c) for c in command)
        argv = self.base_argv() + ["-T", self.host, "--", remote]
        data = input.encode() if isinstance(input, str) else input
        try:
            proc = subprocess.run(argv, input=data, stdin=None if data is not None else subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SshError(f"{self.host} unreachable: no answer within {timeout:g}s", lasting=False) from None
        out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        if proc.returncode == 255 and check_ssh:
            raise classify(self.host, err)
        return Result(proc.returncode, out, err)

    def pipe_out(self, command: str, sink, timeout: float = 600.0) -> Result:
        """Run ``command`` with its stdout written to the open binary file ``sink`` (a tar stream)."""
        argv = self.base_argv() + ["-T", self.host, "--", command]
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.PIPE,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SshError(f"{self.host} unreachable: copy took over {timeout:g}s", lasting=False) from None
        err = proc.stderr.decode(errors="replace")
        if proc.returncode == 255:
            raise classify(self.host, err)
        return Result(proc.returncode, "", err)

    def pipe_in(self, command: str, write: Callable[[IO[bytes]], None], timeout: float = 3600.0) -> Result:
        """Run ``command`` with its stdin fed by ``write`` (a tar stream of files too large to hold
        in memory); its output is kept in temporary files, so neither side can block the other."""
        argv = self.base_argv() + ["-T", self.host, "--", command]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err)
            assert proc.stdin is not None
            try:
                write(proc.stdin)
            except BrokenPipeError:
                pass  # the board stopped reading: its exit status and message say why
            finally:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise SshError(f"{self.host} unreachable: copy took over {timeout:g}s", lasting=False) from None
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if proc.returncode == 255:
            raise classify(self.host, stderr)
        return Result(proc.returncode, stdout, stderr)

    def ensure_master(self) -> None:
        """(Re)start the shared connection when it is not running; never blocks on it: until it
        is up, commands connect on their own (``ControlMaster=no`` falls back to a direct link)."""
        if self.master is not None and self.master.poll() is None:
            return
        self.master = subprocess.Popen(self.base_argv(master=True) + ["-N", self.host],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)

    def close(self) -> None:
        if self.master is not None and self.master.poll() is None:
            self.master.terminate()
            try:
                self.master.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.master.kill()
                self.master.wait()
        self.master = None


def quote(text: str) -> str:
    """Quote one word for the board's POSIX shell (``~`` is expanded by board.sh, not here)."""
    return shlex.quote(text)


def control_dir() -> Path:
    """A short private folder for the control sockets (a socket path must stay under ~100 bytes)."""
    base = "/tmp" if os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix="wbfleet-", dir=base))


def remove_control_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
