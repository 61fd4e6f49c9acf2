"""open_meter and EnergyMeter as the benchmark worker uses them: specs, auto selection with
preferences, several domains at once (never added), null-with-reason, the CLI."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from energy import FIELDS, EnergyConfigError, EnergyMeter, open_meter
from energy.cli import main
from energy.fakes import CounterSensor, FakeClock, FakeNVML, ProfileSensor
from energy.result import NO_IDLE

STEP = 1 / 1024


def laptop_tree(root: Path) -> Path:
    for label, name, uj in [("intel-rapl:0", "package-0", 1_000_000), ("intel-rapl:0:2", "dram", 1_000), ("intel-rapl:1", "psys", 9_000_000)]:
        d = root / "sys/class/powercap" / label
        d.mkdir(parents=True)
        (d / "name").write_text(name)
        (d / "energy_uj").write_text(str(uj))
        (d / "max_energy_range_uj").write_text("262143328850")
    return root


def gpu(clock=None):
    return FakeNVML([{"name": "NVIDIA H200", "energy_mj": lambda t: 1000 * 100 * t}], clock=clock)


def test_auto_on_this_machine_returns_unavailable_with_a_reason_never_raises():
    meter = open_meter("auto")
    if meter.available:  # a developer machine with a sensor: then it must say which
        assert meter.source and meter.domain
        meter.close()
        return
    assert meter.reason.startswith("no energy sensor found")
    for family in ("nvml", "jetson", "rpi", "rapl", "hwmon"):
        assert f"{family}:" in meter.reason
    assert "python -m energy" in meter.reason and "ENERGY=estimate" in meter.reason
    assert meter.measure_idle(1.0) is None


def test_unavailable_meter_never_calls_the_model_and_stores_null_plus_reason(tmp_path):
    meter = open_meter("auto", root=str(tmp_path), env={})
    called = []
    fields = meter.measure(lambda: called.append(1), audio_s_per_call=1.0)
    assert called == []
    assert set(fields) == set(FIELDS)
    assert all(fields[k] is None for k in FIELDS if k != "energy_reason")
    assert "rapl: no" in fields["energy_reason"]
    assert 0 not in fields.values()


def test_none_and_unknown_specs():
    off = open_meter("none")
    assert not off.available and "switched off" in off.reason
    with pytest.raises(EnergyConfigError) as err:
        open_meter("rapel")
    msg = str(err.value)
    assert "'rapel'" in msg and "rapl" in msg and "nvml" in msg and "csv:<path>" in msg and "\n" not in msg
    assert isinstance(err.value, ValueError)
    with pytest.raises(EnergyConfigError, match="'gpu'"):
        open_meter("auto", preferred=["gpu"])
    with pytest.raises(EnergyConfigError, match="cannot be combined"):
        open_meter("auto,rapl")


def test_sysfs_root_comes_from_the_environment_variable(tmp_path):
    meter = open_meter("rapl", env={"WAVEBENCH_SYSFS_ROOT": str(laptop_tree(tmp_path))})
    assert meter.available and meter.domain == "cpu-package"


def test_auto_uses_every_sensor_primary_follows_the_profile_preference(tmp_path):
    root = str(laptop_tree(tmp_path))
    default = open_meter("auto", root=root, env={}, nvml_module=gpu())
    assert default.domain == "gpu0"  # accelerators first by default
    assert [d.name for d in default.domains] == ["gpu0", "cpu-package", "dram", "psys"]
    cpu_first = open_meter("auto", ["rapl"], root=root, env={}, nvml_module=gpu())
    assert cpu_first.domain == "cpu-package" and cpu_first.source.startswith("rapl")
    only = open_meter("rapl,nvml", root=root, env={}, nvml_module=gpu())
    assert [s.family for s in only.sensors] == ["rapl", "nvml"]


def test_several_domains_are_reported_side_by_side_never_added():
    clock = FakeClock()
    gpu_power = ProfileSensor(clock, lambda t: 30.0 if t < 10 else 250.0, period_s=0.125, domain="gpu0")
    cpu_counter = CounterSensor(clock, lambda t: 10.0 * t if t < 10 else 100 + 40.0 * (t - 10), period_s=STEP, domain="cpu-package")
    meter = EnergyMeter(sensors=[gpu_power, cpu_counter], clock=clock, period_poll_s=STEP)
    meter.measure_idle(1.0)
    # the GPU reads a steady 30 W, so its period is its 100 ms default: windows of 20 x 0.1 s
    assert meter.idle_w == {"gpu0": pytest.approx(30.0, abs=1e-9), "cpu-package": 10.0}
    clock.advance(10.0 - clock.monotonic())
    fields = meter.measure(lambda: clock.advance(0.25), audio_s_per_call=1.0)
    assert fields["energy_window_s"] == 2.0
    assert fields["energy_domain"] == "gpu0"
    assert fields["energy_gross_j"] == pytest.approx(62.5, abs=1e-9)  # 250 W x 0.25 s
    assert fields["energy_j"] == pytest.approx(55.0, abs=1e-9)  # (250 - 30) W x 0.25 s
    domains = fields["energy_domains"]
    assert set(domains) == {"gpu0", "cpu-package"}
    cpu = domains["cpu-package"]
    assert cpu["energy_gross_j"] == 10.0 and cpu["energy_j"] == 7.5 and cpu["idle_power_w"] == 10.0
    assert cpu["within"] is None and cpu["calls"] == 8
    assert cpu["power_w_mean"] == 40.0
    assert not any("total" in key or "sum" in key for key in fields)  # nothing adds the domains up


def test_without_idle_baseline_only_gross_energy_is_reported():
    clock = FakeClock()
    meter = EnergyMeter(sensors=[CounterSensor(clock, lambda t: 7.0 * t)], clock=clock, period_poll_s=STEP)
    fields = meter.measure(lambda: clock.advance(0.5), audio_s_per_call=1.0)
    assert fields["energy_gross_j"] == pytest.approx(3.5) and fields["power_w_mean"] == pytest.approx(7.0)
    assert fields["energy_j"] is None and fields["energy_per_audio_s_j"] is None and fields["idle_power_w"] is None
    assert NO_IDLE in fields["energy_reason"]


def test_a_failing_model_call_propagates_and_stops_the_sampler():
    clock = FakeClock()
    meter = EnergyMeter(sensors=[ProfileSensor(clock, lambda t: 5.0 + t)], clock=clock, period_poll_s=STEP)

    def boom():
        clock.advance(0.1)
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        meter.measure(boom, audio_s_per_call=1.0)
    assert not any(t.name.startswith("energy-sampler") for t in threading.enumerate())


def test_a_sensor_failing_mid_window_gives_null_and_the_reason():
    clock = FakeClock()

    def watts(t):
        if t > 10.5:
            raise OSError("rail vanished")
        return 4.0 + t

    meter = EnergyMeter(sensors=[ProfileSensor(clock, watts)], clock=clock, period_poll_s=STEP)
    clock.advance(10.0)
    fields = meter.measure(lambda: clock.advance(0.25), audio_s_per_call=1.0, idle_power_w=1.0)
    assert fields["energy_j"] is None and fields["energy_gross_j"] is None
    assert "during the window" in fields["energy_reason"] and "rail vanished" in fields["energy_reason"]


def test_cli_lists_found_and_missing_with_fixes(tmp_path):
    out = io.StringIO()
    assert main(["--root", str(laptop_tree(tmp_path))], out=out) == 0
    text = out.getvalue()
    assert "[found]   rapl" in text and "domain psys" in text and "never added" in text
    assert "[missing] rpi: not a Raspberry Pi" in text
    assert "[missing] nvml" in text and "fix: pip install nvidia-ml-py" in text or "[found]   nvml" in text
    assert "ENERGY=auto -> energy:" in text
    out = io.StringIO()
    assert main(["--root", str(tmp_path / "empty"), "--json"], out=out) == 0
    data = json.loads(out.getvalue())
    rapl = next(f for f in data["families"] if f["family"] == "rapl")
    assert rapl["available"] is False and "powercap" in rapl["reason"] and rapl["fix"]
    assert data["selected"]["available"] is False


def test_cli_bad_spec_is_exit_2_and_powertop_import(tmp_path, capsys):
    assert main(["--spec", "bogus"]) == 2
    assert "unknown energy sensor" in capsys.readouterr().err
    report = tmp_path / "pt.csv"
    report.write_text("System baseline power is estimated at:  5.20 W;\n")
    out = io.StringIO()
    assert main(["--powertop", str(report)], out=out) == 0
    assert "5.20 W, estimated" in out.getvalue()


def test_a_failed_idle_baseline_is_explained_in_the_cell():
    clock = FakeClock()
    frozen_until_10 = CounterSensor(clock, lambda t: 0.0 if t < 10 else 12.0 * (t - 10), period_s=STEP)
    meter = EnergyMeter(sensors=[frozen_until_10], clock=clock, period_poll_s=STEP, period_timeout_s=0.25)
    assert meter.measure_idle(1.0) is None
    assert "did not advance" in meter.idle_reason
    clock.advance(10.0 - clock.monotonic())
    fields = meter.measure(lambda: clock.advance(0.5), audio_s_per_call=1.0)
    assert fields["energy_gross_j"] == pytest.approx(6.0) and fields["energy_j"] is None
    assert NO_IDLE in fields["energy_reason"] and "idle not measured" in fields["energy_reason"]
