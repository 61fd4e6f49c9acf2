"""A test hook: a virtual clock that makes a worker's timings exact, with a slowdown on demand.

The drift tests must show that a slowdown of the machine is flagged by the canary and cancels
out of the interleaved speed-up but not of the grouped one.  Real timings on a shared machine
cannot show that deterministically, so a job may carry ``fake_timing``::

    {"call_s": {"pytorch": 0.004, "onnxruntime": 0.002}, "canary_s": 0.003,
     "slow_from_tick": 4, "slow_until_tick": null, "factor": 3.0}

The worker then still runs the real model (shapes, records, protocol are all real) but reads
time from a :class:`VirtualClock` that advances by the configured cost of each call, multiplied
by ``factor`` while the scheduler's tick (one per round ordered, in either order) lies in
``[slow_from_tick, slow_until_tick)``: the same "machine became slower at round k" for both
orders.  ``tick_factors`` (a list, cycled) gives every tick its own factor instead: a machine that
drifts steadily (a ramp) or a genuinely noisy one (random factors) for the stopping-rule tests.
Never set by a user-facing setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from bench.job import WorkerJob


@dataclass
class FakeTiming:
    call_s: float
    canary_s: float
    slow_from_tick: int | None = None
    slow_until_tick: int | None = None
    factor: float = 1.0
    tick_factors: tuple[float, ...] = ()
    tick: int = 0
    now_ns: int = 0

    @classmethod
    def from_job(cls, job: WorkerJob) -> "FakeTiming | None":
        spec = job.fake_timing
        if not spec:
            return None
        return cls(call_s=float(spec["call_s"][job.runtime]), canary_s=float(spec["canary_s"]),
                   slow_from_tick=spec.get("slow_from_tick"), slow_until_tick=spec.get("slow_until_tick"),
                   factor=float(spec.get("factor", 1.0)),
                   tick_factors=tuple(float(f) for f in spec.get("tick_factors") or ()))

    def slowdown(self) -> float:
        if self.tick_factors:
            return self.tick_factors[self.tick % len(self.tick_factors)]
        if self.slow_from_tick is None or self.tick < self.slow_from_tick:
            return 1.0
        if self.slow_until_tick is not None and self.tick >= self.slow_until_tick:
            return 1.0
        return self.factor

    def clock(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(round(seconds * self.slowdown() * 1e9))

    def wrap(self, call: Callable[[], Any]) -> Callable[[], Any]:
        """The real call, costing ``call_s`` × slowdown on the virtual clock."""
        def timed() -> Any:
            out = call()
            self.advance(self.call_s)
            return out
        return timed

    def canary(self) -> float:
        return self.canary_s * self.slowdown()
