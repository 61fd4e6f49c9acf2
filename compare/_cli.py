"""``python -m compare``: the command line over :mod:`compare` (what ``make compare`` calls).

Exit codes: 0 reports written; 2 bad usage or a folder that is not a readable wavebench
result (one line on stderr naming it; nothing written).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Sequence

from .load import ResultError, load_results
from .match import AXES, Comparison, build_comparison
from .plots import make_plots
from .report import write_reports
from .tables import latency_table, summary_table


def default_out_dir(base: str | Path = "results/compare") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(base) / stamp
    i = 1
    while out.exists():
        i += 1
        out = Path(base) / f"{stamp}-{i}"
    return out


def split_specs(values: Sequence[str] | None) -> list[str]:
    specs: list[str] = []
    for value in values or ["results"]:
        specs += [v.strip() for v in value.split(",") if v.strip()]
    return specs


def compare_folders(results: Sequence[str] | str, by: str = "device", out: str | Path | None = None,
                    base: str | None = None, command: str | None = None
                    ) -> tuple[Comparison, dict[str, Path]]:
    """Load every result folder, compare along ``by``, write reports into ``out``.

    Raises :class:`ResultError` (bad folder) or ``ValueError`` (bad axis/base) before anything
    is written.
    """
    specs = split_specs([results] if isinstance(results, str) else list(results))
    runs = load_results(specs)
    comp = build_comparison(runs, by=by, base=base)
    out_dir = Path(out) if out is not None else default_out_dir()
    resolved = out_dir.resolve()
    for run in runs:
        rp = run.path.resolve()
        if resolved == rp or rp in resolved.parents:
            raise ResultError(f"{out_dir}: --out is inside the result folder {run.path}; "
                              "compare never writes into results it reads")
    plots = make_plots(comp, out_dir / "plots")
    paths = write_reports(comp, plots, out_dir, command=command)
    paths["plots"] = out_dir / "plots"
    return comp, paths


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m compare",
        description="Put wavebench results of several devices/runs side by side, with a "
                    "significance test on the raw latency samples.")
    p.add_argument("--results", action="append", metavar="DIR[,DIR...]",
                   help="results/ folders (with <device>/<run_id>/ inside) or run folders; "
                        "NAME=DIR labels a folder's group (default: results)")
    p.add_argument("--by", choices=AXES, default="device",
                   help="what to put side by side (default: device)")
    p.add_argument("--base", metavar="GROUP",
                   help="the group every ratio is against (default: the first)")
    p.add_argument("--out", metavar="DIR",
                   help="where to write compare.md/.html/.json and plots/ "
                        "(default: results/compare/<timestamp>/)")
    p.add_argument("--quiet", action="store_true", help="do not print the tables")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = "python -m compare " + " ".join(shlex.quote(a) for a in
                                              (sys.argv[1:] if argv is None else argv))
    try:
        comp, paths = compare_folders(args.results or ["results"], by=args.by, out=args.out,
                                      base=args.base, command=command)
    except (ResultError, ValueError) as exc:
        print(f"compare: error: {exc}", file=sys.stderr)
        return 2
    for w in comp.warnings:
        print(f"compare: note: {w}", file=sys.stderr)
    if not args.quiet:
        print(summary_table(comp).render("simple"))
        print()
        lt = latency_table(comp)
        print(lt.render("simple"))
        print()
        print(lt.note)
        print()
    for kind in ("markdown", "html", "json", "plots"):
        print(f"wrote {kind}: {paths[kind]}")
    return 0
