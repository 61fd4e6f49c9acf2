"""Raspberry Pi 5 PMIC rails through ``vcgencmd pmic_read_adc``.

The command prints one line per ADC channel, e.g.::

     VDD_CORE_A current(7)=0.75012000A
     VDD_CORE_V volt(15)=0.72178200V

Currents and voltages are paired by rail name (``VDD_CORE_A`` with ``VDD_CORE_V``), never by
the channel index, which differs between the two.  Values that read ``nan`` are skipped (and
named).  Power is the sum over paired rails: that covers the SoC, DDR and the PMIC's own
supplies, not USB/PCIe peripherals or conversion losses, so it is *less than the board input
power* -- the domain says so.  The PMIC updates about 10 times a second; the harness samples it
at that pace and integrates.

A Pi 4 or older answers ``Command not registered``: it has no onboard power sensing, and the
reason points at an external meter.
"""

from __future__ import annotations

import math
import re

from host.commands import CommandResult
from host.platform import board_model, is_raspberry_pi

from .errors import SensorError
from .sensor import Context, Domain, Probe, Sensor

FAMILY = "rpi"
ARGV = ("vcgencmd", "pmic_read_adc")
EXTERNAL_FIX = (
    "use an external meter: a USB power meter that logs timestamped watts (ENERGY=csv:<file>), "
    "or an INA219/INA226 board on I2C with its hwmon driver (ENERGY=hwmon)"
)
_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(current|volt)\(\d+\)=(\S+?)([AV])?\s*$")


def parse_pmic(text: str) -> tuple[dict[str, float], list[str]]:
    """Watts per rail, and the rails skipped (``nan``, or a current without a voltage)."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    skipped: list[str] = []
    nan_rails: set[str] = set()
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        rail, which, _, value, _ = m.groups()
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isnan(number):
            skipped.append(f"{rail}_{which}=nan")
            nan_rails.add(rail)
            continue
        (amps if which == "A" else volts)[rail] = number
    watts = {rail: amps[rail] * volts[rail] for rail in amps if rail in volts}
    skipped += [f"{rail}_A (no {rail}_V)" for rail in amps if rail not in volts and rail not in nan_rails]
    return watts, skipped


def refused(result: CommandResult) -> bool:
    return "command not registered" in result.output.lower()


class RpiPmicSensor(Sensor):
    family = FAMILY
    kind = "power"
    min_interval_s = 0.1
    default_period_s = 0.1

    def __init__(self, ctx: Context, rails: list[str]) -> None:
        domain = Domain(
            "pmic-rails",
            f"sum of {len(rails)} Raspberry Pi 5 PMIC rails (SoC, DDR, 1V8/3V3 supplies); excludes USB/PCIe "
            "peripherals and conversion losses, so less than board input power",
        )
        super().__init__("rpi5 pmic (vcgencmd pmic_read_adc)", [domain])
        self._ctx = ctx

    def read(self) -> dict[str, float]:
        try:
            result = self._ctx.runner.run(ARGV, timeout=2.0)
        except (OSError, TimeoutError) as exc:
            raise SensorError(f"vcgencmd pmic_read_adc failed: {exc}") from exc
        watts, _ = parse_pmic(result.stdout)
        if result.returncode != 0 or not watts:
            raise SensorError(f"vcgencmd pmic_read_adc gave no readings: {result.output[:200]!r}")
        return {self.primary.name: sum(watts.values())}


def probe(ctx: Context, forced: bool = False) -> Probe:
    model = (board_model(ctx.root) or "").strip("\x00 ")
    if not is_raspberry_pi(ctx.root) and not forced:
        return Probe.missing(FAMILY, "not a Raspberry Pi (no 'Raspberry Pi' in /proc/device-tree/model)")
    try:
        result = ctx.runner.run(ARGV, timeout=5.0)
    except FileNotFoundError:
        return Probe.missing(
            FAMILY, "vcgencmd not found", "install it (sudo apt install raspi-utils, or libraspberrypi-bin on older releases)"
        )
    except (OSError, TimeoutError) as exc:
        return Probe.missing(FAMILY, f"vcgencmd failed: {exc}", "add the user to the 'video' group or run as root")
    if refused(result):
        name = model or "this Raspberry Pi"
        return Probe.missing(
            FAMILY, f"{name} has no onboard power sensor (vcgencmd pmic_read_adc: Command not registered; Pi 4 and older)", EXTERNAL_FIX
        )
    watts, skipped = parse_pmic(result.stdout)
    if result.returncode != 0 or not watts:
        return Probe.missing(
            FAMILY,
            f"vcgencmd pmic_read_adc gave no current/voltage pairs (exit {result.returncode}: {result.output[:120]!r})",
            "update the firmware (sudo rpi-eeprom-update) or " + EXTERNAL_FIX,
        )
    found = [f"{len(watts)} rails paired: {', '.join(watts)}"] + ([f"skipped: {', '.join(skipped)}"] if skipped else [])
    return Probe(FAMILY, sensor=RpiPmicSensor(ctx, list(watts)), found=found)
