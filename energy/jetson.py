"""NVIDIA Jetson power rails from the on-module INA3221 monitors (and the carrier's INA238).

Two sysfs layouts for the module rails:

* JetPack 5 and newer (hwmon): ``/sys/bus/i2c/drivers/ina3221/*-004?/hwmon/hwmon*/`` with
  ``in<k>_label``, ``in<k>_input`` (bus mV) and ``curr<k>_input`` (mA); power = mV x mA.
  Unconnected channels are labelled ``NC`` and skipped.
* JetPack 4 (iio): ``/sys/bus/i2c/drivers/ina3221x/*-004?/iio:device*/`` with
  ``rail_name_<i>`` and ``in_power<i>_input`` (mW).

The Jetson AGX Thor developer kit also measures the **board input** ``VIN`` with an INA238 on the
carrier board (kernel driver ``ina238``: ``power1_input`` in uW, ``in1_input`` bus mV,
``curr1_input`` mA; Documentation/hwmon/ina238.rst).  Its name is the hwmon ``label`` file where
the device tree gives one, else ``VIN`` when the Jetson has exactly one INA238 (tegrastats and
jetson-stats call it VIN: rbonghi/jetson_stats pull request 900).  An INA238 is only claimed on a
Jetson; elsewhere it is an external meter (:mod:`energy.hwmon`).

Domains and the rule for negative readings: :mod:`energy.jetson_domains`.

When no rail is visible in sysfs on a Jetson, ``tegrastats`` is the fallback
(:mod:`energy.tegrastats`).
"""

from __future__ import annotations

from dataclasses import dataclass

from host.platform import is_jetson
from host.sysfs import SysRoot

from . import tegrastats
from .errors import SensorError
from .jetson_domains import BOARD_INPUT_RAILS, combine, plan
from .sensor import Context, Probe, Sensor

FAMILY = "jetson"
HWMON_GLOB = "/sys/bus/i2c/drivers/ina3221/*-004?/hwmon/hwmon*"
IIO_GLOB = "/sys/bus/i2c/drivers/ina3221x/*-004?/iio:device*"
INA238_GLOB = "/sys/bus/i2c/drivers/ina238/*/hwmon/hwmon*"

#: how each layout's files turn into watts
_UNITS = {"mW": 1e-3, "uW": 1e-6}


@dataclass(frozen=True)
class Rail:
    name: str
    files: tuple[str, ...]  # (power,) in ``unit``; or (voltage_mV, current_mA)
    unit: str = "mW"  # of a single power file: "mW" (iio) or "uW" (INA238 power1_input)
    chip: str = "INA3221"

    def watts(self, root: SysRoot) -> float:
        """Signed watts: a negative reading (a sensor offset) is kept as read."""
        if len(self.files) == 1:
            return root.read_int(self.files[0]) * _UNITS[self.unit]
        return root.read_int(self.files[0]) * root.read_int(self.files[1]) / 1e6


def _skip(label: str) -> bool:
    return label.upper() in ("NC", "") or label.lower().startswith("sum")


def _ina3221_rails(root: SysRoot) -> tuple[list[Rail], str]:
    rails: list[Rail] = []
    for chip in root.glob(HWMON_GLOB):
        for label_path in root.glob(chip + "/in*_label"):
            k = label_path.rsplit("/in", 1)[1].split("_", 1)[0]
            label = root.read_text(label_path)
            volt, curr = f"{chip}/in{k}_input", f"{chip}/curr{k}_input"
            if _skip(label) or not (root.exists(volt) and root.exists(curr)):
                continue
            rails.append(Rail(label, (volt, curr)))
    if rails:
        return rails, "hwmon"
    for dev in root.glob(IIO_GLOB):
        for name_path in root.glob(dev + "/rail_name_*"):
            i = name_path.rsplit("_", 1)[1]
            label = root.read_text(name_path)
            power = f"{dev}/in_power{i}_input"
            if _skip(label) or not root.exists(power):
                continue
            rails.append(Rail(label, (power,)))
    return rails, ("iio" if rails else "")


def ina238_chips(root: SysRoot) -> list[str]:
    """The INA238 hwmon directories bound by the kernel driver (any machine)."""
    return root.glob(INA238_GLOB)


def claimed_hwmon(root: SysRoot) -> set[str]:
    """The hwmon devices (``hwmon5``) this reader measures as the board input: a Jetson's INA238s."""
    return {chip.rsplit("/", 1)[1] for chip in ina238_chips(root)} if is_jetson(root) else set()


def _ina238_rails(root: SysRoot) -> list[Rail]:
    chips = ina238_chips(root)
    rails = []
    for chip in chips:
        label = root.read_optional(chip + "/label") or (BOARD_INPUT_RAILS[0] if len(chips) == 1 else "")
        if not label:
            label = "INA238@" + chip.split("/")[-3]  # several unlabelled chips: named by I2C address
        if root.exists(chip + "/power1_input"):
            rails.append(Rail(label, (chip + "/power1_input",), "uW", "INA238"))
        elif root.exists(chip + "/in1_input") and root.exists(chip + "/curr1_input"):
            rails.append(Rail(label, (chip + "/in1_input", chip + "/curr1_input"), chip="INA238"))
    return rails


def find_rails(root: SysRoot) -> tuple[list[Rail], str]:
    """The connected rails and the layout they came from (``hwmon``/``iio``, ``+ina238``; ``""``).

    The INA238 is claimed on a Jetson only (see the module docstring)."""
    rails, layout = _ina3221_rails(root)
    board = _ina238_rails(root) if is_jetson(root) else []
    if board:
        rails = rails + board
        layout = f"{layout}+ina238" if layout else "ina238"
    return rails, layout


class JetsonSysfsSensor(Sensor):
    family = FAMILY
    kind = "power"
    default_period_s = 0.05

    def __init__(self, root: SysRoot, rails: list[Rail], layout: str) -> None:
        module, _, board = layout.partition("+")
        chips = "INA238" if module == "ina238" else f"INA3221 via {module}" + (" + INA238" if board else "")
        self._parts = plan([r.name for r in rails], carrier=[r.name for r in rails if r.chip == "INA238"])
        super().__init__(f"jetson {chips} ({', '.join(r.name for r in rails)})", [p.domain for p in self._parts])
        self._root = root
        self._rails = rails

    def read(self) -> dict[str, float]:
        try:
            return combine({r.name: r.watts(self._root) for r in self._rails}, self._parts)
        except OSError as exc:
            raise SensorError(f"reading the Jetson power rails failed: {exc}") from exc


def probe(ctx: Context) -> Probe:
    rails, layout = find_rails(ctx.root)
    if rails:
        sensor = JetsonSysfsSensor(ctx.root, rails, layout)
        try:
            sensor.read()
        except SensorError as exc:
            fix = "run as root" if isinstance(exc.__cause__, PermissionError) else None
            return Probe.missing(FAMILY, str(exc), fix)
        return Probe(FAMILY, sensor=sensor, found=[f"{r.chip} ({layout}): {r.name}" for r in rails])
    if is_jetson(ctx.root):
        found = tegrastats.probe(ctx)
        if found.available:
            found.family = FAMILY
            found.found.insert(0, "no INA3221 in sysfs; using tegrastats")
            return found
        return Probe.missing(FAMILY, f"a Jetson, but no INA3221 rails in sysfs and {found.reason}", found.fix)
    return Probe.missing(
        FAMILY,
        "not a Jetson (no INA3221 under /sys/bus/i2c/drivers/ina3221*, no /etc/nv_tegra_release, "
        "no nvidia,tegra in the device tree)",
        None,
    )
