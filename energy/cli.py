"""``python -m energy``: what energy sensors this machine has, what it lacks and how to fix that.

A thin layer over :func:`energy.probe_all` and :func:`energy.open_meter`; exit code 0 whatever is
found (a machine without sensors is not an error), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .discover import AUTO_FAMILIES, make_context, open_meter, probe_all
from .errors import EnergyConfigError
from .powertop import read_powertop_csv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m energy",
        description="List the energy sensors this machine has, the ones it lacks and why, and how to fix that.",
    )
    parser.add_argument("--root", help="directory that stands for / when reading sysfs (default: $WAVEBENCH_SYSFS_ROOT or /)")
    parser.add_argument("--spec", default="auto", help="what ENERGY= would select (default: auto)")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--idle", type=float, metavar="SECONDS", help="also read idle power for this long with the selected sensors")
    parser.add_argument("--powertop", metavar="CSV", help="import a powertop --csv report and say whether it measured or estimated")
    return parser


def main(argv: Sequence[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    if args.powertop:
        report = read_powertop_csv(args.powertop)
        watts = "no power figure" if report.power_w is None else f"{report.power_w:.2f} W"
        print(f"powertop {args.powertop}: {watts}, {report.label}. {report.note}", file=out)
        return 0
    ctx = make_context(args.root)
    probes = probe_all(ctx, list(AUTO_FAMILIES))
    for p in probes:
        if p.sensor is not None:
            p.sensor.close()
    try:
        meter = open_meter(args.spec, root=args.root)
    except EnergyConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with meter:
        idle = meter.measure_idle(args.idle) if (args.idle and meter.available) else None
        if args.json:
            json.dump(
                {
                    "root": str(ctx.root),
                    "families": [
                        {"family": p.family, "available": p.available, "source": p.sensor.source if p.sensor else None,
                         "domains": [d.name for d in p.sensor.domains] if p.sensor else [],
                         "reason": p.reason, "fix": p.fix, "found": p.found}
                        for p in probes
                    ],
                    "selected": {"spec": args.spec, "available": meter.available, "source": meter.source,
                                 "domain": meter.domain, "reason": meter.reason, "idle_power_w": idle},
                },
                out, indent=2,
            )
            print(file=out)
            return 0
        print(f"energy sensors (sysfs root {ctx.root}):", file=out)
        for p in probes:
            if p.sensor is not None:
                print(f"  [found]   {p.family}: {p.sensor.source}", file=out)
                for d in p.sensor.domains:
                    within = f" (within {d.within})" if d.within else ""
                    print(f"              domain {d.name}{within}: {d.description}", file=out)
            else:
                print(f"  [missing] {p.family}: {p.reason}", file=out)
                if p.fix:
                    print(f"              fix: {p.fix}", file=out)
            for line in p.found if p.sensor is None else []:
                print(f"              saw: {line}", file=out)
        print("  [opt-in]  csv:<file>: an external meter's log of timestamped watts (ENERGY=csv:/path/log.csv)", file=out)
        print("  [opt-in]  estimate: CPU time x CPU_WATTS, labelled estimated (ENERGY=estimate CPU_WATTS=15)", file=out)
        if meter.available or args.spec != "auto":
            print(f"ENERGY={args.spec} -> {meter.describe()}", file=out)
        else:
            print("ENERGY=auto -> nothing to measure with: energy fields will be null with the reasons above", file=out)
        if idle is not None:
            print(f"idle power ({meter.domain}): {idle:.3f} W", file=out)
        elif args.idle and meter.available:
            print(f"idle power: not measured ({meter.idle_reason})", file=out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
