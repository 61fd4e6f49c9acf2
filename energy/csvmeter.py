"""An external meter that logs timestamped watts to a CSV (USB meters, smart plugs, bench PSUs).

The meter is not read live: the harness stamps each window in Unix time (``clock.wall()``) and
integrates the CSV's samples over that window afterwards, waiting a few seconds for the log to
catch up.  When the log does not cover a window (the meter was not logging yet, or its clock is
off), the energy is ``null`` with that reason and the window stamps are kept in
``energy_domains`` so :func:`align_window` can be run again later.

Accepted files: a header row; a time column (``time``, ``timestamp``, ``unix``, ``epoch``,
``date``, ``datetime``; Unix seconds or milliseconds, or ISO 8601, naive times read as local
time); a power column (``watts``, ``power``, ``power_w``, ``w``, ``p``; ``mw``/``milliwatts``
in the name means mW) or voltage and current columns (``volts``/``voltage``/``v`` and
``amps``/``current``/``a``/``i``; ``ma`` means mA).  ``;`` and tab separators are sniffed.
``ENERGY_CSV_OFFSET_S`` is added to the meter's timestamps to correct its clock.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .errors import EnergyConfigError, SensorError
from .integrate import CoverageError, largest_gap, trapezoid
from .sensor import Context, Domain, Probe, Sensor

FAMILY = "csv"
TIME_NAMES = ("time", "timestamp", "unix", "epoch", "date", "datetime", "t", "ts", "time_s")
POWER_NAMES = ("watts", "watt", "power", "power_w", "w", "p", "power_mw", "mw", "milliwatts")
VOLT_NAMES = ("volts", "voltage", "v", "voltage_v", "vbus")
AMP_NAMES = ("amps", "current", "a", "i", "current_a", "current_ma", "ma")


@dataclass
class PowerLog:
    times: list[float]  # Unix seconds, ascending
    watts: list[float]

    @property
    def median_interval(self) -> float:
        gaps = sorted(b - a for a, b in zip(self.times, self.times[1:]))
        return gaps[len(gaps) // 2] if gaps else 0.0


def _parse_time(text: str) -> float:
    text = text.strip()
    try:
        value = float(text)
        return value / 1000.0 if value > 1e11 else value  # milliseconds since the epoch
    except ValueError:
        pass
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _pick(header: list[str], names: tuple[str, ...]) -> int | None:
    norm = [re.sub(r"[^a-z0-9]+", "_", h.strip().lower()).strip("_") for h in header]
    for name in names:
        if name in norm:
            return norm.index(name)
    return None


def read_power_csv(path: str | os.PathLike, offset_s: float = 0.0) -> PowerLog:
    """Parse a meter log.  Raises ``ValueError`` naming what is wrong with the file."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{path}: empty")
    try:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(lines, dialect))
    header = rows[0]
    it = _pick(header, TIME_NAMES)
    ip = _pick(header, POWER_NAMES)
    iv, ia = _pick(header, VOLT_NAMES), _pick(header, AMP_NAMES)
    if it is None or (ip is None and (iv is None or ia is None)):
        raise ValueError(
            f"{path}: header {header} needs a time column ({'/'.join(TIME_NAMES[:6])}) and a power column "
            f"(watts/power/power_mw) or volts and amps columns"
        )
    low = [h.strip().lower() for h in header]
    p_scale = 1e-3 if ip is not None and ("mw" in low[ip] or "milli" in low[ip]) else 1.0
    a_scale = 1e-3 if ia is not None and "ma" in low[ia].replace("amps", "") else 1.0
    times: list[float] = []
    watts: list[float] = []
    for n, row in enumerate(rows[1:], start=2):
        try:
            t = _parse_time(row[it]) + offset_s
            w = float(row[ip]) * p_scale if ip is not None else float(row[iv]) * float(row[ia]) * a_scale  # type: ignore[index]
        except (ValueError, IndexError) as exc:
            raise ValueError(f"{path}, line {n}: cannot read {row!r}: {exc}") from None
        times.append(t)
        watts.append(w)
    order = sorted(range(len(times)), key=times.__getitem__)
    return PowerLog([times[i] for i in order], [watts[i] for i in order])


def window_joules(log: PowerLog, start_unix: float, end_unix: float) -> float:
    """Joules in the window; ``CoverageError`` if the log does not cover it or has a hole in it."""
    step = log.median_interval
    joules = trapezoid(log.times, log.watts, start_unix, end_unix, tolerance_s=step)
    gap = largest_gap(log.times, start_unix, end_unix)
    if step and gap > 5 * step + 1.0:
        raise CoverageError(f"the log has a {gap:.1f} s hole inside the window (meter normally logs every {step:.2f} s)")
    return joules


class CsvMeterSensor(Sensor):
    family = FAMILY
    kind = "log"

    def __init__(self, path: Path, offset_s: float, grace_s: float, clock) -> None:
        super().__init__(
            f"external meter CSV {path}" + (f" (clock offset {offset_s:+g} s)" if offset_s else ""),
            [Domain("external", f"external meter logging to {path.name}: whatever it is plugged into (wall, USB supply)")],
        )
        self.path = path
        self.offset_s = offset_s
        self.grace_s = grace_s
        self._clock = clock

    def energy_between(self, start_unix: float, end_unix: float) -> float:
        """Joules between two Unix times, waiting up to ``grace_s`` for the log to catch up."""
        waited = 0.0
        while True:
            try:
                return window_joules(read_power_csv(self.path, self.offset_s), start_unix, end_unix)
            except FileNotFoundError as exc:
                problem: Exception = exc
            except (CoverageError, ValueError) as exc:
                problem = exc
            if waited >= self.grace_s:
                raise SensorError(
                    f"the meter log {self.path} does not cover the window [{start_unix:.3f}, {end_unix:.3f}]: {problem}; "
                    "keep the meter logging through the run, check its clock (ENERGY_CSV_OFFSET_S), "
                    "or align later with energy.csvmeter.align_window"
                ) from problem
            self._clock.sleep(0.5)
            waited += 0.5


def align_window(path: str | os.PathLike, start_unix: float, end_unix: float, offset_s: float = 0.0) -> tuple[float, float]:
    """After the run: (joules, mean watts) of a logged window.  Raises ``CoverageError``."""
    joules = window_joules(read_power_csv(path, offset_s), start_unix, end_unix)
    return joules, joules / (end_unix - start_unix)


def probe(ctx: Context, path: str) -> Probe:
    if not path:
        raise EnergyConfigError("ENERGY=csv:<path> needs the path of the meter's log, e.g. ENERGY=csv:/tmp/usbmeter.csv")
    try:
        offset = float(ctx.env.get("ENERGY_CSV_OFFSET_S", "0") or 0)
        grace = float(ctx.env.get("ENERGY_CSV_GRACE_S", "5") or 5)
    except ValueError as exc:
        raise EnergyConfigError(f"ENERGY_CSV_OFFSET_S / ENERGY_CSV_GRACE_S must be numbers of seconds: {exc}") from None
    real = Path(path)
    if real.exists():
        try:
            log = read_power_csv(real, offset)
        except ValueError as exc:
            return Probe.missing(FAMILY, str(exc), "log a header row with time and watts columns (see docs/energy.md)")
        found = [f"{len(log.times)} samples so far, every ~{log.median_interval:.2f} s"]
        period = log.median_interval or None
    else:
        found = ["file not there yet: energy is aligned when the log covers each window"]
        period = None
    sensor = CsvMeterSensor(real, offset, grace, ctx.clock)
    sensor.known_period_s = period  # windows span 20 log intervals; 1 s assumed until the log exists
    return Probe(FAMILY, sensor=sensor, found=found)
