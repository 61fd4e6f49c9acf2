"""RAPL through powercap, on fake sysfs trees of an Intel laptop and an AMD server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from energy import SysRoot, open_meter
from energy.errors import SensorError
from energy.fakes import FakeClock
from energy.rapl import PERMISSION_FIX, RaplSensor, find_zones, probe
from energy.sensor import Context

PC = "sys/class/powercap"
INTEL_RANGE = 262143328850
AMD_RANGE = 65532610987


def zone(root: Path, label: str, name: str, energy_uj: int, max_range: int = INTEL_RANGE, enabled: str = "1") -> Path:
    d = root / PC / label
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    (d / "enabled").write_text(enabled + "\n")
    return d


def intel_laptop(root: Path) -> Path:
    """package-0 with core/uncore/dram subzones, psys as its own top-level zone, an MMIO duplicate."""
    (root / PC / "intel-rapl").mkdir(parents=True)  # the control type dir itself: not a zone
    zone(root, "intel-rapl:0", "package-0", 10_000_000)
    zone(root, "intel-rapl:0:0", "core", 4_000_000)
    zone(root, "intel-rapl:0:1", "uncore", 1_000_000)
    zone(root, "intel-rapl:0:2", "dram", 2_000_000, max_range=65712999613)
    zone(root, "intel-rapl:1", "psys", 30_000_000)
    zone(root, "intel-rapl-mmio:0", "package-0", 10_000_000)
    return root


def amd_server(root: Path) -> Path:
    """Two sockets, package zones only (AMD Zen exposes no dram zone in powercap)."""
    zone(root, "intel-rapl:0", "package-0", 5_000_000, AMD_RANGE)
    zone(root, "intel-rapl:1", "package-1", 7_000_000, AMD_RANGE)
    return root


def ctx(root: Path) -> Context:
    return Context(root=SysRoot(root))


def write(root: Path, label: str, energy_uj: int) -> None:
    (root / PC / label / "energy_uj").write_text(f"{energy_uj}\n")


def test_intel_laptop_zones_by_name_psys_apart_mmio_ignored(tmp_path):
    root = intel_laptop(tmp_path)
    found = probe(ctx(root))
    assert found.available
    sensor = found.sensor
    assert [d.name for d in sensor.domains] == ["cpu-package", "dram", "cpu-core", "cpu-uncore", "psys"]
    assert sensor.primary.name == "cpu-package"
    doms = {d.name: d for d in sensor.domains}
    assert doms["cpu-core"].within == "cpu-package" and doms["psys"].within is None
    assert doms["cpu-package"].within == "psys" and doms["dram"].within == "psys"
    assert "never added" in doms["psys"].description
    assert any("mmio" in line for line in found.found)
    # advance the counters: package +3 J, core +1 J, uncore +0.5 J, dram +0.75 J, psys +9 J
    before = sensor.read()
    write(root, "intel-rapl:0", 13_000_000)
    write(root, "intel-rapl:0:0", 5_000_000)
    write(root, "intel-rapl:0:1", 1_500_000)
    write(root, "intel-rapl:0:2", 2_750_000)
    write(root, "intel-rapl:1", 39_000_000)
    after = sensor.read()
    delta = {k: after[k] - before[k] for k in after}
    assert delta == {"cpu-package": 3.0, "dram": 0.75, "cpu-core": 1.0, "cpu-uncore": 0.5, "psys": 9.0}


def test_amd_server_sums_the_sockets_packages(tmp_path):
    root = amd_server(tmp_path)
    sensor = probe(ctx(root)).sensor
    assert [d.name for d in sensor.domains] == ["cpu-package"] and sensor.primary.within is None
    sensor.read()
    write(root, "intel-rapl:0", 6_000_000)
    write(root, "intel-rapl:1", 9_500_000)
    assert sensor.read() == {"cpu-package": 3.5}


def test_die_zones_count_as_package_and_unknown_or_disabled_zones_are_skipped(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0-die-0", 1)
    zone(tmp_path, "intel-rapl:1", "package-0-die-1", 1)
    zone(tmp_path, "intel-rapl:2", "mystery", 1)
    zone(tmp_path, "intel-rapl:3", "dram", 1, enabled="0")
    zones, seen = find_zones(SysRoot(tmp_path))
    assert [z.name for z in zones] == ["package-0-die-0", "package-0-die-1"]
    assert "intel-rapl:2 (mystery: unknown zone, ignored)" in seen
    assert "intel-rapl:3 (dram: disabled)" in seen


def test_wraparound_uses_max_energy_range(tmp_path):
    root = amd_server(tmp_path)
    write(root, "intel-rapl:0", AMD_RANGE - 1_000)
    write(root, "intel-rapl:1", 0)
    sensor = probe(ctx(root)).sensor
    start = sensor.read()["cpu-package"]
    write(root, "intel-rapl:0", 500)  # wrapped: 1000 µJ to the top, then 500
    assert sensor.read()["cpu-package"] - start == pytest.approx(1500e-6, abs=1e-12)
    write(root, "intel-rapl:0", 2_500)
    assert sensor.read()["cpu-package"] - start == pytest.approx(3500e-6, abs=1e-12)


class DeniedRoot(SysRoot):
    """What a non-root user sees since CVE-2020-8694: energy_uj is 0400 root."""

    def read_text(self, path: str) -> str:
        if path.endswith("/energy_uj"):
            raise PermissionError(13, "Permission denied", str(self.real(path)))
        return super().read_text(path)


def test_permission_error_is_explained_with_the_fix(tmp_path):
    found = probe(Context(root=DeniedRoot(intel_laptop(tmp_path))))
    assert not found.available
    assert "permission denied" in found.reason and "CVE-2020-8694" in found.reason
    assert found.fix == PERMISSION_FIX and "root" in found.fix and "chmod" in found.fix and "udev" in found.fix


def test_permission_lost_mid_run_raises_sensor_error(tmp_path):
    root = intel_laptop(tmp_path)
    zones, _ = find_zones(SysRoot(root))
    sensor = RaplSensor(DeniedRoot(root), zones)
    with pytest.raises(SensorError, match="permission denied"):
        sensor.read()


def test_no_powercap_or_no_zones_say_why(tmp_path):
    missing = probe(ctx(tmp_path))
    assert not missing.available and "powercap" in missing.reason and "modprobe" in missing.fix
    (tmp_path / PC).mkdir(parents=True)
    empty = probe(ctx(tmp_path))
    assert not empty.available and "no RAPL zones" in empty.reason and "VM" in empty.reason


@dataclass(frozen=True)
class ClockedRoot(SysRoot):
    """An AMD-like package counter driven by a fake clock: 5 W idle until t=10, 20 W after."""

    clock: FakeClock = None
    offset_uj: int = 0

    def read_text(self, path: str) -> str:
        if path.endswith("intel-rapl:0/energy_uj"):
            t = self.clock.monotonic()
            joules = 5 * min(t, 10.0) + 20 * max(t - 10.0, 0.0)
            return str(int(round(self.offset_uj + joules * 1e6)) % AMD_RANGE)
        return super().read_text(path)


def test_meter_on_rapl_idle_window_and_a_wrap_inside_the_window(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 0, AMD_RANGE)
    clock = FakeClock()
    # the counter wraps 30 J into the 40 J measurement window
    root = ClockedRoot(tmp_path, clock=clock, offset_uj=AMD_RANGE - 50_000_000 - 30_000_000)
    meter = open_meter("rapl", root=root, env={}, clock=clock)
    assert meter.available and meter.domain == "cpu-package"
    idle = meter.measure_idle(1.0)
    assert idle == pytest.approx(5.0, abs=1e-5)
    clock.advance(10.0 - clock.monotonic())
    calls = []
    fields = meter.measure(lambda: (calls.append(1), clock.advance(0.25)), audio_s_per_call=2.0, min_window_s=2.0, idle_power_w=idle)
    assert len(calls) == 8 and fields["energy_window_s"] == 2.0
    assert fields["power_w_mean"] == pytest.approx(20.0, abs=1e-5)
    assert fields["energy_gross_j"] == pytest.approx(5.0, abs=1e-5)  # 40 J / 8 calls
    assert fields["energy_j"] == pytest.approx(3.75, abs=1e-5)  # (40 - 5 W x 2 s) / 8
    assert fields["energy_per_audio_s_j"] == pytest.approx(1.875, abs=1e-5)
    assert fields["energy_domain"] == "cpu-package" and fields["energy_source"].startswith("rapl")
    assert fields["energy_reason"] is None


def test_background_reads_catch_a_counter_that_wraps_several_times_in_one_window(tmp_path):
    # a 30 J counter range at 20 W: the 4 s window (80 J) wraps it twice; the first and last
    # reads alone would give 80 mod 30 = 20 J.  The meter's background reads (every second,
    # 20 J apart: less than the range) see every wrap.
    small = 30_000_000

    @dataclass(frozen=True)
    class SmallRange(SysRoot):
        clock: FakeClock = None

        def read_text(self, path: str) -> str:
            if path.endswith("intel-rapl:0/energy_uj"):
                return str(int(round(20 * self.clock.monotonic() * 1e6)) % small)
            return super().read_text(path)

    zone(tmp_path, "intel-rapl:0", "package-0", 0, small)
    clock = FakeClock()
    meter = open_meter("rapl", root=SmallRange(tmp_path, clock=clock), env={}, clock=clock)
    assert meter.available
    calls = []
    fields = meter.measure(lambda: (calls.append(1), clock.advance(0.25)), audio_s_per_call=1.0, min_window_s=4.0,
                           idle_power_w=None)
    assert len(calls) == 16 and fields["energy_window_s"] == 4.0
    assert fields["power_w_mean"] == pytest.approx(20.0, abs=1e-5)
    assert fields["energy_gross_j"] == pytest.approx(80.0 / 16, abs=1e-5)
