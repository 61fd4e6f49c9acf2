"""What every sensor reader shares: the domain it covers, how it is read, how it was found.

A reader is one of two kinds:

* ``"energy"``: a cumulative counter (RAPL ``energy_uj``, NVML total energy).  ``read()``
  returns joules since an arbitrary origin, already unwrapped; the harness takes end minus
  start.
* ``"power"``: an instantaneous (or sensor-averaged) power (NVML power usage, INA3221 rails,
  the Pi 5 PMIC, hwmon ``power*_input``).  ``read()`` returns watts; the harness samples it on
  a background thread and integrates.

An external CSV meter is a third, deferred kind (``"log"``): it is not read live at all, only
aligned to the window afterwards (see :mod:`energy.csvmeter`).

Readers are found by a ``probe(ctx)`` function per family that returns a :class:`Probe`: either
a sensor, or the reason it is unusable and how to fix that.  Probing never raises for a missing
sensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from host.commands import CommandRunner, SubprocessRunner
from host.sysfs import SysRoot

from .clock import Clock, SystemClock

Kind = Literal["energy", "power", "log"]


@dataclass(frozen=True)
class Domain:
    """A physical thing whose energy is measured.

    ``within`` names another domain that contains this one (``core`` is within the CPU
    package; the package is within ``psys``).  Overlapping domains are reported side by side
    and never added.
    """

    name: str
    description: str
    within: str | None = None


@dataclass
class Context:
    """Everything a reader may touch, injectable for tests."""

    root: SysRoot = field(default_factory=SysRoot)
    env: Mapping[str, str] = field(default_factory=dict)
    runner: CommandRunner = field(default_factory=SubprocessRunner)
    clock: Clock = field(default_factory=SystemClock)
    nvml: Any = None  # a pynvml-like module; None = import ``pynvml`` when asked
    cpu_time: Any = None  # a () -> float process CPU seconds; None = time.process_time


class Sensor:
    """Base class of the readers.  Subclasses set the class attributes and ``read``."""

    family: str = ""
    kind: Kind = "power"
    estimated: bool = False
    #: never poll faster than this (a ``vcgencmd`` call costs ~10 ms; the PMIC updates ~10 Hz)
    min_interval_s: float = 0.0
    #: the update period when it is known by construction (tegrastats ``--interval``); skips the probe
    known_period_s: float | None = None
    #: assumed update period when the probe sees no change (a steady power value)
    default_period_s: float = 0.1
    #: counters that wrap are also read in the background so no wrap is missed
    wraps: bool = False

    def __init__(self, source: str, domains: list[Domain]) -> None:
        if not domains:
            raise ValueError("a sensor needs at least one domain")
        self.source = source
        self.domains = list(domains)

    @property
    def primary(self) -> Domain:
        """The domain reported in the main fields: the first one."""
        return self.domains[0]

    def read(self) -> dict[str, float]:
        """Joules (``energy`` kind) or watts (``power`` kind) per domain name."""
        raise NotImplementedError

    def close(self) -> None:
        """Release handles (NVML, a tegrastats process).  Safe to call twice."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.source!r} domains={[d.name for d in self.domains]}>"


@dataclass
class Probe:
    """The outcome of looking for one sensor family on this machine."""

    family: str
    sensor: Sensor | None = None
    reason: str | None = None  # why it is unavailable
    fix: str | None = None  # what the user can do about it
    found: list[str] = field(default_factory=list)  # what was seen (zones, rails, chips), for the listing

    @property
    def available(self) -> bool:
        return self.sensor is not None

    def explain(self) -> str:
        """One line: ``family: reason (fix: ...)``."""
        if self.available:
            return f"{self.family}: {self.sensor.source}"  # type: ignore[union-attr]
        text = f"{self.family}: {self.reason}"
        return f"{text} (fix: {self.fix})" if self.fix else text

    @classmethod
    def missing(cls, family: str, reason: str, fix: str | None = None, found: list[str] | None = None) -> "Probe":
        return cls(family=family, reason=reason, fix=fix, found=list(found or []))
