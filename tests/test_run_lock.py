"""One owner per run folder: two benchmarks with the same settings never write one run folder.

The owners here are real processes (a lock that only threads respect would prove nothing): a
small helper process opens a run folder through the run store's opening code
(:func:`runstore.folder.open_run`, which ``make bench`` calls), says what it got, and holds the
folder until the test closes its stdin, or until it is killed.
"""

import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest

import runstore.folder
from bench.cli import main
from bench.profiles import load_profile
from bench.settings import build_settings
from bench.suite import open_run_folder, run_suite
from report.run_report import main as report_main
from report.run_report import status_section
from runstore.folder import read_cells
from runstore.identity import fingerprint_hash, identity
from runstore.lock import LOCK_FILE, RunInProgress, holder_of

ROOT = Path(__file__).resolve().parent.parent
IDENT = identity("vm", {"software": {"packages": {"torch": "2.12.0"}}})
FP = fingerprint_hash(IDENT)

OPENER = r'''
import json, sys, time
from pathlib import Path
from runstore.folder import open_run
from runstore.lock import RunInProgress

args = json.loads(sys.argv[1])
print("ready", flush=True)
go = Path(args["go"])
while not go.exists():  # both openers start at the same instant
    time.sleep(0.001)
try:
    opened = open_run(Path(args["device_dir"]), args["settings_hash"], args["fingerprint"], args["identity"],
                      fresh=args["fresh"], reopen_complete=args["reopen_complete"], command=args["command"])
    print(json.dumps({"opened": str(opened.folder.path), "resumed": opened.resumed, "notes": opened.notes}), flush=True)
except RunInProgress as exc:
    print(json.dumps({"refused": str(exc), "holder_pid": exc.holder.pid}), flush=True)
    sys.exit(2)
sys.stdin.read()  # hold the run until the test lets go (or kills this process)
opened.folder.release()  # the end of a run
'''


class Opener:
    """A process opening a run folder of ``device_dir`` once ``go`` exists, then holding it."""

    def __init__(self, device_dir: Path, go: Path, settings_hash="s1", fingerprint=FP, ident=IDENT,
                 fresh=False, reopen_complete=False, command="make bench QUICK=1"):
        args = dict(device_dir=str(device_dir), go=str(go), settings_hash=settings_hash, fingerprint=fingerprint,
                    identity=ident, fresh=fresh, reopen_complete=reopen_complete, command=command)
        self.proc = subprocess.Popen([sys.executable, "-c", OPENER, json.dumps(args)], cwd=ROOT, bufsize=0,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def line(self, timeout_s: float = 60) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        text = self.proc.stdout.readline().decode() if ready else ""
        if not text:
            self.proc.kill()
            pytest.fail(f"the opener said nothing (exit {self.proc.wait()}): {self.proc.stderr.read().decode()}")
        return text.strip()

    def result(self) -> dict:
        return json.loads(self.line())

    def let_go(self) -> int:
        self.proc.stdin.close()
        code = self.proc.wait(timeout=60)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)  # no cleanup runs: only the kernel lets the lock go
        self.let_go()


def start_together(device_dir: Path, tmp_path: Path, *kwargs: dict) -> list[Opener]:
    go = tmp_path / "go"
    openers = [Opener(device_dir, go, **kw) for kw in kwargs]
    for opener in openers:
        assert opener.line() == "ready"
    go.touch()
    return openers


def write_run(run_dir: Path, status="interrupted", settings_hash="s1", cells=()) -> None:
    """A run as a Ctrl-C (``interrupted``), a kill (``running``) or the end (``complete``) leaves it."""
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({
        "schema_version": 1, "settings_hash": settings_hash, "status": status, "started": "2026-12-01T10:00:00+0000",
        "fingerprint": FP, "fingerprints": {FP: IDENT}, "sessions": [{"status": status, "fingerprint": FP}]}))
    (run_dir / "cells.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cells))


def snapshot(device_dir: Path) -> dict[str, bytes]:
    """Every file under ``device_dir`` but the locks themselves, to show what a run wrote."""
    return {str(p.relative_to(device_dir)): p.read_bytes() for p in sorted(device_dir.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


@pytest.mark.parametrize("earlier, first, second", [
    pytest.param(None, {}, {}, id="both-start-new-runs"),
    pytest.param("interrupted", {}, {}, id="both-would-resume-one-run"),
    pytest.param("interrupted", {}, {"fresh": True}, id="one-asks-for-a-fresh-run"),
    pytest.param("complete", {"reopen_complete": True}, {"reopen_complete": True}, id="both-REMEASURE-drift"),
])
def test_two_runs_with_the_same_settings_opened_at_once_get_one_owner(tmp_path, earlier, first, second):
    device_dir = tmp_path / "results" / "cpu"
    if earlier:
        write_run(device_dir / "20261201-100000-s1", status=earlier)
    before = snapshot(device_dir) if earlier else {}
    a, b = start_together(device_dir, tmp_path, first, second)
    results = {a: a.result(), b: b.result()}
    asked = {a: first, b: second}
    try:
        (owner,) = [o for o, r in results.items() if "opened" in r]
        (refused,) = [o for o, r in results.items() if "refused" in r]
        assert refused.let_go() == 2
        message = results[refused]["refused"]
        opened = Path(results[owner]["opened"])
        assert message.startswith(f"{opened} is being measured by another run with the same settings: "
                                  f"pid {owner.proc.pid} on host {socket.gethostname()} (`make bench QUICK=1`), "
                                  "since 20")
        assert "disturb each other's timings" in message and "\n" not in message
        assert holder_of(opened).pid == owner.proc.pid
        # the owner resumed the earlier run unless it asked for a fresh one; the refused run made no folder
        resumes = earlier is not None and not asked[owner].get("fresh")
        assert results[owner]["resumed"] == resumes
        assert (opened.name == "20261201-100000-s1") == resumes
        earlier_dirs = {"20261201-100000-s1"} if earlier else set()
        assert {p.name for p in device_dir.iterdir() if p.is_dir()} == earlier_dirs | {opened.name}
        # nothing but the owner's lock was written: the earlier run's files are as they were
        assert snapshot(device_dir) == before
    finally:
        assert owner.let_go() == 0
    assert holder_of(opened) is None and (opened / LOCK_FILE).read_bytes() == b""  # a clean end leaves no trace


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "every-core-busy"])
def test_twenty_pairs_started_together_never_write_one_run_folder(tmp_path, busy):
    """The issue's proof: 20 pairs in a loop, also with every core (both, on the 2-core lab VM) spinning,
    so that the two openers are scheduled in every order; each pair gets one owner and one folder."""
    cores = min(len(os.sched_getaffinity(0)), 8) if busy else 0
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        for i in range(20):
            device_dir = tmp_path / f"pair-{i}" / "results" / "cpu"
            device_dir.parent.parent.mkdir()
            if i % 2:  # every other pair could both resume one interrupted run
                write_run(device_dir / "20261201-100000-s1", status="interrupted")
            pair = start_together(device_dir, tmp_path / f"pair-{i}", {}, {})
            results = [opener.result() for opener in pair]
            assert sorted("opened" in r for r in results) == [False, True], results
            assert sorted(opener.let_go() for opener in pair) == [0, 2]
            folders = [p.name for p in device_dir.iterdir() if p.is_dir()]
            assert len(folders) == 1 and (folders == ["20261201-100000-s1"]) == bool(i % 2), folders
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def test_a_run_with_other_settings_may_measure_alongside_and_is_told(tmp_path):
    device_dir = tmp_path / "results" / "cpu"
    a, b = start_together(device_dir, tmp_path, {"settings_hash": "s1"}, {"settings_hash": "s2"})
    ra, rb = a.result(), b.result()
    try:
        assert ra["opened"] != rb["opened"]
        first, later = (ra, rb) if len(ra["notes"]) < len(rb["notes"]) else (rb, ra)
        assert first["notes"] == []
        (note,) = later["notes"]
        assert note.startswith(f"note: {first['opened']} is being measured at the same time (pid ")
        assert note.endswith("both runs' timings are disturbed")
    finally:
        assert a.let_go() == b.let_go() == 0


def tiny_settings(tmp_path, **kw):
    s = build_settings(load_profile("cpu"), models="logmel", runtimes="pytorch", batch_sizes="1",
                       durations="0.5,1", reps=3, threads="1", providers=None, energy="none", tiny=True,
                       results_dir=str(tmp_path / "results"), min_time_s=0.02, max_time_s=0.2, **kw)
    return replace(s, measure_peak=False)


def test_a_killed_runs_lock_is_taken_over_and_the_run_resumed(tmp_path):
    settings = tiny_settings(tmp_path)
    env = {"software": {"packages": {"torch": "2.12.0"}}}
    ident = identity(socket.gethostname(), env)
    device_dir = tmp_path / "results" / "cpu"
    run_dir = device_dir / "20261201-100000-x"
    # killed after its last cell, before it could say it was complete (measuring a cell would only slow this test)
    cells = [{**asdict(cell), "run_id": run_dir.name, "device": "cpu", "status": "ok"} for cell in settings.plan()]
    write_run(run_dir, status="running", settings_hash=settings.settings_hash(), cells=cells)
    data = json.loads((run_dir / "run.json").read_text())
    data.update(fingerprint=fingerprint_hash(ident), fingerprints={fingerprint_hash(ident): ident})
    (run_dir / "run.json").write_text(json.dumps(data))
    (holder,) = start_together(device_dir, tmp_path, {"settings_hash": settings.settings_hash(),
                                                     "fingerprint": fingerprint_hash(ident), "ident": ident})
    assert holder.result() == {"opened": str(run_dir), "resumed": True, "notes": []}
    since = holder_of(run_dir).since
    with pytest.raises(RunInProgress, match=f"pid {holder.proc.pid} on host"):
        run_suite(settings, progress=False, log=lambda m: None, environment=env)
    holder.kill()  # SIGKILL, as the OOM killer or a power cut would: the lock file still names it
    assert holder_of(run_dir) is None and f'"pid": {holder.proc.pid}' in (run_dir / LOCK_FILE).read_text()
    messages: list[str] = []
    outcome = run_suite(settings, progress=False, log=messages.append, environment=env)
    assert outcome.run_dir == run_dir and outcome.counts == {"ok": 2}
    assert messages[0] == (f"taking over {run_dir} from pid {holder.proc.pid} on host {socket.gethostname()} "
                           f"(`make bench QUICK=1`), since {since}, which ended without letting it go (killed or crashed)")
    assert messages[1] == f"resuming {run_dir}: 2 of 2 cells already measured (nothing to do; FRESH=1 measures again)"
    assert len(read_cells(run_dir)) == 2 and holder_of(run_dir) is None
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "complete" and [s["status"] for s in run["sessions"]] == ["running", "complete"]


def test_remeasure_drift_takes_the_lock_too(tmp_path):
    settings = tiny_settings(tmp_path, remeasure="drift")
    run_dir = tmp_path / "results" / "cpu" / "20261201-100000-x"
    write_run(run_dir, status="complete", settings_hash=settings.settings_hash())
    opened = open_run_folder(settings, False, FP, IDENT, command="make bench REMEASURE=drift")
    try:
        assert opened.folder.path == run_dir and opened.resumed
        assert holder_of(run_dir).command == "make bench REMEASURE=drift"
        (other,) = start_together(run_dir.parent, tmp_path, {"settings_hash": settings.settings_hash(),
                                                            "reopen_complete": True})
        assert other.result()["holder_pid"] == os.getpid() and other.let_go() == 2
    finally:
        opened.folder.release()


def test_make_bench_refused_exits_2_with_one_line_naming_the_holder_and_writes_nothing(tmp_path, monkeypatch):
    argv = ["--device", "cpu", "--tiny", "--models", "logmel", "--runtimes", "pytorch", "--batch-sizes", "1",
            "--durations", "0.5", "--reps", "3", "--energy", "none", "--threads", "1", "--no-peak",
            "--no-progress", "--results", str(tmp_path / "results")]
    seen = []

    class Captured(Exception):
        pass

    def capture(settings, **kw):
        seen.append(settings)
        raise Captured  # only the settings this command line builds are wanted here

    monkeypatch.setattr("bench.suite.run_suite", capture)
    with pytest.raises(Captured):
        main(argv)
    device_dir = tmp_path / "results" / "cpu"
    run_dir = device_dir / "20261201-100000-x"
    write_run(run_dir, status="interrupted", settings_hash=seen[0].settings_hash())
    before = snapshot(device_dir)
    (holder,) = start_together(device_dir, tmp_path, {"settings_hash": seen[0].settings_hash()})
    assert holder.result()["opened"] == str(run_dir)
    try:
        env = {k: v for k, v in os.environ.items() if k != "WAVEBENCH_COMMAND"}
        second = subprocess.run([sys.executable, "-m", "runners", *argv], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        since = holder_of(run_dir).since
    finally:
        assert holder.let_go() == 0
    assert second.returncode == 2, second.stderr
    assert second.stderr.splitlines()[-1] == (
        f"error: {run_dir} is being measured by another run with the same settings: pid {holder.proc.pid} on host "
        f"{socket.gethostname()} (`make bench QUICK=1`), since {since}. Two benchmarks at once on one machine "
        "disturb each other's timings: wait for it to finish, or stop it (Ctrl-C) and run the same command "
        "again to resume it")
    assert snapshot(device_dir) == before and second.stdout == ""


def test_make_report_of_a_run_being_measured_is_not_blocked_and_says_by_whom(tmp_path, capsys):
    device_dir = tmp_path / "results" / "cpu"
    run_dir = device_dir / "20261201-100000-s1"
    write_run(run_dir, status="running")
    assert status_section({"status": "running"}, []).startswith("**Status: RUNNING (or killed without finishing).**")
    (holder,) = start_together(device_dir, tmp_path, {})
    try:
        assert holder.result()["opened"] == str(run_dir)
        assert report_main([str(run_dir)]) == 0
        since = holder_of(run_dir).since
    finally:
        assert holder.let_go() == 0
    who = f"pid {holder.proc.pid} on host {socket.gethostname()} (`make bench QUICK=1`), since {since}"
    assert capsys.readouterr().err == (f"note: {run_dir} is being measured by {who}: "
                                       "this report shows the cells measured so far\n")
    assert f"**Status: RUNNING.** Being measured by {who}: results are partial" in (run_dir / "report.md").read_text()


def test_the_device_folder_is_locked_while_a_run_folder_is_chosen_and_taken(tmp_path, monkeypatch):
    """What makes two runs started at the same instant see each other, without timing luck."""
    device_dir = tmp_path / "results" / "cpu"
    taken = runstore.folder.RunLock.take
    locked_while_taking = []

    def take(run_dir, holder):
        fd = os.open(device_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked_while_taking.append(False)
        except BlockingIOError:
            locked_while_taking.append(True)
        finally:
            os.close(fd)
        return taken(run_dir, holder)

    monkeypatch.setattr(runstore.folder.RunLock, "take", take)
    opened = runstore.folder.open_run(device_dir, "s1", FP, IDENT)
    opened.folder.release()
    assert locked_while_taking == [True]
    fd = os.open(device_dir, os.O_RDONLY)  # and let go afterwards
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
