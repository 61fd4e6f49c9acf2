"""The run's progress bar, filled by predicted work rather than by counted cells.

Its length is the predicted seconds of every cell to measure (``bench/estimate.py``); each finished
cell fills it by what that cell was predicted to cost, and the time left shown beside it is
:meth:`bench.estimate.WorkEstimate.eta_s` (remaining predicted work at the pace measured so far).
The bar keeps tqdm's ``<cell>: NN%|...|`` opening, which ``fleet/remote.py`` reads for the cell
being measured on a board.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Mapping

from bench.estimate import WorkEstimate, fmt_duration


class WorkProgress:
    """The bar (or, with ``enabled=False``, only the bookkeeping) over one measuring phase."""

    def __init__(self, estimate: WorkEstimate | None, cells: int, enabled: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.estimate, self.cells, self.clock = estimate, cells, clock
        self.finished = 0
        self.started = clock()
        self.bar: Any = None
        if enabled:
            # deferred: tqdm is needed only when a progress bar is shown
            from tqdm import tqdm

            total = estimate.total_s if estimate is not None else cells
            self.bar = tqdm(total=max(total, 1e-9), dynamic_ncols=True, file=sys.stderr,
                            bar_format=self._format())

    def status(self) -> str:
        """'12/96 cells, about 14:05 left' (the time left by remaining predicted work)."""
        text = f"{self.finished}/{self.cells} cells"
        if self.estimate is not None:
            text += f", about {fmt_duration(self.estimate.eta_s(self.clock() - self.started))} left"
        return text

    def _format(self) -> str:
        return "{l_bar}{bar}| " + self.status().replace("{", "{{").replace("}", "}}")

    def _refresh(self) -> None:
        if self.bar is not None:
            self.bar.bar_format = self._format()
            self.bar.refresh()

    def start(self, label: str) -> None:
        """A cell began: name it, and show the time left as of now."""
        if self.bar is not None:
            self.bar.set_description(label, refresh=False)
        self._refresh()

    def finish(self, record: Mapping[str, Any]) -> None:
        """A cell's record arrived: fill the bar by its predicted cost; the estimate learns from it."""
        self.finished += 1
        work = self.estimate.finish(record) if self.estimate is not None else 1.0
        if self.bar is not None:
            if self.estimate is not None:
                self.bar.total = max(self.estimate.total_s, 1e-9)
            self.bar.bar_format = self._format()
            self.bar.update(work)

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
