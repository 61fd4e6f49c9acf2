"""The energy harness: idle baseline and per-cell windows over one or several sensors.

Method (``docs/energy.md`` explains the why):

1. On first use, each sensor's update period is measured (poll until the value changes).
2. ``measure_idle(s)``: with the model loaded and nothing running, read every sensor over at
   least ``max(s, 20 update periods)`` and keep the mean watts per domain.
3. ``measure(call, ...)``: synchronise, start the readers (a sampler thread for power sensors,
   counter readings for energy counters, Unix stamps for a logging meter), call the model
   repeatedly until at least ``max(min_window_s, 20 update periods)`` have passed, synchronising
   after every call, then stop the readers and turn joules into fields (:mod:`energy.result`).

Several sensors at once (CPU package + GPU) are reported per domain in ``energy_domains``; the
main fields carry the primary domain (the first sensor's first domain).  Domains are never
added together: they may overlap (psys contains the package; a wall meter contains everything).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .clock import Clock, SystemClock
from .errors import SensorError
from .integrate import CoverageError, trapezoid
from .result import FIELDS, WindowEnergy, empty_fields
from .sampler import Period, Sampler, measure_update_period
from .sensor import Domain, Probe, Sensor

MIN_PERIODS = 20  # a window spans at least this many sensor updates
COUNTER_POLL_S = 1.0  # background reads of wrapping counters


@dataclass
class _Run:
    """The readers of one window, started and stopped together."""

    sensor: Sensor
    sampler: Sampler | None = None
    start: dict[str, float] | None = None
    end: dict[str, float] | None = None
    t_start: float = 0.0
    t_end: float = 0.0
    error: str | None = None


@dataclass
class EnergyMeter:
    """Measures joules per call on the sensors it was opened with; see :func:`energy.open_meter`."""

    sensors: list[Sensor] = field(default_factory=list)
    clock: Clock = field(default_factory=SystemClock)
    unavailable_reason: str | None = None
    probes: list[Probe] = field(default_factory=list)
    period_timeout_s: float = 2.0
    period_poll_s: float = 0.001
    periods: dict[int, Period] = field(default_factory=dict, repr=False)
    idle_w: dict[str, float | None] = field(default_factory=dict)
    idle_reason: str | None = None

    # -- what it measures ---------------------------------------------------------------
    @property
    def available(self) -> bool:
        return bool(self.sensors)

    @property
    def reason(self) -> str | None:
        """Why nothing can be measured (and how to fix it); ``None`` when available."""
        if self.available:
            return None
        return self.unavailable_reason or "no energy sensor"

    @property
    def source(self) -> str | None:
        return self.sensors[0].source if self.sensors else None

    @property
    def domain(self) -> str | None:
        return self.sensors[0].primary.name if self.sensors else None

    @property
    def domains(self) -> list[Domain]:
        return [d for s in self.sensors for d in s.domains]

    def describe(self) -> str:
        if not self.available:
            return f"energy: not measured: {self.reason}"
        return "energy: " + "; ".join(f"{s.primary.name} from {s.source}" for s in self.sensors)

    # -- update periods -----------------------------------------------------------------
    def update_periods(self) -> dict[str, Period]:
        """Measure each sensor's update period once (cached on the meter)."""
        for sensor in self.sensors:
            if id(sensor) not in self.periods:
                if sensor.kind == "log":
                    self.periods[id(sensor)] = Period(sensor.known_period_s or 1.0, sensor.known_period_s is not None)
                else:
                    try:
                        self.periods[id(sensor)] = measure_update_period(sensor, self.clock, self.period_timeout_s, self.period_poll_s)
                    except (SensorError, OSError) as exc:
                        self.periods[id(sensor)] = Period(sensor.default_period_s, False, f"probe failed: {exc}")
        return {s.primary.name: self.periods[id(s)] for s in self.sensors}

    def _min_window(self, floor_s: float) -> float:
        longest = max((p.seconds for p in self.update_periods().values()), default=0.0)
        return max(floor_s, MIN_PERIODS * longest)

    # -- the window -----------------------------------------------------------------------
    def _start(self) -> list[_Run]:
        runs = []
        for sensor in self.sensors:
            run = _Run(sensor)
            try:
                if sensor.kind == "power":
                    interval = max(self.periods[id(sensor)].seconds, sensor.min_interval_s)
                    run.sampler = Sampler(sensor, self.clock, interval)
                    run.t_start = run.sampler.start()
                elif sensor.kind == "energy" and sensor.wraps:
                    run.sampler = Sampler(sensor, self.clock, COUNTER_POLL_S)
                    run.t_start = run.sampler.start()
                elif sensor.kind == "energy":
                    run.start, run.t_start = sensor.read(), self.clock.monotonic()
            except (SensorError, OSError) as exc:
                run.error = f"sensor read failed at the start of the window: {exc}"
                run.sampler = None
            runs.append(run)
        return runs

    def _stop(self, runs: list[_Run]) -> None:
        for run in runs:
            try:
                if run.sampler is not None:
                    run.t_end = run.sampler.stop()
                    if run.sampler.samples.error is not None:
                        run.error = f"sensor read failed during the window: {run.sampler.samples.error}"
                elif run.sensor.kind == "energy" and run.error is None:
                    run.end, run.t_end = run.sensor.read(), self.clock.monotonic()
            except (SensorError, OSError) as exc:
                run.error = f"sensor read failed at the end of the window: {exc}"

    def _energies(self, runs: list[_Run], t0: float, t1: float, w0: float, w1: float, calls: int) -> list[WindowEnergy]:
        out = []
        window = t1 - t0
        for run in runs:
            sensor = run.sensor
            for dom in sensor.domains:
                joules, reason = None, run.error
                if reason is None:
                    try:
                        joules = self._domain_joules(run, dom.name, t0, t1, w0, w1)
                    except (SensorError, CoverageError, OSError) as exc:
                        reason = str(exc)
                    if joules is not None and joules <= 0 and not sensor.estimated and sensor.kind == "energy":
                        reason = (
                            f"the {sensor.family} counter did not advance over the {window:.3f} s window "
                            "(a frozen or virtualised counter): not reported as 0"
                        )
                        joules = None
                out.append(WindowEnergy(dom.name, sensor.source, joules, window, calls, sensor.estimated, reason, w0, w1))
        return out

    def _domain_joules(self, run: _Run, domain: str, t0: float, t1: float, w0: float, w1: float) -> float | None:
        sensor = run.sensor
        if sensor.kind == "log":
            return sensor.energy_between(w0, w1)  # type: ignore[attr-defined]
        if sensor.kind == "power":
            assert run.sampler is not None
            times, watts = run.sampler.samples.series(domain)
            return trapezoid(times, watts, t0, t1)
        if run.sampler is not None:  # wrapping counter: first and last of the background reads
            samples = run.sampler.samples
            start, end = samples.values[0], samples.values[-1]
            t_start, t_end = samples.times[0], samples.times[-1]
        else:
            start, end, t_start, t_end = run.start or {}, run.end or {}, run.t_start, run.t_end
        if domain not in start or domain not in end:
            raise SensorError(f"no {domain} reading")
        span = t_end - t_start
        delta = end[domain] - start[domain]
        # the counter was read just outside [t0, t1]: scale its mean power to the window
        return delta * (t1 - t0) / span if span > 0 else delta

    def _window(self, body: Callable[[float], int], sync: Callable[[], None] | None) -> list[WindowEnergy]:
        self.update_periods()
        if sync is not None:
            sync()
        runs = self._start()
        t0, w0 = self.clock.monotonic(), self.clock.wall()
        try:
            calls = body(t0)
            t1, w1 = self.clock.monotonic(), self.clock.wall()
        finally:
            self._stop(runs)
        return self._energies(runs, t0, t1, w0, w1, calls)

    # -- the API ------------------------------------------------------------------------
    def measure_idle(self, seconds: float) -> float | None:
        """Mean watts of the primary domain with nothing running (the model loaded).

        Every domain's idle watts are kept on the meter and subtracted by :meth:`measure`.
        Returns ``None`` (and sets ``idle_reason``) when the sensor could not be read."""
        if not self.available:
            self.idle_reason = self.reason
            return None
        target = self._min_window(seconds)

        def idle(t0: float) -> int:
            self.clock.sleep(target)
            return 1

        energies = self._window(idle, None)
        self.idle_w = {e.domain: (e.joules / e.window_s if e.joules is not None and e.window_s > 0 else None) for e in energies}
        primary = energies[0]
        self.idle_reason = None if self.idle_w[primary.domain] is not None else f"idle not measured: {primary.reason}"
        return self.idle_w[primary.domain]

    def measure(
        self,
        call: Callable[[], None],
        *,
        audio_s_per_call: float,
        min_window_s: float = 2.0,
        idle_power_w: float | None = None,
        sync: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Run ``call`` repeatedly over one energy window and return the record's energy fields.

        ``audio_s_per_call`` is batch size x duration.  ``idle_power_w`` overrides the primary
        domain's baseline from :meth:`measure_idle`.  ``sync`` (e.g. ``torch.cuda.synchronize``)
        runs before the window and after every call.  When the meter is unavailable, ``call``
        is never run and every field is ``None`` with the reason.  When measured, the result
        also has ``energy_domains``: the same fields per domain, plus the window's Unix stamps.
        """
        if not self.available:
            return empty_fields(self.reason)
        if audio_s_per_call is not None and audio_s_per_call <= 0:
            raise ValueError(f"audio_s_per_call must be positive seconds of audio per call, got {audio_s_per_call}")
        target = self._min_window(min_window_s)

        def loop(t0: float) -> int:
            calls = 0
            while True:
                call()
                if sync is not None:
                    sync()
                calls += 1
                if self.clock.monotonic() - t0 >= target:
                    return calls

        energies = self._window(loop, sync)
        per_domain: dict[str, dict[str, Any]] = {}
        for e in energies:
            idle = idle_power_w if (e.domain == self.domain and idle_power_w is not None) else self.idle_w.get(e.domain)
            fields = e.fields(audio_s_per_call, idle)
            if idle is None and self.idle_reason and e.joules is not None:
                fields["energy_reason"] = f"{fields['energy_reason']} ({self.idle_reason})"
            dom = next(d for d in self.domains if d.name == e.domain)
            per_domain[e.domain] = {
                **fields,
                "description": dom.description,
                "within": dom.within,
                "estimated": e.estimated,
                "calls": e.calls,
                "window_start_unix": e.start_unix,
                "window_end_unix": e.end_unix,
            }
        main = {k: per_domain[self.domain][k] for k in FIELDS}  # type: ignore[index]
        main["energy_domains"] = per_domain
        return main

    def close(self) -> None:
        for sensor in self.sensors:
            sensor.close()

    def __enter__(self) -> "EnergyMeter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
