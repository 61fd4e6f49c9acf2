"""The method's core: trapezoid integration, the update-period probe, the sampler thread in
virtual time (exact joules for a known power profile)."""

from __future__ import annotations

import threading

import pytest

from energy.fakes import FakeClock, ProfileSensor
from energy.integrate import CoverageError, largest_gap, trapezoid
from energy.sampler import Sampler, measure_update_period

STEP = 1 / 1024  # dyadic: sums of it are exact in binary floating point


def test_trapezoid_is_exact_for_a_linear_profile_and_clips_to_the_window():
    times = [0.0, 1.0, 2.0, 3.0]
    watts = [5 + 2 * t for t in times]  # P(t) = 5 + 2t
    assert trapezoid(times, watts, 0.0, 3.0) == 5 * 3 + 3**2  # 24 J
    # window inside the samples: edges interpolated, still exact for a linear profile
    assert trapezoid(times, watts, 0.5, 2.5) == pytest.approx(5 * 2 + (2.5**2 - 0.5**2), abs=1e-12)


def test_trapezoid_refuses_a_window_the_samples_do_not_cover():
    with pytest.raises(CoverageError, match="window"):
        trapezoid([1.0, 2.0], [3.0, 3.0], 0.0, 2.0)
    with pytest.raises(CoverageError):
        trapezoid([], [], 0.0, 1.0)
    # a tolerance of one sample interval accepts a log that starts just after the window
    assert trapezoid([1.0, 2.0], [3.0, 3.0], 0.9, 2.0, tolerance_s=0.2) == pytest.approx(3.3)
    assert largest_gap([1.0, 1.5, 4.0], 1.0, 4.0) == 2.5


def test_update_period_is_measured_by_polling_until_the_value_changes():
    clock = FakeClock()
    sensor = ProfileSensor(clock, lambda t: 10 + t, period_s=0.125)  # value held for 125 ms
    period = measure_update_period(sensor, clock, timeout_s=2.0, poll_s=STEP)
    assert period.measured and period.seconds == 0.125
    assert clock.monotonic() == 0.25  # stopped at the second change, no later


def test_update_period_of_a_constant_sensor_falls_back_to_its_default_and_says_so():
    clock = FakeClock()
    sensor = ProfileSensor(clock, lambda t: 3.0)
    sensor.default_period_s = 0.5
    period = measure_update_period(sensor, clock, timeout_s=1.0, poll_s=STEP)
    assert not period.measured and period.seconds == 0.5
    assert "did not change" in period.note
    assert clock.monotonic() == pytest.approx(1.0, abs=STEP)


def test_sampler_thread_samples_at_the_sensor_pace_in_virtual_time_with_exact_joules():
    clock = FakeClock()
    sensor = ProfileSensor(clock, lambda t: 5 + 2 * t)  # known profile: E(0..3) = 24 J
    sampler = Sampler(sensor, clock, interval_s=0.125)
    t0 = sampler.start()
    for _ in range(12):  # the "model": 12 calls of 250 ms
        clock.advance(0.25)
    t1 = sampler.stop()
    times, watts = sampler.samples.series("fake-power")
    assert (t0, t1) == (0.0, 3.0)
    # a sample every 125 ms, plus the one taken at stop (same instant as the last tick)
    assert times[:-1] == [k * 0.125 for k in range(25)] and times[-1] == 3.0
    assert watts[5] == 5 + 2 * 0.625
    assert trapezoid(times, watts, t0, t1) == 24.0
    assert not any(t.name.startswith("energy-sampler") for t in threading.enumerate())


def test_sampler_reports_a_sensor_failure_instead_of_dying_silently():
    clock = FakeClock()

    def watts(t):
        if t >= 0.5:
            raise OSError("device unplugged")
        return 2.0

    sampler = Sampler(ProfileSensor(clock, watts), clock, interval_s=0.25)
    sampler.start()
    clock.advance(1.0)
    sampler.stop()
    assert isinstance(sampler.samples.error, OSError)
    assert sampler.samples.times == [0.0, 0.25]  # nothing after the failure


def test_the_real_sampler_thread_on_the_real_clock():
    # once, short (0.2 s): the thread starts, reads in the background, stops and is gone;
    # a constant 3 W integrates to exactly 3 W x the window, however many reads the OS allowed
    from energy.clock import SystemClock

    clock = SystemClock()
    sensor = ProfileSensor(clock, lambda t: 3.0)
    sampler = Sampler(sensor, clock, interval_s=0.02)
    t0 = sampler.start()
    clock.sleep(0.2)
    t1 = sampler.stop()
    times, watts = sampler.samples.series("fake-power")
    assert sampler.samples.error is None and t1 > t0
    assert times[0] == t0 and times[-1] == t1 and times == sorted(times) and len(times) >= 2
    assert sensor.reads == len(times)
    assert trapezoid(times, watts, t0, t1) == pytest.approx(3.0 * (t1 - t0))
    assert not any(t.name.startswith("energy-sampler") for t in threading.enumerate())
