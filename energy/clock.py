"""The clock the harness reads and sleeps on, injectable so the sampler can be tested exactly.

``monotonic()`` times windows; ``wall()`` stamps them in Unix time so an external meter's CSV
can be aligned afterwards; ``wait_until()`` is how a background sampler sleeps (it wakes early
when asked to stop).  :class:`energy.fakes.FakeClock` implements the same protocol in virtual
time.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def wait_until(
        self, stop: threading.Event, deadline: float, on_waiting: Callable[[], None] | None = None
    ) -> bool:
        """Block until ``monotonic() >= deadline`` (return False) or ``stop`` is set (True).

        ``on_waiting`` is called once the wait is registered, so a starter can know the
        background thread is parked (a fake clock needs that to stay deterministic)."""
        ...


class SystemClock:
    """Real time: ``time.perf_counter`` for intervals, ``time.time`` for stamps."""

    def monotonic(self) -> float:
        return time.perf_counter()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait_until(
        self, stop: threading.Event, deadline: float, on_waiting: Callable[[], None] | None = None
    ) -> bool:
        if on_waiting is not None:
            on_waiting()
        return stop.wait(max(0.0, deadline - self.monotonic()))
