"""``python -m fleet`` (``make fleet``): the suite on several boards at once, from this laptop.

    make fleet HOSTS=pi@rpi5.local:rpi,nvidia@orin.local:jetson MODELS=tera,wav2vec2-base
    make fleet FLEET=fleet.toml
    make fleet FLEET=fleet.toml STOP=1     # stop the boards' runs of this command

Exit codes: 0 every board finished, its results are home and every cell is ok (or unsupported
by design); 1 some board failed or has failed cells (each board's line says which and why);
2 bad usage (bad HOSTS/FLEET entry, uncommitted changes; nothing contacted); 130 Ctrl-C (the
boards' runs go on; the same command re-attaches).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from fleet.artifacts import ArtifactsError, Shipment, pick
from fleet.board import BoardDriver, Options, Outcome
from fleet.config import Board, ConfigError, load_fleet, parse_hosts, settings_from_env
from fleet.progress import Bars
from fleet.remote import Remote, RemoteError
from fleet.ship import Archive, ShipError, current_commit
from fleet.ssh import SSH_CONFIG_ENV, Connection, SshError, control_dir, remove_control_dir
from setting_defs import SettingError, add_flags, check_file, check_folders, values


def build_parser() -> argparse.ArgumentParser:
    """make fleet's own variables as flags (setting_defs: tools "fleet")."""
    p = argparse.ArgumentParser(prog="python -m fleet", description=__doc__.splitlines()[0])
    add_flags(p, "fleet")
    p.add_argument("--no-compare", action="store_true", help="do not run make compare at the end")
    return p


def seconds(text: str, name: str, minimum: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number of seconds") from None
    if value < minimum:
        raise ConfigError(f"{name}={text} must be >= {minimum:g}")
    return value


def load_boards(args: argparse.Namespace) -> list[Board]:
    cli_settings = settings_from_env(os.environ)
    if bool(args.hosts) == bool(args.fleet):
        raise ConfigError("name the boards with exactly one of HOSTS=user@host:profile,... or FLEET=fleet.toml")
    if args.hosts:
        return parse_hosts(args.hosts, cli_settings)
    return load_fleet(args.fleet, cli_settings)


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C must reach the laptop's fleet however it was started: a shell without job control
    # (a script, `make fleet &`, CI) starts it with SIGINT ignored, and Python then installs no
    # handler, so the fleet would never end (found by the Ctrl-C test, looped under load)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    try:
        found = values(args, "fleet")
        if found["SSH_CONFIG"]:
            check_file(found["SSH_CONFIG"], "SSH_CONFIG")
            os.environ[SSH_CONFIG_ENV] = found["SSH_CONFIG"]  # every ssh this process starts reads it
        check_folders(found, ("RESULTS_DIR",))
        boards = load_boards(args)
        options = Options(results=Path(found["RESULTS_DIR"]), poll_s=seconds(found["POLL"], "POLL", 0.1),
                          lock_timeout_s=seconds(found["LOCK_TIMEOUT"], "LOCK_TIMEOUT", 0),
                          reconnect_timeout_s=seconds(found["RECONNECT_TIMEOUT"], "RECONNECT_TIMEOUT", 0))
        commit = current_commit(found["ALLOW_DIRTY"])
        # the edge-runtime artifacts each board can use (make export RUNTIMES=...): read before any board is contacted
        shipments = {b.name: pick(found["ARTIFACTS_DIR"], b) for b in boards}
    except (ConfigError, ShipError, SettingError, ArtifactsError) as exc:
        print(f"fleet: error: {exc}", file=sys.stderr)
        return 2
    if commit.dirty:
        print(f"fleet: note: shipping commit {commit.short} WITHOUT your uncommitted changes to "
              f"{', '.join(commit.dirty[:3])}", file=sys.stderr)
    sockets = control_dir()
    conns = {b.name: Connection(b.host, sockets, tag=f"b{i}") for i, b in enumerate(boards)}
    try:
        if found["STOP"]:
            return stop_boards(boards, conns, commit.sha, shipments)
        return drive(boards, conns, Archive(commit), options, compare=not args.no_compare, shipments=shipments)
    finally:
        for conn in conns.values():
            conn.close()
        remove_control_dir(sockets)


def drive(boards: list[Board], conns: dict[str, Connection], archive: Archive, options: Options,
          compare: bool, shipments: dict[str, Shipment | None] | None = None) -> int:
    shipments = shipments or {}
    names = ", ".join(f"{b.name} ({b.profile})" for b in boards)
    print(f"fleet: commit {archive.commit.short} on {names}", file=sys.stderr)
    for board in boards:
        shipment = shipments.get(board.name)
        if shipment is not None:
            print(f"fleet: {board.name} gets {shipment.describe()}", file=sys.stderr)
    bars = Bars([b.name for b in boards])
    stop = threading.Event()
    drivers = [BoardDriver(b, conns[b.name], archive, options, bars, stop, shipments.get(b.name)) for b in boards]
    outcomes: dict[str, Outcome] = {}

    def work(driver: BoardDriver) -> None:
        outcomes[driver.board.name] = driver.run()

    threads = [threading.Thread(target=work, args=(d,), name=d.board.name, daemon=True) for d in drivers]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join(options.poll_s + 15)
        bars.close()
        print("\nfleet: interrupted — the boards' runs go on without this laptop.\n"
              "  re-attach (and fetch when done): run the same command again\n"
              "  stop them:                       the same command with STOP=1", file=sys.stderr)
        return 130
    bars.close()
    return summarize([outcomes[b.name] for b in boards], options, compare)


def summarize(outcomes: list[Outcome], options: Options, compare: bool) -> int:
    ok = True
    print("\nfleet summary:")
    for o in outcomes:
        if o.state == "finished":
            counts = ", ".join(f"{v} {k}" for k, v in sorted(o.counts.items())) or "no cells"
            print(f"  {o.board.name}: finished — {counts}; results in {o.local_run}")
            ok = ok and o.exit_code == 0
        else:
            ok = False
            print(f"  {o.board.name}: FAILED — {o.reason}")
    runs = [o.local_run for o in outcomes if o.local_run is not None]
    if compare and runs:
        ok = run_compare(runs, options.results) and ok
    print(f"fleet: {'every board finished' if ok else 'NOT every board finished cleanly'}")
    return 0 if ok else 1


def run_compare(runs: list[Path], results: Path) -> bool:
    """``make compare`` over the runs just fetched: by device, or by run when the devices repeat."""
    # deferred: compare brings numpy and matplotlib, needed only at the very end
    from compare import ResultError
    from compare import run_compare as compare_runs

    devices = [r.parent.name for r in runs]
    by = "device" if len(set(devices)) == len(devices) else "run"
    out = results / "compare" / datetime.now().strftime("%Y%m%d-%H%M%S-fleet")
    try:
        _, paths = compare_runs([str(r) for r in runs], by=by, out=out)
    except (ResultError, ValueError) as exc:
        print(f"fleet: comparison not written: {exc}")
        return False
    print(f"comparison ({by}): {paths['markdown']}")
    print(f"                  {paths['html']}")
    return True


def stop_boards(boards: list[Board], conns: dict[str, Connection], commit: str,
                shipments: dict[str, Shipment | None] | None = None) -> int:
    """``STOP=1``: Ctrl-C for each board's run of this command (finished cells are kept there)."""
    shipments = shipments or {}
    results: dict[str, str] = {}

    def stop_one(board: Board) -> None:
        try:
            shipment = shipments.get(board.name)
            state = Remote(board, conns[board.name]).stop(board.run_id(commit, shipment.digest if shipment else ""))
            results[board.name] = {"stopped": "stopped (its cells are kept; the same command resumes it)",
                                   "killed": "did not stop within 60 s: killed",
                                   "not-running": "no run of this command is running there"}.get(state, state)
        except (SshError, RemoteError) as exc:
            results[board.name] = f"FAILED — {getattr(exc, 'reason', exc)}"

    threads = [threading.Thread(target=stop_one, args=(b,), daemon=True) for b in boards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for board in boards:
        print(f"{board.name}: {results.get(board.name, 'no answer')}")
    return 0 if all(not r.startswith("FAILED") for r in results.values()) else 1

