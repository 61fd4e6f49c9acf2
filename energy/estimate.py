"""An opt-in *estimate* (``ENERGY=estimate CPU_WATTS=<W>``), labelled "estimated" everywhere.

Energy = ``CPU_WATTS`` x (this process's CPU seconds / logical CPUs): ``CPU_WATTS`` is the
power of the whole CPU with every core busy, so a process using all cores for one second is
charged ``CPU_WATTS`` joules.  It is a model, not a measurement: it ignores frequency, memory,
idle power and everything that is not this process.  It exists so a machine without sensors can
still rank models, never to be mixed up with measured joules.
"""

from __future__ import annotations

import os
import time

from .errors import EnergyConfigError
from .sensor import Context, Domain, Probe, Sensor

FAMILY = "estimate"


def cpu_watts(env) -> float:
    raw = env.get("CPU_WATTS")
    if raw is None or not str(raw).strip():
        raise EnergyConfigError("ENERGY=estimate needs CPU_WATTS=<watts of the CPU with all cores busy>, e.g. CPU_WATTS=15")
    try:
        value = float(raw)
    except ValueError:
        raise EnergyConfigError(f"CPU_WATTS={raw!r} is not a number of watts (e.g. CPU_WATTS=15)") from None
    if not value > 0:
        raise EnergyConfigError(f"CPU_WATTS={raw!r} must be a positive number of watts")
    return value


class EstimateSensor(Sensor):
    family = FAMILY
    kind = "energy"
    estimated = True
    known_period_s = 0.01

    def __init__(self, watts: float, ncpu: int, cpu_time) -> None:
        super().__init__(
            f"estimated: CPU_WATTS={watts:g} W x process CPU time / {ncpu} logical CPUs (not measured)",
            [Domain("cpu (estimated)", "estimated from this process's CPU time; not a measurement")],
        )
        self._watts = watts
        self._ncpu = ncpu
        self._cpu_time = cpu_time

    def read(self) -> dict[str, float]:
        return {self.primary.name: self._watts * self._cpu_time() / self._ncpu}


def probe(ctx: Context) -> Probe:
    watts = cpu_watts(ctx.env)
    ncpu = os.cpu_count() or 1
    sensor = EstimateSensor(watts, ncpu, ctx.cpu_time or time.process_time)
    return Probe(FAMILY, sensor=sensor, found=[sensor.source])
