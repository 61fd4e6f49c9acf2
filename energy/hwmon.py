"""External power meters that appear as Linux hwmon devices (INA219/INA226/INA260 boards).

``/sys/class/hwmon/hwmon*/power<k>_input`` is in microwatts.  ``auto`` uses only chips known to
be power monitors (names ``ina2*``) because other hwmon power files belong to a GPU or a PSU and
would measure a different domain; ``ENERGY=hwmon`` falls back to any chip with a power input.
On a Jetson, ``auto`` leaves the carrier's INA238 to the ``jetson`` reader, which reports it as
the board input ``VIN`` (:mod:`energy.jetson`), rather than call it an external meter.
What the meter covers (a USB cable, a 5 V barrel, the wall) depends on where it is wired, so the
domain is named after the chip and the user states the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from host.sysfs import SysRoot

from .errors import SensorError
from .jetson import claimed_hwmon
from .sensor import Context, Domain, Probe, Sensor

FAMILY = "hwmon"
METER_PREFIXES = ("ina2",)


@dataclass(frozen=True)
class PowerInput:
    chip: str  # e.g. ina219
    path: str  # /sys/class/hwmon/hwmon2/power1_input
    label: str
    unique: bool = True  # False when another chip has the same name: the hwmon index is added

    @property
    def domain(self) -> Domain:
        chip = self.chip if self.unique else f"{self.chip}@{self.path.split('/')[-2]}"
        return Domain(
            f"external:{chip}/{self.label}",
            f"external meter {self.chip} ({self.label}): whatever it is wired into (USB cable, barrel jack, wall)",
        )


def find_inputs(root: SysRoot) -> list[PowerInput]:
    found = []
    for chip in root.glob("/sys/class/hwmon/hwmon*"):
        name = root.read_optional(chip + "/name") or chip.rsplit("/", 1)[-1]
        for path in root.glob(chip + "/power*_input"):
            stem = path.rsplit("/", 1)[1][: -len("_input")]
            label = root.read_optional(f"{chip}/{stem}_label") or stem
            found.append(PowerInput(name, path, label))
    keys = [(i.chip, i.label) for i in found]
    return [PowerInput(i.chip, i.path, i.label, keys.count((i.chip, i.label)) == 1) for i in found]


class HwmonPowerSensor(Sensor):
    family = FAMILY
    kind = "power"
    default_period_s = 0.1

    def __init__(self, root: SysRoot, inputs: list[PowerInput]) -> None:
        super().__init__(f"hwmon {', '.join(i.chip + '/' + i.label for i in inputs)}", [i.domain for i in inputs])
        self._root = root
        self._inputs = inputs

    def read(self) -> dict[str, float]:
        try:
            return {i.domain.name: self._root.read_int(i.path) / 1e6 for i in self._inputs}
        except OSError as exc:
            raise SensorError(f"reading hwmon power failed: {exc}") from exc


def probe(ctx: Context, forced: bool = False) -> Probe:
    inputs = find_inputs(ctx.root)
    seen = [f"{i.chip} {i.path}" for i in inputs]
    claimed = claimed_hwmon(ctx.root)
    board = [i for i in inputs if i.path.split("/")[-2] in claimed]
    meters = [i for i in inputs if i.chip.startswith(METER_PREFIXES) and i not in board]
    chosen = meters or (inputs if forced else [])
    if not chosen:
        if board and len(board) == len(inputs):
            return Probe.missing(
                FAMILY, f"only the Jetson's board-input monitor ({', '.join(i.path for i in board)}): "
                "the jetson family reads it as board-input", "select it anyway with ENERGY=hwmon", seen,
            )
        if inputs:
            return Probe.missing(
                FAMILY, f"hwmon power inputs found but none from a known meter chip ({', '.join(sorted({i.chip for i in inputs}))})",
                "select them explicitly with ENERGY=hwmon", seen,
            )
        return Probe.missing(
            FAMILY, "no hwmon power*_input (no INA219/INA226 meter attached)",
            "wire an INA219/INA226 board on I2C and load its driver (e.g. echo ina219 0x40 > /sys/bus/i2c/devices/i2c-1/new_device)",
        )
    sensor = HwmonPowerSensor(ctx.root, chosen)
    try:
        sensor.read()
    except SensorError as exc:
        return Probe.missing(FAMILY, str(exc), "run as root", seen)
    return Probe(FAMILY, sensor=sensor, found=seen)
