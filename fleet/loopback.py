"""A throwaway OpenSSH server on 127.0.0.1, and "boards" behind it, for the tests and the benchmark.

A real ``sshd`` (Debian's ``openssh-server``), started as ``sshd -D -f CONFIG -h HOSTKEY -p PORT``
with a host key and a user key made for it by ``ssh-keygen``; the system's own sshd (if any)
is untouched.  The client side is an ``ssh_config`` file (``SSH_CONFIG=`` for ``make fleet``)
with one alias per board, the test's ``known_hosts`` and key, and aliases that fail on purpose
(a wrong key, an unknown or changed host key, a port nobody listens on).

:func:`board_venv` makes a board's virtual environment without a multi-GB install: a venv
over the same Python whose site-packages chains (one ``.pth`` line) to the environment
running this code, the way a Jetson's venv sees the system's torch through
``--system-site-packages``.  ``scripts/setup_env.sh`` then runs on it unchanged, keeps that
torch and finds every requirement satisfied (with ``PIP_NO_INDEX=1`` it cannot reach out).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")


def find_sshd() -> str | None:
    for path in SSHD_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("sshd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path, comment: str) -> str:
    """A new ed25519 key pair without passphrase; returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    return Path(str(path) + ".pub").read_text().strip()


class LoopbackServer:
    """An sshd on a free port of 127.0.0.1 with its own keys and a client config to reach it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.sshd = find_sshd()
        if self.sshd is None:
            raise FileNotFoundError("sshd not found (Debian: apt-get install openssh-server)")
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_key = self.root / "host_ed25519"
        self.host_pub = keygen(self.host_key, "wavebench-loopback-host")
        self.user_key = self.root / "id_user"
        user_pub = keygen(self.user_key, "wavebench-loopback-user")
        self.wrong_key = self.root / "id_wrong"
        keygen(self.wrong_key, "not-authorised")
        (self.root / "authorized_keys").write_text(user_pub + "\n")
        os.chmod(self.root / "authorized_keys", 0o600)
        other = self.root / "other_host"
        other_pub = keygen(other, "some-other-host")
        entry = f"[127.0.0.1]:{self.port}"
        self.known_hosts = self.root / "known_hosts"
        self.known_hosts.write_text(f"{entry} {' '.join(self.host_pub.split()[:2])}\n")
        (self.root / "known_hosts_changed").write_text(f"{entry} {' '.join(other_pub.split()[:2])}\n")
        (self.root / "known_hosts_empty").write_text("")
        self.sshd_config = self.root / "sshd_config"
        self.sshd_config.write_text("\n".join([
            "ListenAddress 127.0.0.1", f"AuthorizedKeysFile {self.root}/authorized_keys",
            "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes", "UsePAM no", "PermitRootLogin prohibit-password",
            "X11Forwarding no", "AllowTcpForwarding no", "PrintMotd no", "PrintLastLog no",
            f"PidFile {self.root}/sshd.pid", "MaxStartups 50:30:100", "MaxSessions 50",
            "LogLevel INFO", ""]))
        self.client_config = self.root / "ssh_config"
        self.aliases: dict[str, dict[str, str]] = {}
        self.proc: subprocess.Popen | None = None
        self.unused_port = free_port()

    def alias(self, name: str, **overrides: str) -> str:
        """A Host alias in the client config reaching this server (overrides: ssh_config options)."""
        options = {"HostName": "127.0.0.1", "Port": str(self.port), "User": self.user,
                   "IdentityFile": str(self.user_key), "IdentitiesOnly": "yes", "IdentityAgent": "none",
                   "UserKnownHostsFile": str(self.known_hosts), "GlobalKnownHostsFile": "/dev/null",
                   "ControlMaster": "no"}
        options.update(overrides)
        self.aliases[name] = options
        self._write_client_config()
        return name

    def failing_aliases(self) -> dict[str, str]:
        """Aliases that must fail, by what is wrong with them."""
        return {
            "unreachable": self.alias("no-board", Port=str(self.unused_port)),
            "wrong-key": self.alias("wrong-key", IdentityFile=str(self.wrong_key)),
            "changed-host-key": self.alias("changed-key", UserKnownHostsFile=str(self.root / "known_hosts_changed")),
            "unknown-host-key": self.alias("unknown-key", UserKnownHostsFile=str(self.root / "known_hosts_empty")),
        }

    def _write_client_config(self) -> None:
        lines = []
        for name, options in self.aliases.items():
            lines.append(f"Host {name}")
            lines += [f"  {k} {v}" for k, v in options.items()]
        self.client_config.write_text("\n".join(lines) + "\n")

    def start(self, timeout_s: float = 20.0) -> None:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation folder
        log = open(self.root / "sshd.log", "a")
        self.proc = subprocess.Popen([self.sshd, "-D", "-e", "-f", str(self.sshd_config), "-h", str(self.host_key),
                                      "-p", str(self.port)], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}: "
                                   f"{(self.root / 'sshd.log').read_text()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on port {self.port} within {timeout_s:g}s")

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener)."""
        if self.proc is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                found.append(int(entry.name))
        return found

    def cut(self) -> None:
        """The link drops: the listener and every connection die at once (SIGKILL); what the
        sessions started in their own session (a detached run) goes on."""
        if self.proc is None:
            return
        children = self.session_pids()
        for pid in [self.proc.pid, *children]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        self.cut()


def board_venv(path: Path) -> Path:
    """A venv at ``path`` chained to this interpreter's site-packages (see the module docstring)."""
    python = Path(path) / "bin" / "python"
    if python.exists():
        return Path(path)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(path)], check=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site, "wavebench-shared-site.pth").write_text(ours + "\n")
    return Path(path)


def snapshot_repo(source: Path, dest: Path) -> Path:
    """``source``'s working tree (tracked and untracked files, ignored ones left out) as one commit
    in a new repository at ``dest``: what the fleet ships is exactly what is being tested."""
    files = subprocess.run(["git", "-C", str(source), "ls-files", "-co", "--exclude-standard", "-z"],
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = Path(source) / rel
        if src.is_file() and not src.is_symlink():
            target = Path(dest) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read_bytes())
            target.chmod(src.stat().st_mode & 0o777)
    git = ["git", "-C", str(dest), "-c", "user.name=wavebench", "-c", "user.email=loopback@wavebench"]
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "loopback snapshot"], check=True)
    return Path(dest)
