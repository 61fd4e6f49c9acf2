"""Importing a powertop CSV report (``powertop --csv=report.csv --time=60``), labelled honestly.

powertop *measures* power only when the system runs from a discharging battery (or a UPS /
Extech meter it can read): then the report says ``The battery reports a discharge rate of: X W``.
Everywhere else its watts are model estimates (``System baseline power is estimated at``,
``PW Estimate`` columns), or absent.  This module reads the report and says which it is; it is
an import for comparison, not a per-cell sensor, because powertop averages over its own window.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_PREFIX = {"": 1.0, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "k": 1e3}
_DISCHARGE = re.compile(r"discharge rate of:?\s*([0-9.]+)\s*([mkuµ]?)W", re.I)
_CONSUMED = re.compile(r"(?:energy|power) consumed was:?\s*([0-9.]+)\s*([mkuµ]?)J", re.I)
_BASELINE = re.compile(r"baseline power is estimated at:?\s*([0-9.]+)\s*([mkuµ]?)W", re.I)


@dataclass(frozen=True)
class PowertopReport:
    power_w: float | None  # measured (discharge rate) or, if not measured, the estimated baseline
    measured: bool
    energy_j: float | None  # "The energy consumed was", measured runs only
    label: str  # "measured (battery discharge)" or "estimated (powertop model; not measured)"
    note: str


def _value(match: re.Match[str] | None) -> float | None:
    return float(match.group(1)) * _PREFIX[match.group(2)] if match else None


def parse_powertop(text: str) -> PowertopReport:
    discharge = _value(_DISCHARGE.search(text))
    if discharge is not None and discharge > 0:
        return PowertopReport(
            discharge, True, _value(_CONSUMED.search(text)), "measured (battery discharge rate)",
            "whole system from the battery: includes screen, radios and everything else running",
        )
    baseline = _value(_BASELINE.search(text))
    return PowertopReport(
        baseline, False, None, "estimated (powertop model; not measured)",
        "powertop measured nothing (not on battery, UPS or a supported meter); its watts are estimates"
        if baseline is not None else "the report has no power figure at all",
    )


def read_powertop_csv(path: str | os.PathLike) -> PowertopReport:
    return parse_powertop(Path(path).read_text(encoding="utf-8", errors="replace"))
