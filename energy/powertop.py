"""Importing a powertop CSV report (``powertop --csv=report.csv --time=60``), labelled honestly.

powertop *measures* power only when the system runs from a discharging battery (or a UPS /
Extech meter it can read): then the report says ``The battery reports a discharge rate of: X W``.
Everywhere else its watts are model estimates (``System baseline power is estimated at``,
``PW Estimate`` columns), or absent.  This module reads the report and says which it is; it is
an import for comparison, not a per-cell sensor, because powertop averages over its own window.

The summary lines are read in the forms powertop writes them (powertop's ``src/devices/
device.cpp`` and ``device_manager.cpp``, ``src/report/report-formatter-csv.cpp``, ``fmt_prefix``
in ``src/lib.cpp``):

* up to 2.15, label and value joined by a space: ``The energy consumed was :  325  J``
  (a space before the colon), ``The battery reports a discharge rate of:  9.95 W;``;
* 2.16 and later, CSV key,value pairs: ``The battery reports a discharge rate of: , 14.5  W``;
* the value is three significant digits, a space, then an SI prefix (``m``, ``u``/``µ``, ``k``,
  ...) or nothing, then the unit: ``830 m W`` is 0.83 W, ``14.5  W`` is 14.5 W; ``mW`` without
  the space (the interactive screen) is read too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

#: the SI prefixes powertop's fmt_prefix can print (its table is "yzafpnum kMGTPEZY")
_EXPONENT = {"": 0, "n": -9, "u": -6, "µ": -6, "m": -3, "k": 3, "M": 6, "G": 9}
#: after the label: an optional colon, the CSV comma (2.16+) or spaces, an optional quote, then the value
_VALUE = r"""[ \t]*:?[ \t]*,?[ \t]*"?[ \t]*(-?\d+(?:\.\d+)?)[ \t]*([numkMGµ]?)[ \t]*{unit}(?![A-Za-z])"""
_DISCHARGE = re.compile(r"(?i:discharge rate of)" + _VALUE.format(unit="W"))
_CONSUMED = re.compile(r"(?i:(?:energy|power) consumed was)" + _VALUE.format(unit="J"))
_BASELINE = re.compile(r"(?i:baseline power is estimated at)" + _VALUE.format(unit="W"))


@dataclass(frozen=True)
class PowertopReport:
    power_w: float | None  # measured (discharge rate) or, if not measured, the estimated baseline
    measured: bool
    energy_j: float | None  # "The energy consumed was", measured runs only
    label: str  # "measured (battery discharge)" or "estimated (powertop model; not measured)"
    note: str


def _value(match: re.Match[str] | None) -> float | None:
    """The figure in base units (dividing for small prefixes, so ``830 m`` is exactly 0.83)."""
    if match is None:
        return None
    number, exponent = float(match.group(1)), _EXPONENT[match.group(2)]
    return number * 10**exponent if exponent >= 0 else number / 10**-exponent


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
