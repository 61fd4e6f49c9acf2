"""Linux RAPL through powercap (Intel, and AMD Zen with the same ``intel-rapl`` driver).

Each zone is ``/sys/class/powercap/intel-rapl:<pkg>[:<sub>]/`` with ``name``, ``energy_uj``
(cumulative µJ) and ``max_energy_range_uj`` (the wrap point).  Zones are classified by their
``name``, never by their index, because the index of ``dram`` or ``psys`` varies by machine:

* ``package-N`` / ``package-N-die-D`` -> domain ``cpu-package`` (summed over sockets and dies,
  which are disjoint);
* ``dram`` -> ``dram`` (summed over sockets);
* ``core`` and ``uncore`` -> their own domains, *within* the package;
* ``psys`` -> ``psys``, the platform domain of recent Intel laptops.  It contains the package,
  so it is kept apart and never added to it.

``intel-rapl-mmio:*`` zones repeat the MSR package zone on recent Intel parts and are ignored
(adding them would count the package twice).  Since the 2020 PLATYPUS fix (CVE-2020-8694)
``energy_uj`` is readable by root only; the probe says so and how to fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from host.sysfs import SysRoot

from .errors import SensorError
from .sensor import Context, Domain, Probe, Sensor

FAMILY = "rapl"
POWERCAP = "/sys/class/powercap"

PERMISSION_FIX = (
    "run as root (sudo), or make the counters readable: "
    "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj /sys/class/powercap/intel-rapl:*:*/energy_uj "
    "(until reboot), or install the udev rule shown in docs/energy.md"
)

DOMAINS = {
    "cpu-package": Domain("cpu-package", "CPU package(s): cores, caches, uncore and integrated GPU (RAPL package zones, all sockets)"),
    "dram": Domain("dram", "DRAM attached to the CPU (RAPL dram zones, all sockets)"),
    "core": Domain("cpu-core", "CPU cores only (RAPL core / PP0)", within="cpu-package"),
    "uncore": Domain("cpu-uncore", "uncore / integrated GPU (RAPL uncore / PP1)", within="cpu-package"),
    "psys": Domain("psys", "platform (RAPL psys): SoC, memory and more; contains the package, never added to it"),
}
ORDER = ("cpu-package", "dram", "core", "uncore", "psys")


def classify(name: str) -> str | None:
    """The domain key of a zone ``name`` (``package-0-die-1`` -> ``cpu-package``), None if unknown."""
    if re.fullmatch(r"package-\d+(-die-\d+)?", name):
        return "cpu-package"
    return name if name in ("dram", "core", "uncore", "psys") else None


@dataclass
class Zone:
    path: str  # e.g. /sys/class/powercap/intel-rapl:0
    name: str
    key: str  # domain key
    max_range_uj: int


class RaplSensor(Sensor):
    """Reads the zones' counters and unwraps them: ``delta = (new - old) mod max_energy_range_uj``."""

    family = FAMILY
    kind = "energy"
    wraps = True
    default_period_s = 0.001

    def __init__(self, root: SysRoot, zones: list[Zone]) -> None:
        keys = [k for k in ORDER if any(z.key == k for z in zones)]
        zone_names = ", ".join(f"{z.path.rsplit('/', 1)[-1]}={z.name}" for z in zones)
        domains = [DOMAINS[k] for k in keys]
        if "psys" in keys:  # psys is the whole platform: say that the package and DRAM are inside it
            domains = [replace(d, within="psys") if d.name in ("cpu-package", "dram") else d for d in domains]
        super().__init__(f"rapl ({zone_names})", domains)
        self._root = root
        self._zones = zones
        self._last: dict[str, int] = {}
        self._total_uj: dict[str, int] = {z.path: 0 for z in zones}

    def _read_raw(self, zone: Zone) -> int:
        try:
            return self._root.read_int(zone.path + "/energy_uj")
        except PermissionError as exc:
            raise SensorError(f"cannot read {self._root.real(zone.path + '/energy_uj')}: permission denied; {PERMISSION_FIX}") from exc
        except OSError as exc:
            raise SensorError(f"cannot read {self._root.real(zone.path + '/energy_uj')}: {exc}") from exc

    def read(self) -> dict[str, float]:
        for zone in self._zones:
            raw = self._read_raw(zone)
            last = self._last.get(zone.path)
            if last is not None:
                self._total_uj[zone.path] += (raw - last) % zone.max_range_uj
            self._last[zone.path] = raw
        out: dict[str, float] = {}
        for key in ORDER:
            parts = [self._total_uj[z.path] for z in self._zones if z.key == key]
            if parts:
                out[DOMAINS[key].name] = sum(parts) / 1e6
        return out


def find_zones(root: SysRoot) -> tuple[list[Zone], list[str]]:
    """The usable zones, and a line per zone seen (for the listing)."""
    zones: list[Zone] = []
    seen: list[str] = []
    for path in root.glob(POWERCAP + "/intel-rapl:*"):
        label = path.rsplit("/", 1)[-1]
        name = root.read_optional(path + "/name") or "?"
        key = classify(name)
        enabled = root.read_optional(path + "/enabled")
        if key is None:
            seen.append(f"{label} ({name}: unknown zone, ignored)")
            continue
        if enabled == "0":
            seen.append(f"{label} ({name}: disabled)")
            continue
        try:
            max_range = root.read_int(path + "/max_energy_range_uj")
        except (FileNotFoundError, OSError):
            max_range = 2**32  # absent on some old kernels; the raw counter is 32-bit
        if max_range <= 0:
            max_range = 2**32
        zones.append(Zone(path, name, key, max_range))
        seen.append(f"{label} ({name})")
    mmio = root.glob(POWERCAP + "/intel-rapl-mmio:*")
    if mmio:
        seen.append(f"{len(mmio)} intel-rapl-mmio zone(s) ignored (they repeat the MSR package zone)")
    return zones, seen


def probe(ctx: Context) -> Probe:
    root = ctx.root
    if not root.exists(POWERCAP):
        return Probe.missing(
            FAMILY,
            f"no {root.real(POWERCAP)} (no powercap support: a VM, a container without /sys, or a non-x86 board)",
            "run on bare metal with an Intel or AMD Zen CPU and the intel_rapl_common / intel_rapl_msr modules loaded (sudo modprobe intel_rapl_msr)",
        )
    zones, seen = find_zones(root)
    if not zones:
        return Probe.missing(
            FAMILY,
            f"no RAPL zones under {root.real(POWERCAP)} (most VMs and non-x86 CPUs have none)",
            "sudo modprobe intel_rapl_msr on bare-metal Intel/AMD Zen; in a VM use ENERGY=csv:<file> with an external meter",
            seen,
        )
    if not any(z.key == "cpu-package" for z in zones):
        return Probe.missing(FAMILY, "RAPL zones found but no package zone", None, seen)
    sensor = RaplSensor(root, zones)
    try:
        sensor.read()
    except SensorError as exc:
        if isinstance(exc.__cause__, PermissionError):
            return Probe.missing(
                FAMILY,
                f"{exc.args[0].split(';')[0]} (RAPL counters are root-only since the PLATYPUS fix, CVE-2020-8694)",
                PERMISSION_FIX,
                seen,
            )
        return Probe.missing(FAMILY, str(exc), None, seen)
    return Probe(FAMILY, sensor=sensor, found=seen)
