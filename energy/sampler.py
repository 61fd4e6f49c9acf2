"""Reading sensors over time: the update-period probe and the background power sampler.

* :func:`measure_update_period` polls a sensor until its value changes twice and returns the
  time between the two changes: sampling faster than that only repeats values, and a window
  shorter than a few periods measures the sensor's phase, not the model.
* :class:`Sampler` reads a sensor on a background thread at its pace while the model runs in
  the calling thread, plus one reading exactly at start and one exactly at stop (taken by the
  caller), so the samples bracket the window.  For power sensors the samples are integrated;
  for wrapping counters (RAPL) the background reads only make sure no wrap goes unseen.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .clock import Clock
from .sensor import Sensor


@dataclass
class Period:
    seconds: float
    measured: bool  # False: the value never changed within the probe, ``seconds`` is the sensor's default
    note: str | None = None


def measure_update_period(sensor: Sensor, clock: Clock, timeout_s: float = 2.0, poll_s: float = 0.001) -> Period:
    """Poll until the reading changes, then time the next change."""
    if sensor.known_period_s is not None:
        return Period(sensor.known_period_s, True, "known by construction")
    poll = max(poll_s, sensor.min_interval_s)
    start = clock.monotonic()
    last = sensor.read()
    changes: list[float] = []
    while clock.monotonic() - start < timeout_s:
        clock.sleep(poll)
        value = sensor.read()
        if value != last:
            changes.append(clock.monotonic())
            last = value
            if len(changes) == 2:
                return Period(max(changes[1] - changes[0], poll), True)
    return Period(
        sensor.default_period_s, False,
        f"value did not change {2 - len(changes)} more time(s) within {timeout_s:g} s; assumed {sensor.default_period_s:g} s",
    )


@dataclass
class Samples:
    times: list[float] = field(default_factory=list)
    values: list[dict[str, float]] = field(default_factory=list)
    error: BaseException | None = None

    def add(self, t: float, value: dict[str, float]) -> None:
        self.times.append(t)
        self.values.append(value)

    def series(self, domain: str) -> tuple[list[float], list[float]]:
        pairs = [(t, v[domain]) for t, v in zip(self.times, self.values) if domain in v]
        return [t for t, _ in pairs], [w for _, w in pairs]


class Sampler:
    """Reads ``sensor`` every ``interval_s`` on a thread between :meth:`start` and :meth:`stop`."""

    def __init__(self, sensor: Sensor, clock: Clock, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.sensor = sensor
        self.clock = clock
        self.interval_s = interval_s
        self.samples = Samples()
        self._stop = threading.Event()
        self._parked = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> float:
        """Read once now, start the thread; return the start time."""
        t0 = self.clock.monotonic()
        self.samples.add(t0, self.sensor.read())
        self._thread = threading.Thread(target=self._run, args=(t0,), name=f"energy-sampler-{self.sensor.family}", daemon=True)
        self._thread.start()
        if not self._parked.wait(timeout=10):
            raise RuntimeError("energy sampler thread did not start")
        return t0

    def _run(self, t0: float) -> None:
        k = 1
        try:
            while not self.clock.wait_until(self._stop, t0 + k * self.interval_s, self._parked.set):
                now = self.clock.monotonic()
                self.samples.add(now, self.sensor.read())
                k = max(k + 1, int((now - t0) / self.interval_s) + 1)  # skip deadlines a slow read missed
        except BaseException as exc:  # reported by stop(); the window is then unmeasured
            self.samples.error = exc
            self._parked.set()

    def stop(self) -> float:
        """Stop the thread, read once more now; return the stop time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        t1 = self.clock.monotonic()
        if self.samples.error is None:
            self.samples.add(t1, self.sensor.read())
        return t1
