"""One progress bar per board, fed from the board's run folder (cells done / total, current cell).

On a terminal each board has its own ``tqdm`` bar; otherwise (a log, CI, the tests) each change
is one line (``rpi5: 3/12 cells — tera onnxruntime b1 4s``).  Messages go above the bars.
Totals come from the run's own ``run.json`` settings (the same plan the board runs).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import fields
from typing import Any

from bench.settings import Settings
from runstore.run_record import RunRecord


def plan_size(run: RunRecord) -> int | None:
    """The number of cells the run's settings plan, or None when they cannot be read."""
    data = run.settings
    if data is None:
        return None
    known = {f.name for f in fields(Settings)}
    try:
        return len(Settings(**{k: v for k, v in data.items() if k in known}).plan())
    except (TypeError, ValueError, KeyError, IndexError):
        return None


class Bars:
    """The bars of all boards; thread-safe (each board's thread updates its own)."""

    def __init__(self, names: list[str], enabled: bool | None = None, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()
        tty = enabled if enabled is not None else self.stream.isatty()
        self.width = max(len(n) for n in names) if names else 0
        self.last: dict[str, tuple] = {}
        self.bars: dict[str, Any] = {}
        if tty:
            from tqdm import tqdm  # deferred: only on a terminal

            for i, name in enumerate(names):
                self.bars[name] = tqdm(total=0, position=i, desc=name.ljust(self.width), unit="cell",
                                       file=self.stream, dynamic_ncols=True, leave=True)

    def update(self, name: str, done: int | None, total: int | None, note: str) -> None:
        with self.lock:
            bar = self.bars.get(name)
            if bar is not None:
                if total is not None and bar.total != total:
                    bar.total = total
                if done is not None:
                    bar.n = done
                bar.set_postfix_str(note, refresh=False)
                bar.refresh()
                return
            state = (done, total, note)
            if self.last.get(name) == state:
                return
            self.last[name] = state
            count = "" if done is None else f"{done}/{total if total is not None else '?'} cells"
            text = " — ".join(t for t in (count, note) if t)
            print(f"{name}: {text}", file=self.stream, flush=True)

    def message(self, name: str, text: str) -> None:
        with self.lock:
            line = f"{name}: {text}"
            if self.bars:
                from tqdm import tqdm  # deferred: only on a terminal

                tqdm.write(line, file=self.stream)
            else:
                print(line, file=self.stream, flush=True)

    def close(self) -> None:
        with self.lock:
            for bar in self.bars.values():
                bar.close()
            self.bars.clear()
