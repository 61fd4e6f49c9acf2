"""``tegrastats`` as a fallback power source on Jetsons whose rails are not visible in sysfs.

A line looks like ``RAM 2126/3964MB ... POM_5V_IN 2412/2412 POM_5V_GPU 0/0`` (JetPack 4) or
``... VDD_GPU_SOC 2386mW/2386mW VIN_SYS_5V0 2216mW/2216mW`` (JetPack 5+): a rail name, then
2 or 3 numbers separated by ``/`` (current/average[/max]), in mW with an optional ``mW``
suffix.  Fields with other units (``RAM 2126/3964MB``, ``IRAM 0/252kB``) are not rails.
Numbers are signed: an idle AGX Thor prints ``VDD_GPU -392mW/-392mW`` (a sensor offset), and
the value is kept as read (:mod:`energy.jetson` says why a sum keeps it too).  On the Thor,
``VIN`` is the board input and is reported as its own domain, never added to the module rails.

The tool prints a line every ``--interval`` ms; a background thread keeps only the newest line
so a slow reader never sees stale, buffered values.  The rails are fixed when the reader opens
(from the first line with rails).  A later line that lacks one of them, or has no rails at all,
cannot be read: it is counted (``unreadable_lines``) and the last good value stays current --
for at most ``max_unreadable`` lines in a row; past that, :meth:`TegrastatsSensor.read` raises
:class:`SensorError` with the reason, so the window is reported ``null`` with that reason
instead of a number that stopped following the device.  The next good line makes it readable
again.  jtop/jetson-stats is not used: it is AGPL and needs a root service.
"""

from __future__ import annotations

import re
import threading
from typing import Iterable

from .errors import SensorError
from .jetson_domains import combine, plan
from .sensor import Context, Probe, Sensor

FAMILY = "tegrastats"
INTERVAL_MS = 100
#: unreadable lines in a row after which the reading is given up (1 s at the default interval)
MAX_UNREADABLE = 10
_NUM = r"(-?\d+)(?:mW)?"
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*)\s+" + _NUM + "/" + _NUM + "(?:/" + _NUM + r")?(?![\w/])")


def parse_line(line: str) -> dict[str, float]:
    """Current watts per rail in one tegrastats line, signed (``NC`` rails dropped)."""
    return {name: int(cur) / 1e3 for name, cur, *_ in _RAIL.findall(line) if name != "NC"}


class TegrastatsSensor(Sensor):
    family = "jetson"
    kind = "power"

    def __init__(
        self, lines: Iterable[str], first: dict[str, float], interval_s: float, closer=None,
        max_unreadable: int = MAX_UNREADABLE,
    ) -> None:
        self._parts = plan(list(first))
        super().__init__(f"tegrastats --interval {int(interval_s * 1000)} ({', '.join(first)})", [p.domain for p in self._parts])
        self.known_period_s = interval_s
        self.min_interval_s = interval_s
        self.max_unreadable = max_unreadable
        self.unreadable_lines = 0  # every line that could not be read, since the reader opened
        self._in_a_row = 0
        self._latest = combine(first, self._parts)
        self._rails = list(first)
        self._lock = threading.Lock()
        self._ended: str | None = None
        self._stale: str | None = None
        self._closer = closer
        self._thread = threading.Thread(target=self._pump, args=(iter(lines),), name="tegrastats-reader", daemon=True)
        self._thread.start()

    def _take(self, line: str) -> None:
        rails = parse_line(line)
        missing = [r for r in self._rails if r not in rails]
        with self._lock:
            if not missing:
                self._latest = combine({r: rails[r] for r in self._rails}, self._parts)
                self._in_a_row = 0
                self._stale = None
                return
            self.unreadable_lines += 1
            self._in_a_row += 1
            if self._in_a_row > self.max_unreadable:
                seen = ", ".join(rails) or "no rails"
                self._stale = (
                    f"tegrastats: {self._in_a_row} lines in a row could not be read (missing {', '.join(missing)}; "
                    f"the last one had {seen}); {self.unreadable_lines} unreadable since the start. "
                    "The reading stops rather than repeat the last good value"
                )

    def _pump(self, lines) -> None:
        try:
            for line in lines:
                self._take(line)
        except Exception as exc:  # the process died or the pipe broke
            self._ended = f"tegrastats stopped: {exc}"
            return
        self._ended = "tegrastats exited"

    def read(self) -> dict[str, float]:
        if self._ended:
            raise SensorError(self._ended)
        with self._lock:
            if self._stale:
                raise SensorError(self._stale)
            return dict(self._latest)

    def close(self) -> None:
        if self._closer is not None:
            closer, self._closer = self._closer, None
            closer()


def probe(ctx: Context, interval_ms: int = INTERVAL_MS) -> Probe:
    argv = ["tegrastats", "--interval", str(interval_ms)]
    try:
        stream = ctx.runner.stream(argv)
    except FileNotFoundError:
        return Probe.missing(FAMILY, "tegrastats not found", "install nvidia-l4t-tools (JetPack) or run as a user with /usr/bin in PATH")
    except OSError as exc:
        return Probe.missing(FAMILY, f"tegrastats could not start: {exc}", "run as root (sudo)")
    lines = iter(stream)
    for _ in range(5):  # the first lines may lack rails on some releases
        try:
            line = next(lines)
        except StopIteration:
            break
        first = parse_line(line)
        if first:
            sensor = TegrastatsSensor(lines, first, interval_ms / 1000.0, closer=stream.close)
            return Probe(FAMILY, sensor=sensor, found=[f"tegrastats rails: {', '.join(first)}"])
    stream.close()
    return Probe.missing(FAMILY, "tegrastats printed no power rails", "run tegrastats as root (sudo) so it can read the INA3221 rails")
