"""The FLOPs of one benchmark cell, cached per shape within a process (``macs_for``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flops.formulas import analytic_count
from flops.graph import CountError, GraphCounter

# ---------------------------------------------------------------------------------------------
# Per-cell API for the benchmark
# ---------------------------------------------------------------------------------------------


class MacsCache:
    """Per-shape results and loaded graphs; a benchmark process keeps one (``macs_for`` does)."""

    def __init__(self) -> None:
        self.cells: dict[tuple, dict[str, Any]] = {}
        self.graphs: dict[tuple, GraphCounter] = {}
        self.validated: dict[tuple, bool] = {}
        self.lock = threading.Lock()

    def graph(self, path: Path, model: str) -> GraphCounter:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        if key not in self.graphs:
            self.graphs.clear()  # keep one loaded graph: they are as large as the model
            self.graphs[key] = GraphCounter(path, model)
        return self.graphs[key]


_DEFAULT_CACHE = MacsCache()


def macs_for(model: str, onnx_path: str | Path | None, batch: int, n_samples: int, *,
             validate: bool = False, cache: MacsCache | None = None, tiny: bool | None = None) -> dict[str, Any]:
    """MACs and FLOPs of one benchmark cell: ``{"macs", "flops", "attention_macs", ...}``.

    The analytic formula gives the number in microseconds without touching the file; the
    tests prove it equal to the ONNX graph count for every registered model, and ``make
    flops`` re-checks it on the real files.  ``validate=True`` also counts the graph once
    per file (seconds, and memory the size of the model: do it before the model is loaded
    or in the parent process) and, should the two ever disagree, returns the graph's count.
    A model without an analytic formula always gets the graph count, cached per shape.
    ``flops`` = 2 x ``macs`` (matmul/conv/recurrent only; elementwise work is not in it).
    ``tiny``: the toy-size configuration; by default read from an ONNX file name ``*-tiny.onnx``
    (a PyTorch-only run has no file, so the benchmark passes it from its job).
    """
    cache = cache or _DEFAULT_CACHE
    path = Path(onnx_path) if onnx_path else None
    if tiny is None:  # a caller that knows (the benchmark's job) says; else the file's name does
        tiny = bool(path and path.stem.endswith("-tiny"))
    key = (model, str(path) if path else None, tiny, batch, n_samples, validate)
    with cache.lock:
        if key in cache.cells:
            return dict(cache.cells[key])
        result: dict[str, Any]
        try:
            a = analytic_count(model, batch, n_samples, tiny)
            result = {"macs": a.macs, "flops": a.flops, "attention_macs": a.attention_macs,
                      "frames": a.frames, "source": "analytic"}
        except ValueError as exc:
            if "below the minimum" in str(exc):
                raise
            result = {}
        if path is not None and (validate or not result):
            gkey = (str(path), tiny)
            if not result or not cache.validated.get(gkey, False):
                g = cache.graph(path, model).count(batch, n_samples)
                if result and result["macs"] == g.macs:
                    cache.validated[gkey] = True
                    result["source"] = "analytic (checked against the ONNX graph)"
                else:
                    if result:
                        result["analytic_macs"] = result["macs"]
                    result.update(macs=g.macs, flops=g.flops, attention_macs=g.attention_macs,
                                  other_flops=g.other_flops, uncounted=g.uncounted, source="onnx-graph")
            else:
                result["source"] = "analytic (checked against the ONNX graph)"
        if not result:
            raise CountError(f"{model}: no analytic formula and no ONNX file to count")
        result.update(model=model, batch=batch, n_samples=n_samples)
        cache.cells[key] = result
        return dict(result)


