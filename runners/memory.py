"""Peak resident memory of this process over its loaded-model baseline, per cell (Linux).

Linux keeps the process's peak RSS (``VmHWM`` in /proc/self/status) and lets a process reset
it by writing ``5`` to /proc/self/clear_refs, so each cell's peak is measured exactly instead
of sampled.  The baseline is taken once, with the model loaded and before any cell; the peak
is reset before each cell.  Allocator arenas (ONNX Runtime's, PyTorch's caching) keep memory
from earlier cells, which would inflate a later, smaller cell: the suite therefore runs a
worker's cells in increasing input size (batch × duration), so the retained memory never
exceeds what the current cell needs.  Where a reset is impossible the tracker says so and
reports ``None``.
"""

from __future__ import annotations

import ctypes
import gc
from pathlib import Path


def _status_kb(field: str, proc: Path) -> int | None:
    try:
        for line in (proc / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class PeakRSSTracker:
    """``set_baseline()`` once after loading, ``reset()`` before a cell, ``peak_over_baseline()`` after it."""

    def __init__(self, proc: str | Path = "/proc/self") -> None:
        self.proc = Path(proc)
        self.baseline_bytes: int | None = None
        self.reason: str | None = None

    def current_bytes(self) -> int | None:
        kb = _status_kb("VmRSS", self.proc)
        return None if kb is None else kb * 1024

    def set_baseline(self) -> None:
        """The loaded-model baseline: the RSS now, before any cell."""
        self.baseline_bytes = self.current_bytes()

    def reset(self) -> None:
        """Restart the peak from the current RSS (the baseline stays the loaded model's)."""
        try:
            (self.proc / "clear_refs").write_text("5")
        except OSError as exc:
            self.reason = f"cannot reset peak RSS ({exc}); peak memory not measured"
        if self.baseline_bytes is None:
            self.set_baseline()

    def peak_over_baseline(self) -> int | None:
        if self.reason is not None or self.baseline_bytes is None:
            return None
        kb = _status_kb("VmHWM", self.proc)
        if kb is None:
            return None
        return max(0, kb * 1024 - self.baseline_bytes)


def return_freed_memory() -> None:
    """Collect garbage and hand the heap memory that Python and the libraries freed back to the
    system.  glibc keeps freed blocks in its arenas: after exporting the lab suite the parent
    process still held ~1.4 GiB it no longer used for the whole run, most of a small board's
    memory while two workers measure.  ``malloc_trim`` exists only in glibc; elsewhere this is a
    garbage collection."""
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl, macOS: nothing to trim
        return
    trim(0)
