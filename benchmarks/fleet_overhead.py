"""What does driving a board through ``make fleet`` cost?  Writes docs/benchmarks/fleet-overhead.md.

1. The board: the same cells measured directly on a "board" (``python -m runners`` in a
   terminal on it) and through ``make fleet`` (shipped, started detached over SSH, polled every
   ``POLL`` seconds), alternating, in one session.  Per cell: the ratio of the medians
   (fleet / direct) with its 95% bootstrap CI from the raw samples.
2. The laptop: CPU time of one poll (this process + the ssh client) and what the poll costs the
   board's sshd (its session process, children included), scaled to a board-hour at POLL.

The "board" is a folder behind a real sshd on 127.0.0.1 (fleet/loopback.py) with a Raspberry Pi
sysfs tree; laptop and board are the same machine, shared with other work: the load average is
printed at start and end.  Usage: .venv/bin/python benchmarks/fleet_overhead.py [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compare.stats import bootstrap_ratio_ci  # noqa: E402
from fleet import loopback  # noqa: E402
from fleet.config import load_fleet  # noqa: E402
from fleet.remote import Remote  # noqa: E402
from fleet.ssh import Connection, control_dir, remove_control_dir  # noqa: E402
from runstore.folder import read_records  # noqa: E402

SETTINGS = {"MODELS": "logmel,apc", "RUNTIMES": "pytorch,onnxruntime", "BATCH_SIZES": "1",
            "DURATIONS": "1,4", "THREADS": "1", "ENERGY": "none", "NO_PEAK": "1", "TINY": "1"}
PI_MODEL = "Raspberry Pi 5 Model B Rev 1.0"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def orin_tree(root: Path) -> Path:
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\0")
    (root / "proc/device-tree/compatible").write_bytes(b"nvidia,p3737-0000\0nvidia,tegra234\0")
    (root / "etc").mkdir()
    (root / "etc/nv_tegra_release").write_text("# R35 (release), REVISION: 4.1\n")
    return root


def pi_tree(root: Path) -> Path:
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(PI_MODEL.encode() + b"\0")
    (root / "proc/cpuinfo").write_text("".join(f"processor\t: {i}\nCPU part\t: 0xd0b\n\n" for i in range(4)))
    return root


def cells(run_dir: Path) -> dict[tuple, list[float]]:
    """Each ok cell's samples by (model, runtime, duration), read through the run store."""
    return {(c.model, c.runtime, c.duration_s): c.latency_samples_s
            for c in read_records(run_dir) if c.status == "ok"}


def only_run(results: Path) -> Path:
    (run,) = [p.parent for p in results.glob("*/*/run.json")]
    return run


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def descendants(root: int) -> list[int]:
    """Every live process under ``root`` (the board's sshd: its connections and their sessions)."""
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        kids = [p for p, pp in parent.items() if pp in frontier]
        found += kids
        frontier = kids
    return found


def proc_cpu(pid: int) -> float:
    """CPU seconds of a process and its waited-for children (/proc/PID/stat utime..cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--polls", type=int, default=200)
    ap.add_argument("--poll-s", type=float, default=5.0)
    ap.add_argument("--out", default=str(ROOT / "docs/benchmarks/fleet-overhead.md"))
    ap.add_argument("--example", default=str(ROOT / "docs/examples/fleet/loopback-run.txt"),
                    help="also run the two-board loopback fleet and record its output here ('' to skip)")
    args = ap.parse_args()
    load_start = load()
    tmp = Path(tempfile.mkdtemp(prefix="wb-fleet-bench-"))
    server = loopback.LoopbackServer(tmp / "ssh")
    server.alias("pi-board")
    server.start()
    repo = loopback.snapshot_repo(ROOT, tmp / "laptop")
    venv = loopback.board_venv(tmp / "board-venv")
    tree = pi_tree(tmp / "sys-pi")
    board_env = {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "WAVEBENCH_SYSFS_ROOT": str(tree)}
    base_env = {k: v for k, v in os.environ.items() if k not in ("HOSTS", "FLEET", "STOP")}
    rows, walls, fleet_cpu = [], {"direct": [], "fleet": []}, []
    rounds: dict[str, list[dict]] = {"direct": [], "fleet": []}
    try:
        # set the venv up once (the project's script), so neither side pays for it below
        stamp_env = {**base_env, **board_env, "VENV": str(venv)}
        subprocess.run(["./scripts/setup_env.sh"], cwd=repo, env=stamp_env, check=True, capture_output=True)
        for rnd in range(1, args.rounds + 1):
            def direct_run() -> dict:
                results = tmp / f"direct-{rnd}" / "results"
                env = {**base_env, **board_env, **SETTINGS}
                t0 = time.monotonic()
                subprocess.run([str(venv / "bin/python"), "-m", "runners", "--device", "rpi", "--results",
                                str(results), "--no-progress"], cwd=repo, env=env, check=True, capture_output=True)
                walls["direct"].append(time.monotonic() - t0)
                return cells(only_run(results))

            def fleet_run() -> dict:
                toml = tmp / f"fleet-{rnd}.toml"
                toml.write_text("[settings]\n" + "".join(f'{k} = "{v}"\n' for k, v in SETTINGS.items())
                                + f'\n[[board]]\nhost = "pi-board"\nprofile = "rpi"\ndir = "{tmp / f"board-{rnd}"}"\n'
                                f'venv = "{venv}"\n[board.env]\n' + "".join(f'{k} = "{v}"\n' for k, v in board_env.items()))
                laptop_results = tmp / f"laptop-{rnd}"
                env = {**base_env, "SSH_CONFIG": str(server.client_config), "RESULTS_DIR": str(laptop_results),
                       "POLL": f"{args.poll_s:g}", "PYTHONPATH": str(repo)}
                cpu0, t0 = children_cpu(), time.monotonic()
                subprocess.run([sys.executable, "-m", "fleet", "--fleet", str(toml), "--no-compare"], cwd=repo,
                               env=env, check=True, capture_output=True)
                walls["fleet"].append(time.monotonic() - t0)
                fleet_cpu.append(children_cpu() - cpu0)
                return cells(only_run(laptop_results))

            # odd rounds direct first, even rounds fleet first: a slow trend of the machine hits both ways
            if rnd % 2:
                direct, fleet = direct_run(), fleet_run()
            else:
                fleet, direct = fleet_run(), direct_run()
            rounds["direct"].append(direct)
            rounds["fleet"].append(fleet)
            for key in sorted(direct):
                lo, hi = bootstrap_ratio_ci(fleet[key], direct[key])
                rows.append((rnd, key, statistics.median(direct[key]), statistics.median(fleet[key]),
                             statistics.median(fleet[key]) / statistics.median(direct[key]), lo, hi))
        per_poll_laptop, per_poll_board = poll_cost(server, load_fleet(tmp / "fleet-1.toml", {})[0], args.polls)
        parts = poll_parts(server, load_fleet(tmp / "fleet-1.toml", {})[0], args.polls)
        if args.example:
            example(tmp, repo, server, venv, board_env, base_env, Path(args.example))
    finally:
        server.stop()
    load_end = load()
    write(Path(args.out), rows, walls, fleet_cpu, per_poll_laptop, per_poll_board, args, load_start, load_end,
          yardstick(rounds), parts)
    print(Path(args.out).read_text())
    return 0


def example(tmp: Path, repo: Path, server, venv: Path, board_env: dict, base_env: dict, out: Path) -> None:
    """The worked example of docs/fleet.md: the two-board loopback fleet, its output recorded."""
    server.alias("orin-board")
    trees = {"pi-board": (tmp / "sys-pi", "auto"), "orin-board": (orin_tree(tmp / "sys-orin"), "jetson")}
    settings = {"MODELS": "logmel,apc", "RUNTIMES": "onnxruntime", "PROVIDERS": "CPUExecutionProvider",
                "BATCH_SIZES": "1", "DURATIONS": "1,4", "THREADS": "1", "ENERGY": "none", "NO_PEAK": "1",
                "TINY": "1", "QUICK": "1"}
    text = "[settings]\n" + "".join(f'{k} = "{v}"\n' for k, v in settings.items())
    for name, (tree, profile) in trees.items():
        text += (f'\n[[board]]\nhost = "{name}"\nprofile = "{profile}"\ndir = "{tmp / ("example-" + name)}"\n'
                 f'venv = "{venv}"\n[board.env]\n' + "".join(f'{k} = "{v}"\n' for k, v in
                                                           {**board_env, "WAVEBENCH_SYSFS_ROOT": str(tree)}.items()))
    (tmp / "fleet.toml").write_text(text)
    env = {**base_env, "SSH_CONFIG": str(server.client_config), "RESULTS_DIR": "results", "POLL": "5",
           "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "-m", "fleet", "--fleet", "fleet.toml"], cwd=tmp, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    shown = proc.stdout.replace(str(tmp) + "/", "").replace(str(tmp), ".")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"$ make fleet FLEET=fleet.toml      # the loopback test fleet, exit code {proc.returncode}\n"
                   + shown + "\n--- fleet.toml ---\n" + text.replace(str(tmp) + "/", "").replace(str(tmp), "."))
    compare = sorted((tmp / "results/compare").glob("*/compare.md"))
    if compare:
        (out.parent / "loopback-compare.md").write_text(compare[-1].read_text().replace(str(tmp) + "/", ""))


def yardstick(rounds: dict[str, list[dict]]) -> list[tuple]:
    """The same comparison between two consecutive runs made the SAME way (direct round k+1 vs
    round k, fleet likewise): how far apart two runs are on this machine anyway."""
    out = []
    for way, runs in rounds.items():
        for k in range(1, len(runs)):
            a, b = runs[k - 1], runs[k]
            for key in sorted(a):
                lo, hi = bootstrap_ratio_ci(b[key], a[key])
                out.append((way, k, key, statistics.median(b[key]) / statistics.median(a[key]), lo, hi))
    return out


def geomean_by(rows: list[tuple], group, value) -> dict:
    """Geometric mean of ``value(row)`` per ``group(row)``."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(group(row), []).append(value(row))
    return {k: statistics.geometric_mean(v) for k, v in groups.items()}


def poll_parts(server: loopback.LoopbackServer, board, polls: int) -> tuple[float, float]:
    """Where a poll's board CPU goes: the poll's own ``sh`` + tools run locally (no SSH), and an
    empty SSH command (``true``) over the shared connection: the session and the login shell."""
    run_id = next((Path(board.dir) / "runs").iterdir()).name
    script = (ROOT / "fleet/board.sh").read_text()
    before = children_cpu()
    for _ in range(polls):
        subprocess.run(["sh", "-c", script, "wavebench-fleet", "status", board.dir, run_id], capture_output=True)
    local_sh = (children_cpu() - before) / polls
    sockets = control_dir()
    conn = Connection(board.host, sockets, tag="parts", config=str(server.client_config))
    try:
        conn.ensure_master()
        for _ in range(20):
            conn.run("true")
        assert server.proc is not None
        sessions = descendants(server.proc.pid)
        board0 = sum(proc_cpu(p) for p in sessions)
        for _ in range(polls):
            conn.run("true")
        empty = (sum(proc_cpu(p) for p in sessions if Path(f"/proc/{p}").exists()) - board0) / polls
    finally:
        conn.close()
        remove_control_dir(sockets)
    return local_sh, empty


def poll_cost(server: loopback.LoopbackServer, board, polls: int) -> tuple[float, float]:
    """CPU seconds per status poll: on the laptop (this process + ssh clients) and on the board's
    sshd session process (the shared connection's, children included)."""
    sockets = control_dir()
    conn = Connection(board.host, sockets, tag="bench", config=str(server.client_config))
    remote = Remote(board, conn)
    run_id = next((Path(board.dir) / "runs").iterdir()).name
    try:
        conn.ensure_master()
        for _ in range(20):      # the master is up and in use
            remote.status(run_id)
        assert server.proc is not None
        sessions = descendants(server.proc.pid)
        board0 = sum(proc_cpu(p) for p in sessions)
        self0, kids0 = time.process_time(), children_cpu()
        for _ in range(polls):
            remote.status(run_id)
        laptop = (time.process_time() - self0) + (children_cpu() - kids0)
        # the same long-lived processes (the shared connection); each poll's shell was waited by one
        board_cpu = sum(proc_cpu(p) for p in sessions if Path(f"/proc/{p}").exists()) - board0
    finally:
        conn.close()
        remove_control_dir(sockets)
    return laptop / polls, board_cpu / polls


def write(out: Path, rows, walls, fleet_cpu, per_poll_laptop, per_poll_board, args, load_start, load_end,
          same_way, parts) -> None:
    polls_per_hour = 3600 / args.poll_s
    lines = [
        "# `make fleet` overhead: the board and the laptop",
        "",
        f"Written by `benchmarks/fleet_overhead.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        f"Machine: {os.cpu_count()}-vCPU VM (load average "
        f"{load_start} at start, {load_end} at end). The \"board\" is a folder behind a real `sshd` on "
        f"127.0.0.1 with a Raspberry Pi sysfs tree (`fleet/loopback.py`); laptop and board are the same "
        f"machine, so these numbers show the method, not a Pi's absolute cost.",
        "",
        f"Cells: {', '.join(f'{k}={v}' for k, v in SETTINGS.items())}; profile rpi; default measurement "
        f"policy. Each round measures them directly on the board (`python -m runners`) and through "
        f"`make fleet` (POLL={args.poll_s:g} s), each into a fresh run; odd rounds direct first, even rounds "
        f"the fleet first.",
        "",
        "## The board: latency medians, direct vs through `make fleet`",
        "",
        "| round | model | runtime | audio s | direct median ms | fleet median ms | fleet / direct | 95% CI |",
        "|---|---|---|---|---|---|---|---|",
    ]
    inside = 0
    for rnd, (model, runtime, dur), d, f, ratio, lo, hi in rows:
        ok = lo <= 1 <= hi
        inside += ok
        lines.append(f"| {rnd} | {model} | {runtime} | {dur:g} | {d * 1e3:.3f} | {f * 1e3:.3f} | {ratio:.3f} | "
                     f"[{lo:.3f}, {hi:.3f}]{'' if ok else ' *'} |")
    ratios = [r[4] for r in rows]
    geo = statistics.geometric_mean(ratios) if ratios else float("nan")
    per_round = geomean_by(rows, lambda r: r[0], lambda r: r[4])
    same_per_pair: dict[str, list[float]] = {}
    for (way, _), g in geomean_by(same_way, lambda r: (r[0], r[1]), lambda r: r[3]).items():
        same_per_pair.setdefault(way, []).append(g)
    lines += [
        "",
        f"{inside} of {len(rows)} cells have 1.0 inside the ratio's 95% CI (`*`: outside); geometric mean "
        f"of the ratios {geo:.3f}. Wall time per run: direct {', '.join(f'{w:.0f}' for w in walls['direct'])} s, "
        f"through the fleet {', '.join(f'{w:.0f}' for w in walls['fleet'])} s (the fleet's includes shipping "
        f"the commit, the poll interval at the end and copying the results home).",
        "",
        "The yardstick — the same ratio between two consecutive runs made the SAME way, on this machine:",
        "",
        "| way | rounds | model | runtime | audio s | later / earlier | 95% CI |",
        "|---|---|---|---|---|---|---|",
        *[f"| {way} | {k + 1} / {k} | {m} | {rt} | {d:g} | {ratio:.3f} | [{lo:.3f}, {hi:.3f}]"
          f"{'' if lo <= 1 <= hi else ' *'} |" for way, k, (m, rt, d), ratio, lo, hi in same_way],
        "",
        "Over all cells of a round (geometric mean of the cells' ratios):",
        "",
        f"- fleet / direct, per round: {', '.join(f'{g:.3f}' for g in per_round.values())}",
        *[f"- {way} / {way}, consecutive rounds: {', '.join(f'{g:.3f}' for g in vals)}"
          for way, vals in same_per_pair.items()],
        "",
        f"Run-to-run spread of the same way: cell ratios {min((r[3] for r in same_way), default=float('nan')):.2f}–"
        f"{max((r[3] for r in same_way), default=float('nan')):.2f}; fleet vs direct: "
        f"{min(ratios, default=float('nan')):.2f}–{max(ratios, default=float('nan')):.2f}. When the second is no "
        f"wider than the first and the fleet/direct round means sit among the same-way ones, the remote "
        f"driving is lost in this machine's own run-to-run noise.",
        "",
        "## The laptop: following a board",
        "",
        "| what | CPU time |",
        "|---|---|",
        f"| one status poll, laptop (Python + the `ssh` client over the shared connection) | {per_poll_laptop * 1e3:.1f} ms |",
        f"| one status poll, board (the sshd processes of the shared connection, the `sh` and tools each poll runs included) | {per_poll_board * 1e3:.1f} ms |",
        f"| per board-hour at POLL={args.poll_s:g} s ({polls_per_hour:.0f} polls), laptop | {per_poll_laptop * polls_per_hour:.1f} s |",
        f"| per board-hour at POLL={args.poll_s:g} s, board | {per_poll_board * polls_per_hour:.1f} s |",
        f"| a whole `make fleet` run of the cells above (ship, poll, fetch; no compare), laptop | "
        f"{', '.join(f'{c:.1f}' for c in fleet_cpu)} s |",
        "",
        f"Per-poll figures are the mean of {args.polls} polls back to back against a finished run. "
        f"Where the board's share goes: the poll's own `sh` and tools, run locally without SSH, "
        f"{parts[0] * 1e3:.1f} ms; an empty SSH command (`true`) over the shared connection "
        f"{parts[1] * 1e3:.1f} ms — the session plus the login shell, which on this machine sources "
        f"root's `~/.bashrc` (it runs `pyenv init` for every non-interactive SSH command). A board whose "
        f"`~/.bashrc` returns early for non-interactive shells (Debian's, Raspberry Pi OS's and "
        f"Ubuntu's default does) pays only the first part plus a few ms of sshd.",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
