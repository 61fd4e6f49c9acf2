"""NVIDIA Jetson power rails from the on-module INA3221 monitors.

Two sysfs layouts:

* JetPack 5 and newer (hwmon): ``/sys/bus/i2c/drivers/ina3221/*-004?/hwmon/hwmon*/`` with
  ``in<k>_label``, ``in<k>_input`` (bus mV) and ``curr<k>_input`` (mA); power = mV x mA.
  Unconnected channels are labelled ``NC`` and skipped.
* JetPack 4 (iio): ``/sys/bus/i2c/drivers/ina3221x/*-004?/iio:device*/`` with
  ``rail_name_<i>`` and ``in_power<i>_input`` (mW).

The domain is the module input rail where the module has one (``VDD_IN`` on Xavier NX, Orin
NX/Nano; ``POM_5V_IN`` on the Nano); the AGX Orin has none, so there the domain is the sum of
its rails, and the domain name says so.  Either way the rails cover the module, not the carrier
board (fan, USB, NVMe).  The other rails are reported as domains *within* the input rail.

When no INA3221 is visible in sysfs, ``tegrastats`` is the fallback (:mod:`energy.tegrastats`).
"""

from __future__ import annotations

from dataclasses import dataclass

from host.platform import is_jetson
from host.sysfs import SysRoot

from . import tegrastats
from .errors import SensorError
from .jetson_domains import combine, domains_for
from .sensor import Context, Probe, Sensor

FAMILY = "jetson"
HWMON_GLOB = "/sys/bus/i2c/drivers/ina3221/*-004?/hwmon/hwmon*"
IIO_GLOB = "/sys/bus/i2c/drivers/ina3221x/*-004?/iio:device*"


@dataclass(frozen=True)
class Rail:
    name: str
    files: tuple[str, ...]  # (power_mW,) for iio; (voltage_mV, current_mA) for hwmon

    def watts(self, root: SysRoot) -> float:
        if len(self.files) == 1:
            return root.read_int(self.files[0]) / 1e3
        return root.read_int(self.files[0]) * root.read_int(self.files[1]) / 1e6


def _skip(label: str) -> bool:
    return label.upper() in ("NC", "") or label.lower().startswith("sum")


def find_rails(root: SysRoot) -> tuple[list[Rail], str]:
    """The connected rails and the layout they came from (``hwmon``/``iio``/``""``)."""
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


class JetsonSysfsSensor(Sensor):
    family = FAMILY
    kind = "power"
    default_period_s = 0.05

    def __init__(self, root: SysRoot, rails: list[Rail], layout: str) -> None:
        super().__init__(
            f"jetson INA3221 via {layout} ({', '.join(r.name for r in rails)})", domains_for([r.name for r in rails])
        )
        self._root = root
        self._rails = rails

    def read(self) -> dict[str, float]:
        try:
            return combine({r.name: r.watts(self._root) for r in self._rails})
        except OSError as exc:
            raise SensorError(f"reading the INA3221 rails failed: {exc}") from exc


def probe(ctx: Context) -> Probe:
    rails, layout = find_rails(ctx.root)
    if rails:
        sensor = JetsonSysfsSensor(ctx.root, rails, layout)
        try:
            sensor.read()
        except SensorError as exc:
            fix = "run as root" if isinstance(exc.__cause__, PermissionError) else None
            return Probe.missing(FAMILY, str(exc), fix)
        return Probe(FAMILY, sensor=sensor, found=[f"{layout}: {r.name}" for r in rails])
    if is_jetson(ctx.root):
        found = tegrastats.probe(ctx)
        if found.available:
            found.family = FAMILY
            found.found.insert(0, "no INA3221 in sysfs; using tegrastats")
            return found
        return Probe.missing(FAMILY, f"a Jetson, but no INA3221 rails in sysfs and {found.reason}", found.fix)
    return Probe.missing(
        FAMILY,
        "not a Jetson (no INA3221 under /sys/bus/i2c/drivers/ina3221*, no /etc/nv_tegra_release)",
        None,
    )
