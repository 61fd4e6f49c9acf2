"""External meters (hwmon power inputs, a CSV log of timestamped watts), the powertop import,
and the opt-in estimate -- each labelled as what it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from energy import EnergyConfigError, SysRoot, open_meter
from energy.csvmeter import align_window, read_power_csv
from energy.fakes import FakeClock
from energy.hwmon import probe as hwmon_probe
from energy.integrate import CoverageError
from energy.powertop import parse_powertop
from energy.sensor import Context

WALL0 = 1_700_000_000.0  # FakeClock's wall time at t = 0


def hwmon(root: Path, idx: int, name: str, files: dict[str, int | str]) -> None:
    d = root / f"sys/class/hwmon/hwmon{idx}"
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    for fname, value in files.items():
        (d / fname).write_text(f"{value}\n")


def test_hwmon_ina219_microwatts_and_non_meter_chips_only_on_request(tmp_path):
    hwmon(tmp_path, 0, "amdgpu", {"power1_input": 35_000_000})
    hwmon(tmp_path, 1, "coretemp", {"temp1_input": 45000})
    hwmon(tmp_path, 2, "ina219", {"power1_input": 2_350_000, "power1_label": "usb-c"})
    found = hwmon_probe(Context(root=SysRoot(tmp_path)))
    assert found.sensor.read() == {"external:ina219/usb-c": 2.35}  # the GPU's power file is not a meter
    forced_only_gpu = tmp_path / "gpu_only"
    hwmon(forced_only_gpu, 0, "amdgpu", {"power1_input": 35_000_000})
    auto = hwmon_probe(Context(root=SysRoot(forced_only_gpu)))
    assert not auto.available and "amdgpu" in auto.reason and "ENERGY=hwmon" in auto.fix
    forced = hwmon_probe(Context(root=SysRoot(forced_only_gpu)), forced=True)
    assert forced.sensor.read() == {"external:amdgpu/power1": 35.0}


def test_two_identical_meters_get_distinct_domains(tmp_path):
    hwmon(tmp_path, 3, "ina226", {"power1_input": 1_000_000})
    hwmon(tmp_path, 4, "ina226", {"power1_input": 2_000_000})
    sensor = hwmon_probe(Context(root=SysRoot(tmp_path))).sensor
    assert sensor.read() == {"external:ina226@hwmon3/power1": 1.0, "external:ina226@hwmon4/power1": 2.0}


def write_log(path: Path, rows: list[tuple], header: str = "timestamp,watts") -> Path:
    path.write_text(header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return path


def test_csv_log_is_aligned_to_the_window_by_unix_time(tmp_path):
    # a USB meter logging every 0.5 s: 3 W, stepping linearly to 5 W between t=1 and t=2
    rows = [(WALL0 + k * 0.5, 3.0 if k <= 2 else 5.0) for k in range(11)]
    log = write_log(tmp_path / "meter.csv", rows)
    joules, mean_w = align_window(log, WALL0 + 0.25, WALL0 + 4.25)
    # 3 W over [0.25, 1]; ramp 3->5 over [1, 1.5]; 5 W over [1.5, 4.25]
    assert joules == pytest.approx(3 * 0.75 + 4 * 0.5 + 5 * 2.75, abs=1e-9)
    assert mean_w == pytest.approx(joules / 4.0, abs=1e-12)
    with pytest.raises(CoverageError):
        align_window(log, WALL0 + 3.0, WALL0 + 9.0)  # the log stopped at +5 s


def test_csv_formats_iso_times_milliwatts_and_volts_times_amps(tmp_path):
    iso = write_log(tmp_path / "iso.csv", [("2024-05-01T12:00:00+00:00", 2500), ("2024-05-01T12:00:01+00:00", 2500)], "Time;Power (mW)".replace(";", ","))
    log = read_power_csv(iso)
    assert log.times == [1714564800.0, 1714564801.0] and log.watts == [2.5, 2.5]
    va = write_log(tmp_path / "va.csv", [(1714564800000, 5.1, 0.5)], "unix,Voltage(V),Current(A)")
    assert read_power_csv(va).watts == [pytest.approx(2.55)] and read_power_csv(va).times == [1714564800.0]
    semi = tmp_path / "semi.csv"
    semi.write_text("time;watts\n10;1.5\n11;1.5\n")
    assert read_power_csv(semi, offset_s=-10).times == [0.0, 1.0]
    bad = write_log(tmp_path / "bad.csv", [(1, 2)], "when,how_much")
    with pytest.raises(ValueError, match="needs a time column"):
        read_power_csv(bad)


def test_meter_with_a_csv_log_measures_idle_and_cells(tmp_path):
    clock = FakeClock()
    # the meter logged 4 W idle for the first 10 s, then 9 W, every 0.25 s
    rows = [(WALL0 + k * 0.25, 4.0 if k * 0.25 < 10 else 9.0) for k in range(0, 81)]
    log = write_log(tmp_path / "usb.csv", rows)
    meter = open_meter(f"csv:{log}", env={}, clock=clock)
    assert meter.available and meter.domain == "external" and str(log) in meter.source
    assert meter.measure_idle(2.0) == pytest.approx(4.0)
    clock.advance(10.0 - clock.monotonic())
    fields = meter.measure(lambda: clock.advance(0.5), audio_s_per_call=2.0, min_window_s=4.0)
    assert fields["energy_window_s"] == 5.0  # 20 log intervals of 0.25 s beat the 4 s minimum
    assert fields["energy_gross_j"] == pytest.approx(4.5)  # 9 W x 0.5 s
    assert fields["energy_j"] == pytest.approx(2.5)  # (9 - 4) W x 0.5 s
    assert fields["energy_per_audio_s_j"] == pytest.approx(1.25)
    dom = fields["energy_domains"]["external"]
    assert dom["window_start_unix"] == WALL0 + 10.0 and dom["window_end_unix"] == WALL0 + 15.0 and dom["calls"] == 10


def test_csv_that_does_not_cover_the_window_is_null_with_the_stamps_kept(tmp_path):
    clock = FakeClock()
    log = write_log(tmp_path / "late.csv", [(WALL0, 4.0), (WALL0 + 1, 4.0)])
    meter = open_meter(f"csv:{log}", env={"ENERGY_CSV_GRACE_S": "1"}, clock=clock)
    fields = meter.measure(lambda: clock.advance(1.0), audio_s_per_call=1.0, min_window_s=3.0)
    assert fields["energy_j"] is None and fields["energy_gross_j"] is None
    assert "does not cover the window" in fields["energy_reason"] and "align" in fields["energy_reason"]
    assert fields["energy_domains"]["external"]["window_start_unix"] is not None


def test_csv_spec_without_a_path_is_a_config_error():
    with pytest.raises(EnergyConfigError, match="needs the path"):
        open_meter("csv:", env={})


POWERTOP_BATTERY = """\
____________________________________________________________________
 *  *  *   PowerTOP 2.15   *  *  *
The battery reports a discharge rate of:  9.95 W
The energy consumed was:  597 J
System baseline power is estimated at:  8.10 W
"""
POWERTOP_AC = """\
____________________________________________________________________
 *  *  *   Power Consumption Summary   *  *  *
System baseline power is estimated at:  5.20 W;
Power est.;Usage;Device Name
  1.23 W;  2.0%;CPU core
"""


def test_powertop_import_is_measured_only_on_battery():
    measured = parse_powertop(POWERTOP_BATTERY)
    assert measured.measured and measured.power_w == 9.95 and measured.energy_j == 597.0
    assert measured.label.startswith("measured")
    estimated = parse_powertop(POWERTOP_AC)
    assert not estimated.measured and estimated.power_w == 5.2 and estimated.energy_j is None
    assert "estimated" in estimated.label and "not measured" in estimated.label
    assert parse_powertop("nothing here").power_w is None


# The summary lines as powertop writes them.  Formats from powertop's source (fenrus75/powertop):
# up to 2.15 the CSV summary is "label value" (report-formatter-csv.cpp add_summary_list: "%s %s" then
# ";"), with the labels of src/devices/device.cpp ("The energy consumed was : ", a space before the
# colon) and values from fmt_prefix (src/lib.cpp): three digits, a space, an SI prefix, then the unit
# appended after another space ("830 m W").  From 2.16 the CSV summary is a key,value pair and
# fmt_prefix puts a space (or "-") before the digits.  The reports below are assembled from those
# sources (the summary lines in full, the rest of a report left out), not captured on a machine.
POWERTOP_215_BATTERY = """\
\t\t\tP o w e r T O P
____________________________________________________________________
 *  *  *   Device Power Report   *  *  *

The battery reports a discharge rate of:  830 m W;

The energy consumed was :  325  J;

The system baseline power is estimated at:  2.41  W;
"""
POWERTOP_216_BATTERY = """\
PowerTOP
The battery reports a discharge rate of: , 14.5  W
The energy consumed was : , 3.25 kJ
The system baseline power is estimated at: , 12.1  W

# Device Power Report
"""
POWERTOP_216_AC = """\
PowerTOP
The system baseline power is estimated at: , 830 m W

# Device Power Report
"""


def test_powertop_reports_as_powertop_writes_them():
    old = parse_powertop(POWERTOP_215_BATTERY)
    assert old.measured and old.power_w == 0.830 and old.energy_j == 325.0  # "m W": a spaced prefix
    assert old.label == "measured (battery discharge rate)"
    new = parse_powertop(POWERTOP_216_BATTERY)
    assert new.measured and new.power_w == 14.5 and new.energy_j == 3250.0
    ac = parse_powertop(POWERTOP_216_AC)
    assert not ac.measured and ac.power_w == 0.83 and ac.label == "estimated (powertop model; not measured)"
    screen = parse_powertop("The battery reports a discharge rate of 1.20 mW\nThe energy consumed was 450 mJ\n")
    assert screen.power_w == 0.0012 and screen.energy_j == 0.45  # the interactive screen: prefix and unit joined


def test_estimate_is_opt_in_and_labelled_estimated_everywhere():
    with pytest.raises(EnergyConfigError, match="CPU_WATTS"):
        open_meter("estimate", env={})
    with pytest.raises(EnergyConfigError, match="not a number"):
        open_meter("estimate", env={"CPU_WATTS": "lots"})
    clock = FakeClock()
    cpu = {"s": 0.0}

    def work():
        clock.advance(0.5)
        cpu["s"] += 0.5 * 2  # two cores busy

    meter = open_meter("estimate", env={"CPU_WATTS": "16"}, clock=clock, cpu_time=lambda: cpu["s"])
    ncpu = meter.sensors[0]._ncpu
    assert meter.measure_idle(1.0) == 0.0  # no CPU time used while idle
    fields = meter.measure(work, audio_s_per_call=1.0, min_window_s=2.0)
    assert fields["energy_gross_j"] == pytest.approx(16 * 1.0 / ncpu)  # 16 W x 1 CPU-s per call / ncpu
    assert fields["energy_j"] == pytest.approx(16 * 1.0 / ncpu)
    assert "estimated" in fields["energy_source"] and "estimated" in fields["energy_domain"]
    assert "estimated, not measured" in fields["energy_reason"]
    auto = open_meter("auto", root="/nonexistent-root", env={"CPU_WATTS": "16"})
    assert not auto.available  # auto never falls back to an estimate
