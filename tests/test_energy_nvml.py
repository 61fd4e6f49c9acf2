"""NVIDIA GPUs through a fake NVML module: the energy counter where supported, power polling
where the counter answers NotSupported, and clear reasons where neither works."""

from __future__ import annotations

import sys

import pytest

from energy import open_meter
from energy.fakes import FakeClock, FakeNVML
from energy.nvml import NvmlEnergySensor, NvmlPowerSensor, probe
from energy.sensor import Context

STEP = 1 / 1024


def staged(idle_w: float, load_w: float, switch_t: float = 10.0):
    """Cumulative joules of a GPU idling at ``idle_w`` until ``switch_t``, then at ``load_w``."""
    return lambda t: idle_w * min(t, switch_t) + load_w * max(t - switch_t, 0.0)


def test_energy_counter_is_used_where_supported_and_measured_exactly():
    clock = FakeClock()
    joules = staged(50.0, 200.0)
    # the counter (mJ) updates every 125 ms, like the ~100 ms of real boards
    counter = lambda t: 1000 * joules((t // 0.125) * 0.125)
    nvml = FakeNVML([{"name": "NVIDIA H200", "energy_mj": counter, "power_mw": lambda t: 0}], clock=clock)
    meter = open_meter("nvml", env={}, clock=clock, nvml_module=nvml)
    meter.period_poll_s = STEP
    assert meter.available and isinstance(meter.sensors[0], NvmlEnergySensor)
    assert meter.domain == "gpu0" and "total-energy counter" in meter.source and "H200" in meter.source
    idle = meter.measure_idle(1.0)
    assert meter.periods[id(meter.sensors[0])].seconds == 0.125
    assert idle == 50.0  # window stretched to 20 update periods = 2.5 s
    clock.advance(10.0 - clock.monotonic())
    syncs = []
    fields = meter.measure(lambda: clock.advance(0.25), audio_s_per_call=4.0, idle_power_w=idle, sync=lambda: syncs.append(clock.monotonic()))
    assert fields["energy_window_s"] == 2.5  # max(min_window_s=2, 20 x 0.125 s)
    assert len(syncs) == 11  # once before the window, then after each of the 10 calls
    assert fields["energy_gross_j"] == 50.0  # 200 W x 2.5 s / 10 calls
    assert fields["energy_j"] == 37.5  # (500 J - 50 W x 2.5 s) / 10
    assert fields["energy_per_audio_s_j"] == 9.375
    assert fields["power_w_mean"] == 200.0 and fields["idle_power_w"] == 50.0
    meter.close()
    assert nvml.shutdowns == 1


def test_counter_not_supported_falls_back_to_power_polling_integrated():
    clock = FakeClock()
    power = lambda t: 60_000 if t < 10 else 150_000  # mW
    nvml = FakeNVML([{"name": "Tesla P100", "energy_mj": None, "power_mw": power}], clock=clock)
    found = probe(Context(clock=clock, nvml=nvml))
    assert isinstance(found.sensor, NvmlPowerSensor)
    assert any("not supported" in line for line in found.found)
    meter = open_meter("nvml", env={}, clock=clock, nvml_module=nvml)
    meter.period_poll_s = STEP
    assert "power polling" in meter.source
    idle = meter.measure_idle(3.0)
    # a steady reading never changes, so the period is the sensor's default (100 ms), not measured
    assert not meter.periods[id(meter.sensors[0])].measured
    assert idle == pytest.approx(60.0, abs=1e-9)
    clock.advance(10.0 - clock.monotonic())
    fields = meter.measure(lambda: clock.advance(0.5), audio_s_per_call=1.0, min_window_s=3.0, idle_power_w=idle)
    assert fields["energy_window_s"] == 3.0
    assert fields["energy_gross_j"] == pytest.approx(75.0, abs=1e-9)  # 150 W x 0.5 s
    assert fields["energy_j"] == pytest.approx(45.0, abs=1e-9)  # (150 - 60) W x 0.5 s
    assert fields["energy_reason"] is None


def test_neither_energy_nor_power_supported_is_unavailable_with_a_reason():
    nvml = FakeNVML([{"name": "GRID vGPU", "energy_mj": None, "power_mw": None}])
    found = probe(Context(nvml=nvml))
    assert not found.available
    assert "neither energy nor power" in found.reason and "Not Supported" in found.reason
    assert "external meter" in found.fix
    assert nvml.shutdowns == 1


def test_driver_missing_and_module_missing(monkeypatch):
    found = probe(Context(nvml=FakeNVML([], init_error="Driver Not Loaded")))
    assert not found.available and "Driver Not Loaded" in found.reason and "driver" in found.fix
    monkeypatch.setitem(sys.modules, "pynvml", None)  # importing it now raises ImportError
    found = probe(Context())
    assert not found.available and "not installed" in found.reason
    assert "pip install nvidia-ml-py" in found.fix
    meter = open_meter("nvml", env={})
    assert not meter.available and "pip install nvidia-ml-py" in meter.reason


def test_the_benchmarks_gpu_is_chosen_from_cuda_visible_devices():
    gpus = [
        {"name": "GPU A", "uuid": "GPU-aaa", "energy_mj": lambda t: 1},
        {"name": "GPU B", "uuid": "GPU-bbb", "energy_mj": lambda t: 2},
    ]
    by_index = probe(Context(env={"CUDA_VISIBLE_DEVICES": "1,0"}, nvml=FakeNVML(gpus)))
    assert by_index.sensor.primary.name == "gpu1" and "GPU B" in by_index.sensor.source
    by_uuid = probe(Context(env={"CUDA_VISIBLE_DEVICES": "GPU-bbb"}, nvml=FakeNVML(gpus)))
    assert "GPU B" in by_uuid.sensor.source
    bad = probe(Context(env={"CUDA_VISIBLE_DEVICES": "7"}, nvml=FakeNVML(gpus)))
    assert not bad.available and "'7'" in bad.reason


def test_counter_that_never_moves_is_null_not_zero():
    clock = FakeClock()
    nvml = FakeNVML([{"name": "stuck", "energy_mj": lambda t: 123_000}], clock=clock)
    meter = open_meter("nvml", env={}, clock=clock, nvml_module=nvml)
    meter.period_poll_s = STEP
    meter.period_timeout_s = 0.25
    fields = meter.measure(lambda: clock.advance(0.5), audio_s_per_call=1.0, idle_power_w=10.0)
    assert fields["energy_j"] is None and fields["energy_gross_j"] is None and fields["power_w_mean"] is None
    assert "did not advance" in fields["energy_reason"] and "not reported as 0" in fields["energy_reason"]
    assert fields["energy_source"].startswith("nvml") and fields["energy_window_s"] == 2.0
