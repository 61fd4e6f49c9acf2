"""Raspberry Pi 5 PMIC via recorded ``vcgencmd pmic_read_adc`` output; the Pi 4 refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from energy import SysRoot, open_meter
from energy.fakes import FakeClock, FakeRunner
from energy.rpi import parse_pmic, probe
from energy.sensor import Context
from host.commands import CommandResult

PI5_PMIC = """\
     3V7_WL_SW_A current(0)=0.00000000A
   3V3_SYS_A current(1)=0.05000000A
   1V8_SYS_A current(2)=0.20000000A
  DDR_VDD2_A current(3)=0.02500000A
  DDR_VDDQ_A current(4)=0.00000000A
   1V1_SYS_A current(5)=0.10000000A
   0V8_SW_A current(6)=0.25000000A
  VDD_CORE_A current(7)=0.75012000A
   3V3_DAC_A current(17)=nan
   3V3_ADC_A current(18)=0.00048840A
     3V7_WL_SW_V volt(8)=3.71524000V
   3V3_SYS_V volt(9)=3.30000000V
   1V8_SYS_V volt(10)=1.80000000V
  DDR_VDD2_V volt(11)=1.10000000V
  DDR_VDDQ_V volt(12)=0.60000000V
   1V1_SYS_V volt(13)=1.10000000V
   0V8_SW_V volt(14)=0.80000000V
  VDD_CORE_V volt(15)=0.72178200V
   3V3_DAC_V volt(20)=3.30000000V
   3V3_ADC_V volt(21)=nan
     HDMI_V volt(22)=5.00000000V
    EXT5V_V volt(24)=5.13198000V
     BATT_V volt(25)=0.00000000V
"""
PAIRED_W = {
    "3V7_WL_SW": 0.0,
    "3V3_SYS": 0.05 * 3.3,
    "1V8_SYS": 0.2 * 1.8,
    "DDR_VDD2": 0.025 * 1.1,
    "DDR_VDDQ": 0.0,
    "1V1_SYS": 0.1 * 1.1,
    "0V8_SW": 0.25 * 0.8,
    "VDD_CORE": 0.75012 * 0.721782,
}
PI4_REFUSAL = CommandResult(("vcgencmd", "pmic_read_adc"), 255, "", 'error=2 error_msg="Command not registered"')


def pi(root: Path, model: str) -> SysRoot:
    dt = root / "proc/device-tree"
    dt.mkdir(parents=True)
    (dt / "model").write_text(model + "\x00")
    return SysRoot(root)


def test_currents_and_voltages_pair_by_rail_name_and_nan_is_skipped():
    watts, skipped = parse_pmic(PI5_PMIC)
    assert watts == pytest.approx(PAIRED_W, abs=1e-15)
    assert sorted(skipped) == ["3V3_ADC_V=nan", "3V3_DAC_A=nan"]
    assert "EXT5V" not in watts and "HDMI" not in watts  # voltages without a current


def test_pi5_probe_and_reading_through_the_runner(tmp_path):
    runner = FakeRunner(outputs={"vcgencmd pmic_read_adc": PI5_PMIC})
    found = probe(Context(root=pi(tmp_path, "Raspberry Pi 5 Model B Rev 1.0"), runner=runner))
    sensor = found.sensor
    assert sensor.primary.name == "pmic-rails" and "less than board input power" in sensor.primary.description
    assert sensor.min_interval_s == 0.1
    assert any("skipped" in line and "nan" in line for line in found.found)
    assert sensor.read() == {"pmic-rails": pytest.approx(sum(PAIRED_W.values()), abs=1e-12)}


def test_pi5_meter_samples_at_the_pmic_pace_and_integrates(tmp_path):
    clock = FakeClock()
    state = {"core_a": 0.5}
    runner = FakeRunner(outputs={"vcgencmd pmic_read_adc": lambda: f"VDD_CORE_A current(7)={state['core_a']}A\nVDD_CORE_V volt(15)=0.8V\n"})
    meter = open_meter("rpi", root=pi(tmp_path, "Raspberry Pi 5 Model B Rev 1.0"), env={}, runner=runner, clock=clock)
    meter.period_timeout_s = 0.5  # the value is steady, so the period is the PMIC's 100 ms default
    idle = meter.measure_idle(2.0)
    assert idle == pytest.approx(0.4, abs=1e-12)
    state["core_a"] = 2.5  # 2 W while the model runs
    n_before = len(runner.calls)
    fields = meter.measure(lambda: clock.advance(0.25), audio_s_per_call=1.0, min_window_s=2.0, idle_power_w=idle)
    assert fields["energy_gross_j"] == pytest.approx(0.5, abs=1e-12)  # 2 W x 0.25 s
    assert fields["energy_j"] == pytest.approx(0.4, abs=1e-12)  # (2 - 0.4) W x 0.25 s
    assert fields["energy_domain"] == "pmic-rails"
    assert 20 <= len(runner.calls) - n_before <= 23  # ~10 Hz over 2 s, plus the edges


def test_pi4_refusal_points_to_an_external_meter(tmp_path):
    runner = FakeRunner(outputs={"vcgencmd pmic_read_adc": PI4_REFUSAL})
    found = probe(Context(root=pi(tmp_path, "Raspberry Pi 4 Model B Rev 1.4"), runner=runner))
    assert not found.available
    assert "Raspberry Pi 4 Model B Rev 1.4 has no onboard power sensor" in found.reason
    assert "Command not registered" in found.reason
    assert "ENERGY=csv:" in found.fix and "INA219" in found.fix


def test_not_a_pi_runs_no_command_and_a_missing_vcgencmd_says_what_to_install(tmp_path):
    runner = FakeRunner()
    found = probe(Context(root=SysRoot(tmp_path), runner=runner))
    assert not found.available and "not a Raspberry Pi" in found.reason and runner.calls == []
    found = probe(Context(root=pi(tmp_path, "Raspberry Pi 5 Model B"), runner=runner))
    assert "vcgencmd not found" in found.reason and "raspi-utils" in found.fix
