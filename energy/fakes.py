"""Stand-ins for the clock, the command runner, NVML and sensors, for tests and dry runs.

They live in the package (like ``torch.testing``) so the harness can be exercised on a machine
without any sensor, and so downstream tests (the benchmark worker's) can reuse them.

:class:`FakeClock` runs in virtual time and stays deterministic with a background sampler: a
thread that waits (``wait_until``) is parked until the driving thread's ``sleep``/``advance``
passes its deadline; time then stops at that deadline while the parked thread takes its sample,
and only moves on once the thread is parked again (or has ended).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from host.commands import CommandResult

from .sensor import Domain, Sensor


class FakeClock:
    def __init__(self, start: float = 0.0, wall_offset: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._wall_offset = wall_offset
        self._cv = threading.Condition()
        self._parked: dict[int, float] = {}  # thread ident -> deadline
        self._running: set[int] = set()  # released, not yet parked again
        self._threads: dict[int, threading.Thread] = {}

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall_offset + self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward, letting each parked thread whose deadline passes run in turn."""
        with self._cv:
            target = self._now + max(0.0, seconds)
            while True:
                due = [(deadline, ident) for ident, deadline in self._parked.items() if deadline <= target]
                if not due:
                    break
                deadline, ident = min(due)
                self._now = max(self._now, deadline)
                del self._parked[ident]
                self._running.add(ident)
                self._cv.notify_all()
                while ident in self._running and self._threads[ident].is_alive():
                    self._cv.wait(0.005)
                self._running.discard(ident)
            self._now = target

    def wait_until(self, stop: threading.Event, deadline: float, on_waiting: Callable[[], None] | None = None) -> bool:
        ident = threading.get_ident()
        with self._cv:
            self._threads[ident] = threading.current_thread()
            self._running.discard(ident)
            self._cv.notify_all()
            if stop.is_set():
                return True
            if deadline <= self._now:
                return False
            self._parked[ident] = deadline
            if on_waiting is not None:
                on_waiting()
            while ident in self._parked:
                if stop.is_set():
                    del self._parked[ident]
                    return True
                self._cv.wait(0.005)
            return False


@dataclass
class FakeRunner:
    """Replays recorded command output.

    ``outputs`` maps a command line (``"vcgencmd pmic_read_adc"``) to its stdout, a
    :class:`CommandResult`, an exception instance to raise, or a callable returning one of
    those.  Unknown commands raise ``FileNotFoundError`` like a missing program.  ``streams``
    maps a command line to an iterable of lines for :meth:`stream`.
    """

    outputs: dict[str, Any] = field(default_factory=dict)
    streams: dict[str, Any] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def run(self, argv: Sequence[str], timeout: float = 5.0) -> CommandResult:
        key = " ".join(argv)
        self.calls.append(key)
        if key not in self.outputs:
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        out = self.outputs[key]
        if callable(out) and not isinstance(out, CommandResult):
            out = out()
        if isinstance(out, BaseException):
            raise out
        if isinstance(out, CommandResult):
            return out
        return CommandResult(tuple(argv), 0, str(out))

    def stream(self, argv: Sequence[str]):
        key = " ".join(argv)
        self.calls.append(key)
        if key not in self.streams:
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        return _ListStream(self.streams[key])


class _ListStream:
    def __init__(self, lines) -> None:
        self._lines = lines
        self.closed = False

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines)

    def close(self) -> None:
        self.closed = True


class ProfileSensor(Sensor):
    """A power sensor whose watts are a function of (fake) time, optionally held per update period."""

    family = "fake"
    kind = "power"

    def __init__(self, clock, watts: Callable[[float], float], period_s: float | None = None,
                 domain: str = "fake-power", min_interval_s: float = 0.0) -> None:
        super().__init__("fake power profile", [Domain(domain, "a known power profile")])
        self._clock = clock
        self._watts = watts
        self._period = period_s
        self.min_interval_s = min_interval_s
        self.reads = 0

    def read(self) -> dict[str, float]:
        self.reads += 1
        t = self._clock.monotonic()
        if self._period:
            t = (t // self._period) * self._period
        return {self.primary.name: float(self._watts(t))}


class CounterSensor(Sensor):
    """An energy counter: ``joules(t)`` in closed form, updated every ``period_s``."""

    family = "fake"
    kind = "energy"

    def __init__(self, clock, joules: Callable[[float], float], period_s: float = 0.001,
                 domain: str = "fake-energy") -> None:
        super().__init__("fake energy counter", [Domain(domain, "a known energy counter")])
        self._clock = clock
        self._joules = joules
        self._period = period_s

    def read(self) -> dict[str, float]:
        t = (self._clock.monotonic() // self._period) * self._period
        return {self.primary.name: float(self._joules(t))}


class FakeNVMLError(Exception):
    """Shaped like ``pynvml.NVMLError``: carries a value, prints a name."""

    def __init__(self, value: str = "Not Supported") -> None:
        super().__init__(value)
        self.value = value


class FakeNVML:
    """A ``pynvml``-shaped module with scripted GPUs.

    ``gpus`` is a list of dicts: ``name``, ``energy_mj`` (a callable of time, or ``None`` for
    NotSupported), ``power_mw`` (likewise), ``uuid``.  ``init_error`` makes ``nvmlInit`` fail.
    """

    NVMLError = FakeNVMLError

    def __init__(self, gpus: list[dict], clock=None, init_error: str | None = None) -> None:
        self.gpus = gpus
        self.clock = clock
        self.init_error = init_error
        self.initialised = 0
        self.shutdowns = 0

    def _t(self) -> float:
        return self.clock.monotonic() if self.clock is not None else 0.0

    def nvmlInit(self) -> None:
        if self.init_error:
            raise FakeNVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not 0 <= index < len(self.gpus):
            raise FakeNVMLError("Invalid Argument")
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        for i, gpu in enumerate(self.gpus):
            if gpu.get("uuid") == uuid:
                return i
        raise FakeNVMLError("Not Found")

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return self.gpus[handle]["name"].encode()

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        fn = self.gpus[handle].get("energy_mj")
        if fn is None:
            raise FakeNVMLError("Not Supported")
        return int(fn(self._t()))

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        fn = self.gpus[handle].get("power_mw")
        if fn is None:
            raise FakeNVMLError("Not Supported")
        return int(fn(self._t()))
