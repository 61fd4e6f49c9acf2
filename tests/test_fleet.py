"""``make fleet`` against a real OpenSSH server on 127.0.0.1 (``fleet/loopback.py``).

Two "boards" are two folders behind one ``sshd``; their runs see a Raspberry Pi 5 and a Jetson
AGX Orin through ``WAVEBENCH_SYSFS_ROOT``.  The laptop is ``python -m fleet`` run from a
temporary git repository holding this working tree as one commit (what is shipped is what is
tested).  Each board's venv chains to the test's environment (``loopback.board_venv``), so the
project's set-up script runs for real without installing gigabytes.

Skipped (with the reason) only when no ``sshd`` can be found; ``WAVEBENCH_REQUIRE_SSHD=1``
(set by ``.ci/run``) turns that skip into a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from background_shell import SIGINT_IGNORED

from fleet import loopback
from fleet.config import ConfigError, load_fleet, parse_hosts

ROOT = Path(__file__).resolve().parent.parent
HAVE_SSHD = loopback.find_sshd() is not None and bool(subprocess.run(
    ["sh", "-c", "command -v ssh ssh-keygen flock setsid"], capture_output=True).returncode == 0)
if not HAVE_SSHD and os.environ.get("WAVEBENCH_REQUIRE_SSHD") == "1":
    raise RuntimeError("WAVEBENCH_REQUIRE_SSHD=1 but sshd/ssh/ssh-keygen/flock/setsid are missing "
                       "(Debian: apt-get install openssh-server)")
needs_sshd = pytest.mark.skipif(not HAVE_SSHD, reason="no sshd here (apt-get install openssh-server); "
                                                     "WAVEBENCH_REQUIRE_SSHD=1 makes this a failure")

SETTINGS = {"MODELS": "logmel,apc", "RUNTIMES": "onnxruntime", "PROVIDERS": "CPUExecutionProvider",
            "BATCH_SIZES": "1", "DURATIONS": "0.5,1", "THREADS": "1", "REPS": "3", "QUICK": "1",
            "TINY": "1", "ENERGY": "none", "NO_PEAK": "1"}
CELLS_PER_BOARD = 4
PI_MODEL = "Raspberry Pi 5 Model B Rev 1.0"
ORIN_MODEL = "NVIDIA Jetson AGX Orin Developer Kit"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
    return root


def pi_tree(root: Path) -> Path:
    cpuinfo = "".join(f"processor\t: {i}\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n\n" for i in range(4))
    return write_tree(root, {"/proc/cpuinfo": cpuinfo + f"Model\t\t: {PI_MODEL}\n",
                             "/proc/device-tree/model": PI_MODEL.encode() + b"\x00",
                             "/proc/meminfo": "MemTotal: 8388608 kB\nMemAvailable: 7340032 kB\n"})


def orin_tree(root: Path) -> Path:
    cpuinfo = "".join(f"processor\t: {i}\nCPU implementer\t: 0x41\nCPU part\t: 0xd42\n\n" for i in range(4))
    return write_tree(root, {"/proc/cpuinfo": cpuinfo,
                             "/proc/device-tree/model": ORIN_MODEL.encode() + b"\x00",
                             "/proc/device-tree/compatible": b"nvidia,p3737-0000\x00nvidia,tegra234\x00",
                             "/etc/nv_tegra_release": "# R35 (release), REVISION: 4.1, BOARD: t186ref\n",
                             "/proc/meminfo": "MemTotal: 33554432 kB\nMemAvailable: 29360128 kB\n"})


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The sshd, the laptop's repository and the boards' shared venv (made once per module)."""
    if not HAVE_SSHD:
        pytest.skip("no sshd")
    root = tmp_path_factory.mktemp("fleet")
    server = loopback.LoopbackServer(root / "ssh")
    server.alias("pi-board")
    server.alias("orin-board")
    failing = server.failing_aliases()
    server.start()
    repo = loopback.snapshot_repo(ROOT, root / "laptop")
    venv = loopback.board_venv(root / "board-venv")
    trees = {"pi": pi_tree(root / "sys-pi"), "orin": orin_tree(root / "sys-orin")}
    yield {"server": server, "repo": repo, "venv": venv, "trees": trees, "root": root, "failing": failing}
    server.stop()


class Laptop:
    """``python -m fleet`` from the lab's repository, with a board folder per test."""

    def __init__(self, lab, tmp_path: Path) -> None:
        self.lab, self.tmp = lab, tmp_path
        self.results = tmp_path / "laptop-results"

    def fleet_toml(self, boards: dict[str, dict], name: str = "fleet.toml", **settings: str) -> Path:
        lines = ["[settings]"] + [f'{k} = "{v}"' for k, v in {**SETTINGS, **settings}.items()]
        for board, extra in boards.items():
            lines += ["", "[[board]]", f'host = "{extra.get("host", board)}"', f'profile = "{extra["profile"]}"',
                      f'name = "{board}"', f'dir = "{self.tmp / ("board-" + board)}"',
                      f'venv = "{self.lab["venv"]}"']
            lines += ["[board.env]", 'PIP_NO_INDEX = "1"', 'PIP_DISABLE_PIP_VERSION_CHECK = "1"',
                      f'WAVEBENCH_SYSFS_ROOT = "{extra["tree"]}"']
        path = self.tmp / name
        path.write_text("\n".join(lines) + "\n")
        return path

    def two_boards(self, **settings: str) -> Path:
        return self.fleet_toml({"pi-board": {"profile": "auto", "tree": self.lab["trees"]["pi"]},
                                "orin-board": {"profile": "jetson", "tree": self.lab["trees"]["orin"]}},
                               **settings)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("HOSTS", "FLEET", "STOP") and k not in SETTINGS}
        env.update({"SSH_CONFIG": str(self.lab["server"].client_config), "RESULTS_DIR": str(self.results),
                    "POLL": "0.3", "PYTHONPATH": str(self.lab["repo"])})
        env.update(extra)
        return env

    def popen(self, args: list[str], sigint_ignored: bool = False, **extra: str) -> subprocess.Popen:
        """``sigint_ignored``: started as a shell without job control starts a background command."""
        prefix = SIGINT_IGNORED if sigint_ignored else []
        return subprocess.Popen([*prefix, sys.executable, "-m", "fleet", *args], cwd=self.lab["repo"],
                                env=self.env(**extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)

    def start(self, args: list[str], sigint_ignored: bool = False, **extra: str) -> "Running":
        return Running(self.popen(args, sigint_ignored, **extra))

    def run(self, args: list[str], timeout: float = 420, **extra: str) -> tuple[int, str]:
        proc = self.popen(args, **extra)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            pytest.fail(f"fleet did not end within {timeout}s:\n{out}")
        return proc.returncode, out


class Running:
    """A laptop process whose output lines are collected as they come (a reader thread)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.lines = proc, []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def out(self) -> str:
        return "".join(self.lines)

    def wait_line(self, text: str, timeout: float = 300) -> str:
        return wait_for(lambda: next((l for l in self.lines if text in l), None), repr(text), timeout, self)

    def finish(self, timeout: float = 420) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"fleet did not end within {timeout}s:\n{self.out}")
        self.reader.join(10)
        return code, self.out


def board_runs(board_dir: Path) -> list[Path]:
    return sorted(p.parent for p in (board_dir / "results").glob("*/*/run.json"))


def cell_keys(run_dir: Path) -> list[tuple]:
    lines = (run_dir / "cells.jsonl").read_text().splitlines()
    return [(r["model"], r["runtime"], r["batch_size"], r["duration_s"]) for r in map(json.loads, lines)]


def wait_for(predicate, what: str, timeout: float = 300, running: "Running | None" = None):
    """Poll until ``predicate()`` is truthy (a deadline only to turn a hang into a failure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if running is not None and running.proc.poll() is not None:
            running.reader.join(10)
            value = predicate()
            if value:
                return value
            pytest.fail(f"fleet ended ({running.proc.returncode}) before {what}:\n{running.out}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}" + (f":\n{running.out}" if running else ""))


def job_pid(board_dir: Path) -> int | None:
    pids = list((board_dir / "runs").glob("*/pid")) if (board_dir / "runs").exists() else []
    return int(pids[0].read_text()) if pids and pids[0].read_text().strip() else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


# -- configuration: refused up front, nothing contacted ---------------------------------------

@pytest.mark.parametrize("hosts, message", [
    ("pi@rpi5.local", "has no profile"),
    ("pi@rpi5.local:toaster", "unknown profile 'toaster'; valid: cpu, gpu, jetson, rpi, auto"),
    ("-oProxyCommand=x:rpi", "is not [user@]host"),
    ("pi@:rpi", "is not [user@]host"),
    ("a:rpi,a:cpu", "listed twice"),
    (" , ", "HOSTS is empty"),
])
def test_bad_hosts_entries_are_refused(hosts, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_hosts(hosts, {})


def test_hosts_give_every_board_the_settings_and_a_stable_run_name():
    boards = parse_hosts("pi@rpi5.local:rpi, orin:jetson", {"MODELS": "tera"})
    assert [(b.host, b.profile, b.name, b.dir) for b in boards] == [
        ("pi@rpi5.local", "rpi", "rpi5.local", "~/wavebench"), ("orin", "jetson", "orin", "~/wavebench")]
    assert boards[0].settings == {"MODELS": "tera"} and boards[0].venv_path == "~/wavebench/venv"
    again = parse_hosts("pi@rpi5.local:rpi", {"MODELS": "tera"})[0]
    assert again.run_id("c1") == boards[0].run_id("c1") != boards[0].run_id("c2")
    assert parse_hosts("pi@rpi5.local:rpi", {"MODELS": "apc"})[0].run_id("c1") != boards[0].run_id("c1")


def test_fleet_file_layers_settings_and_refuses_bad_entries(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[settings]\nMODELS = "tera"\nREPS = 5\n\n[[board]]\nhost = "pi@rpi5"\nprofile = "rpi"\n'
                    '[board.settings]\nTHREADS = 4\nREPS = 7\n[board.env]\nCPU_AFFINITY = "2"\n\n'
                    '[[board]]\nhost = "orin"\nprofile = "jetson"\ndir = "/data/wb"\n')
    pi, orin = load_fleet(path, {"MODELS": "apc"})
    assert pi.settings == {"MODELS": "apc", "REPS": "7", "THREADS": "4"} and pi.env == {"CPU_AFFINITY": "2"}
    assert orin.settings == {"MODELS": "apc", "REPS": "5"} and orin.dir == "/data/wb"
    for text, message in [('[[board]]\nhost = "x"\n', "unknown profile ''"),
                          ('[[board]]\nhost = "x"\nprofile = "rpi"\nport = 22\n', "unknown key 'port'"),
                          ('[settings]\nMODLES = "x"\n[[board]]\nhost = "x"\nprofile = "rpi"\n', "unknown setting 'MODLES'"),
                          ('[settings]\nMODELS = "x"\n', "no \\[\\[board\\]\\] entries"),
                          ('[[board]]\nhost = "x"\nprofile = "rpi"\n[[board]]\nhost = "x"\nprofile = "cpu"\nname = "y"\n',
                           "two boards use x:~/wavebench"),
                          ("[[board]\n", "not valid TOML")]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_fleet(path, {})
    with pytest.raises(ConfigError, match="no such file"):
        load_fleet(tmp_path / "absent.toml", {})


def test_cli_bad_entries_exit_2_before_contacting_anything(tmp_path):
    env = {**os.environ, "RESULTS_DIR": str(tmp_path / "r")}
    for extra, message in [({"HOSTS": "pi@rpi5.local:toaster"}, "unknown profile 'toaster'"),
                           ({}, "exactly one of HOSTS="),
                           ({"HOSTS": "a:rpi", "FLEET": "f.toml"}, "exactly one of HOSTS="),
                           ({"HOSTS": "a:rpi", "POLL": "soon"}, "POLL='soon' is not a number")]:
        proc = subprocess.run([sys.executable, "-m", "fleet"], cwd=ROOT, capture_output=True, text=True,
                              env={k: v for k, v in {**env, **extra}.items() if k not in ("HOSTS", "FLEET") or k in extra})
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


# -- the loopback fleet ----------------------------------------------------------------------

@needs_sshd
def test_whole_fleet_run_ends_in_a_comparison(lab, tmp_path):
    laptop = Laptop(lab, tmp_path)
    code, out = laptop.run(["--fleet", str(laptop.two_boards())])
    assert code == 0, out
    local = {p.parent.parent.name: p.parent for p in laptop.results.glob("*/*/cells.jsonl")}
    assert set(local) == {"rpi", "jetson"}, out   # auto chose rpi from the Pi tree
    for device, board in (("rpi", "pi-board"), ("jetson", "orin-board")):
        (remote,) = board_runs(tmp_path / f"board-{board}")
        assert remote.parent.name == device
        # copied back unchanged
        assert (local[device] / "cells.jsonl").read_bytes() == (remote / "cells.jsonl").read_bytes()
        assert sorted(p.name for p in local[device].iterdir()) == sorted(p.name for p in remote.iterdir())
        run = json.loads((local[device] / "run.json").read_text())
        assert run["counts"] == {"ok": CELLS_PER_BOARD} and run["status"] == "complete"
        assert len(cell_keys(remote)) == CELLS_PER_BOARD
    pi_run = json.loads((local["rpi"] / "run.json").read_text())
    orin_run = json.loads((local["jetson"] / "run.json").read_text())
    assert pi_run["device_name"] == PI_MODEL and orin_run["device_name"] == ORIN_MODEL
    assert "Raspberry Pi" in pi_run["profile_note"]
    compare_md = next(laptop.results.glob("compare/*/compare.md"))
    text = compare_md.read_text()
    assert "rpi" in text and "jetson" in text
    assert f"comparison (device): {compare_md}" in out
    assert f"pi-board: finished — {CELLS_PER_BOARD} ok; results in {local['rpi']}" in out
    # nothing left running on the boards; the lock is free
    for board in ("pi-board", "orin-board"):
        pid = job_pid(tmp_path / f"board-{board}")
        assert pid is not None and not alive(pid)
    # the same command again: finished runs are fetched again, nothing is measured twice
    code, again = laptop.run(["--fleet", str(laptop.two_boards())])
    assert code == 0 and "had already finished" in again
    for board in ("pi-board", "orin-board"):
        (remote,) = board_runs(tmp_path / f"board-{board}")
        assert len(cell_keys(remote)) == CELLS_PER_BOARD


ONE_BOARD = {"MODELS": "logmel", "RUNTIMES": "pytorch", "DURATIONS": "0.5,1,1.5,2"}


@needs_sshd
def test_make_fleet_order_grouped_runs_the_board_grouped(lab, tmp_path):
    # `make fleet ORDER=grouped`: make exports ORDER to python -m fleet, which forwards it to the
    # board (setting_defs: ORDER is forwarded) -- before, the board measured interleaved without a word
    laptop = Laptop(lab, tmp_path)
    toml = laptop.fleet_toml({"pi-board": {"profile": "rpi", "tree": lab["trees"]["pi"]}},
                             MODELS="logmel", RUNTIMES="pytorch,onnxruntime", DURATIONS="0.5")
    code, out = laptop.run(["--fleet", str(toml)], ORDER="grouped")
    assert code == 0, out
    (remote,) = board_runs(tmp_path / "board-pi-board")
    run = json.loads((remote / "run.json").read_text())
    assert run["settings"]["order"] == "grouped" and run["counts"] == {"ok": 2}
    records = [json.loads(line) for line in (remote / "cells.jsonl").read_text().splitlines() if line.strip()]
    assert sorted(r["runtime"] for r in records) == ["onnxruntime", "pytorch"]
    assert {r["order"] for r in records} == {"grouped"}


@needs_sshd
@pytest.mark.skipif(importlib.util.find_spec("executorch") is None,
                    reason="executorch is not installed (make setup-runtimes RUNTIMES=executorch)")
def test_edge_artifacts_made_on_the_laptop_are_shipped_and_used_on_the_board(lab, tmp_path, monkeypatch):
    # make export RUNTIMES=executorch DEVICE=rpi on the laptop (in this process: the boards' venv chains to it)
    import export.__main__ as export_main

    laptop = Laptop(lab, tmp_path)
    for name in ("RUNTIMES", "DEVICE", "MODELS", "BATCH_SIZES", "DURATIONS", "GRID", "QUICK", "ONNX_DIR",
                 "ARTIFACTS_DIR", "FRESH", "WEIGHTS", "TINY"):
        monkeypatch.delenv(name, raising=False)
    assert export_main.main(["--runtimes", "executorch", "--device", "rpi", "--models", "logmel", "--tiny", "--quick",
                             "--batch-sizes", "1", "--durations", "0.25", "--results", str(laptop.results)]) == 0
    toml = laptop.fleet_toml({"pi-board": {"profile": "rpi", "tree": lab["trees"]["pi"]}},
                             MODELS="logmel", RUNTIMES="executorch", DURATIONS="0.25")
    code, out = laptop.run(["--fleet", str(toml)])
    assert code == 0, out
    # the cell's program, the fidelity probe's and the drift canary's (runners/canary.py)
    assert "pi-board gets 3 executorch artifact(s)" in out and "checksums verified on the board" in out
    board = tmp_path / "board-pi-board"
    (shipped,) = [p.parent for p in (board / "artifacts").glob("*/.complete")]
    assert len(json.loads((shipped / "manifest.json").read_text())["artifacts"]) == 3
    log = next((board / "runs").glob("*/log")).read_text()
    assert "setup-runtimes: executorch is installed" in log   # RUNTIMES' optional runtime, set up remote-side
    (local,) = list(laptop.results.glob("rpi/*/cells.jsonl"))
    (cell,) = [json.loads(line) for line in local.read_text().splitlines() if line.strip()]
    assert cell["runtime"] == "executorch" and cell["status"] == "ok", cell["error"]
    made_on = f"from manifest (made on {socket.gethostname()}, {platform.machine()})"
    assert cell["extra"]["runtime_artifact"] == made_on and cell["extra"]["runtime_export_s"] is None
    assert cell["output_cosine"] > 0.9999   # the probe's program came from the manifest too
    run = json.loads((local.parent / "run.json").read_text())
    assert str(tmp_path) not in json.dumps(run["settings"])   # the board's folders are not in the record


def measured(board_dir: Path) -> int:
    """Complete records in the board's run so far (0 before the run folder exists)."""
    runs = board_runs(board_dir)
    return sum(1 for line in (runs[0] / "cells.jsonl").read_text().splitlines() if line.endswith("}")) \
        if runs and (runs[0] / "cells.jsonl").exists() else 0


def assert_each_cell_once(board_dir: Path, n: int) -> None:
    (run,) = board_runs(board_dir)
    keys = cell_keys(run)
    assert len(keys) == n and len(set(keys)) == n, keys


def pending_sigint(pid: int) -> bool:
    """SIGINT is pending for the (stopped) process ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    masks = [int(line.split()[1], 16) for line in status.splitlines() if line.startswith(("SigPnd", "ShdPnd"))]
    return any(mask & (1 << (signal.SIGINT - 1)) for mask in masks)


def suite_pid(job: int) -> int:
    """The suite's Python process under the board's job (same process group)."""
    def find():
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                    cmd = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[3]) == job and b"runners" in cmd:
                    return int(entry.name)
        return None
    return wait_for(find, "the suite process on the board")


@needs_sshd
def test_a_cut_link_mid_run_is_retried_and_the_run_completes_once(lab, tmp_path):
    laptop, server = Laptop(lab, tmp_path), lab["server"]
    toml = laptop.fleet_toml({"pi-board": {"profile": "rpi", "tree": lab["trees"]["pi"]}}, **ONE_BOARD)
    board = tmp_path / "board-pi-board"
    running = laptop.start(["--fleet", str(toml)])
    wait_for(lambda: measured(board) >= 1, "a first cell", running=running)
    job = job_pid(board)
    os.killpg(job, signal.SIGSTOP)          # the board's run holds still while the link is down
    try:
        server.cut()                        # sshd and every session die: the link drops
        running.wait_line("connection lost")
        assert alive(job)                   # the run is detached from the dropped sessions
        server.start()                      # the same board comes back on the same address
        running.wait_line("reconnected")
    finally:
        if server.proc is None:
            server.start()
        os.killpg(job, signal.SIGCONT)
    code, out = running.finish()
    assert code == 0, out
    assert "1 ok" not in out and "4 ok" in out
    assert_each_cell_once(board, 4)
    local = list(laptop.results.glob("rpi/*/cells.jsonl"))
    assert len(local) == 1 and local[0].read_bytes() == (board_runs(board)[0] / "cells.jsonl").read_bytes()


def paused_after_first_cell(lab, tmp_path, sigint_ignored: bool = False):
    """A laptop that started one Pi board's run, paused (SIGSTOP on the board's job) once the first
    cell is written: the board's run then stays going, not finished, for as long as a test needs."""
    laptop = Laptop(lab, tmp_path)
    toml = str(laptop.fleet_toml({"pi-board": {"profile": "rpi", "tree": lab["trees"]["pi"]}}, **ONE_BOARD))
    board = tmp_path / "board-pi-board"
    running = laptop.start(["--fleet", toml], sigint_ignored)
    wait_for(lambda: measured(board) >= 1, "a first cell", running=running)
    job = job_pid(board)
    os.killpg(job, signal.SIGSTOP)
    return laptop, toml, board, running, job


@needs_sshd
def test_ctrl_c_leaves_the_run_going_re_attach_stop_and_resume(lab, tmp_path):
    # started with SIGINT ignored, as from a script or `make fleet &`: Ctrl-C must still work
    laptop, toml, board, running, job = paused_after_first_cell(lab, tmp_path, sigint_ignored=True)
    try:
        os.killpg(running.proc.pid, signal.SIGINT)   # Ctrl-C in the laptop's terminal: the fleet and its ssh
        code, out = running.finish()
        assert code == 130, out
        assert "the boards' runs go on" in out and "run the same command again" in out and "STOP=1" in out
        assert alive(job)
        # none of this laptop's ssh processes is left (its control sockets are in wbfleet-* folders;
        # its ssh config names this test's lab, so other runs on the machine do not count)
        mine = str(lab["server"].client_config).encode()
        assert not [p for p in Path("/proc").iterdir()
                    if p.name.isdigit() and _cmdline_has(p, b"wbfleet-") and _cmdline_has(p, mine)]
        # the same command re-attaches to the run still going
        again = laptop.start(["--fleet", toml])
        again.wait_line("re-attached to fleet run")
        # STOP=1: Ctrl-C for the board's run; it keeps its cells
        stopper = laptop.start(["--fleet", toml, "--stop"])
        wait_for(lambda: pending_sigint(suite_pid(job)), "the stop signal to reach the board's run")
    finally:
        os.killpg(job, signal.SIGCONT)
    code, out = stopper.finish()
    assert code == 0 and "pi-board: stopped" in out, out
    code, out = again.finish()
    assert code == 1 and "the run was interrupted on the board; the same command resumes it" in out, out
    done = measured(board)
    assert 1 <= done < 4 or done == 4   # what was measured before the stop is kept
    run_json = json.loads((board_runs(board)[0] / "run.json").read_text())
    assert run_json["status"] == "interrupted"
    # and the same command resumes it: every cell exactly once
    code, out = laptop.run(["--fleet", toml])
    assert code == 0 and "started fleet run" in out, out
    assert_each_cell_once(board, 4)


def _cmdline_has(proc_dir: Path, text: bytes) -> bool:
    try:
        return text in (proc_dir / "cmdline").read_bytes()
    except OSError:
        return False


@needs_sshd
def test_a_board_that_dies_mid_run_fails_with_its_log_and_resumes(lab, tmp_path):
    laptop, toml, board, running, job = paused_after_first_cell(lab, tmp_path)
    before = measured(board)
    os.killpg(job, signal.SIGKILL)           # the board "dies": no exit code is ever written
    code, out = running.finish()
    assert code == 1, out
    assert "pi-board: FAILED — the run died on the board" in out and "    | " in out
    assert not list(laptop.results.glob("rpi/*"))
    code, out = laptop.run(["--fleet", toml])
    assert code == 0, out
    assert "resuming" in (next((board / "runs").glob("*/log")).read_text())
    assert_each_cell_once(board, 4)
    assert before >= 1


@needs_sshd
def test_two_laptops_race_for_one_board(lab, tmp_path):
    laptop = Laptop(lab, tmp_path)
    pi = {"pi-board": {"profile": "rpi", "tree": lab["trees"]["pi"]}}
    first = laptop.fleet_toml(pi, "a.toml", MODELS="logmel", RUNTIMES="pytorch", DURATIONS="0.5,1")
    second = laptop.fleet_toml(pi, "b.toml", MODELS="logmel", RUNTIMES="pytorch", DURATIONS="0.5,1.5")
    third = laptop.fleet_toml(pi, "c.toml", MODELS="logmel", RUNTIMES="pytorch", DURATIONS="1")
    board = tmp_path / "board-pi-board"
    a = laptop.start(["--fleet", str(first)])
    b = laptop.start(["--fleet", str(second)])
    busy = wait_for(lambda: next((r for r in (a, b) if any("busy: locked by" in l for l in r.lines)), None),
                    "one laptop to find the board locked")
    winner = b if busy is a else a
    line = busy.wait_line("busy: locked by")
    assert f"(pid {winner.proc.pid}, fleet run" in line and " since 20" in line and "LOCK_TIMEOUT" in line
    job = wait_for(lambda: job_pid(board), "the winner's job")
    os.killpg(job, signal.SIGSTOP)           # the winner holds the board for as long as this takes
    try:
        code, out = laptop.run(["--fleet", str(third)], LOCK_TIMEOUT="0.5")
        assert code == 1, out
        assert "FAILED — locked by" in out and f"(pid {winner.proc.pid}" in out and "gave up after 0.5s" in out
    finally:
        os.killpg(job, signal.SIGCONT)
    for r in (a, b):
        code, out = r.finish()
        assert code == 0, out
    runs = [json.loads((r / "run.json").read_text()) for r in board_runs(board)]
    assert len(runs) == 2
    first_done, second_started = sorted((r["started"], r["finished"]) for r in runs)
    assert second_started[0] >= first_done[1]   # the runs never overlapped


@needs_sshd
def test_failing_boards_say_why_while_the_others_finish(lab, tmp_path):
    laptop = Laptop(lab, tmp_path)
    failing = lab["failing"]
    boards = {"pi-board": {"profile": "rpi", "tree": lab["trees"]["pi"]}}
    for why, alias in failing.items():
        boards[why] = {"host": alias, "profile": "cpu", "tree": lab["trees"]["pi"]}
    toml = laptop.fleet_toml(boards, MODELS="logmel", RUNTIMES="pytorch", DURATIONS="0.5")
    # a board whose set-up fails: an empty venv and no package index
    text = toml.read_text() + (f'\n[[board]]\nhost = "pi-board"\nprofile = "cpu"\nname = "bad-setup"\n'
                               f'dir = "{tmp_path / "board-bad"}"\nvenv = "{tmp_path / "empty-venv"}"\n'
                               f'[board.env]\nPIP_NO_INDEX = "1"\nPYTHON = "{tmp_path / "no-python"}"\n')
    toml.write_text(text)
    code, out = laptop.run(["--fleet", str(toml)])
    assert code == 1, out
    assert "pi-board: finished — 1 ok" in out
    assert "unreachable: FAILED — no-board unreachable: ssh: connect to host 127.0.0.1 port" in out
    assert "Connection refused" in out
    assert "wrong-key: FAILED — key refused by wrong-key" in out and "ssh-copy-id wrong-key" in out
    assert "changed-host-key: FAILED — host key CHANGED for changed-key — refused" in out
    assert "unknown-host-key: FAILED — unknown host key for unknown-key — refused" in out
    assert "bad-setup: FAILED — the board's set-up (scripts/setup_env.sh) failed (setup-failed" in out
    assert "no-python" in out   # the board log's tail says what went wrong
    for why in failing:
        assert not (tmp_path / f"board-{why}").exists()   # nothing reached those boards


# -- small parts, no processes -----------------------------------------------------------------

def test_progress_and_log_parsing():
    from fleet.progress import plan_size
    from fleet.remote import current_cell, log_tail, parse_fields
    from runstore.run_record import RunRecord

    fields, log = parse_fields("state=running\nrun_dir=results/rpi/x\ncells=3\n--log--\nline a\rbar 1\rbar 2\nend\n")
    assert fields == {"state": "running", "run_dir": "results/rpi/x", "cells": "3"}
    assert log_tail(log) == "bar 2\nend"
    assert current_cell("x\rtera onnxruntime b1 4s:  40%|####  | 2/5 [00:01<00:02]\r") == "tera onnxruntime b1 4s"
    assert current_cell("  0%|          | 0/4 [00:00<?, ?cell/s]") == ""   # a bar before its first cell
    settings = {"device": "rpi", "models": ["logmel", "apc"], "runtimes": ["pytorch", "onnxruntime"],
                "batch_sizes": [1, 2], "durations": [1.0, 4.0], "threads": [1], "unknown_future_field": 1}
    assert plan_size(RunRecord.from_dict({"settings": settings})) == 2 * 2 * 3  # two lines: (1,1) (2,1) (1,4)
    assert plan_size(RunRecord.from_dict({})) is None


def test_a_fetched_run_replaces_only_its_own_earlier_copy(tmp_path):
    from fleet.fetch import extends, free_name, same_board

    def run(name: str, host: str, cells: str) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"host": host}))
        (d / "cells.jsonl").write_text(cells)
        return d

    old = run("old", "pi", '{"a": 1}\n')
    assert extends(old, run("longer", "pi", '{"a": 1}\n{"b": 2}\n')) and same_board(old, tmp_path / "longer")
    assert not extends(old, run("other", "pi", '{"z": 0}\n'))
    assert not same_board(old, run("elsewhere", "orin", '{"a": 1}\n'))
    assert free_name(old) == tmp_path / "old-2" and free_name(tmp_path / "new") == tmp_path / "new"
