"""The device's attainable dense matrix-multiply rate, and each cell's share of it.

``measure_gemm_peak(threads, dtype, runtime)`` times square float matmuls of a few sizes in
PyTorch or ONNX Runtime (a one-node MatMul graph) for a few seconds in all and returns the
best sustained rate in FLOP/s (2 x n^3 per matmul).  The result is cached in
``results/gemm_peak.json`` under ``host|device|dtype|runtime|threads`` with when it was
measured, the load average, and the share of the CPU other processes took meanwhile.  A cached
peak is used again only if it was measured on a quiet machine with the same CPU, usable cores
and library version; otherwise (or with ``refresh=True``) it is measured again: a peak taken
while the machine was busy is low, and would inflate every utilisation figure computed from it.
``utilization(achieved, peak)`` is the ratio.

The rate is "attainable", not the datasheet peak: it is what the runtime's own GEMM reaches
on this machine with these threads, which is the right ceiling for a model whose FLOPs are
matmul/conv FLOPs (``flops``: FLOPs = 2 x MACs).

``python -m runners.gemm_peak --threads 1,2 --runtimes pytorch,onnxruntime`` prints the
table (and fills the cache).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from runstore.records import DEFAULT_RUNTIMES as RUNTIMES  # the runtimes with a GEMM of their own here

SIZES = (256, 512, 1024, 1536)
BUSY_SHARE = 0.10  # other processes took more than 10% of the CPU while measuring: "under load"
DEFAULT_CACHE = Path("results") / "gemm_peak.json"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_key(threads: int, dtype: str, runtime: str, device: str = "cpu", host: str | None = None) -> str:
    return "|".join([host or socket.gethostname(), device, dtype, runtime, str(threads)])


def _best_rate(run: Callable[[], None], flops: float, budget_s: float, sync: Callable[[], None]) -> float:
    """Best rate over timed blocks of ``run`` within ``budget_s`` (after one warm-up call)."""
    run()
    sync()
    t0 = time.perf_counter()
    run()
    sync()
    one = max(time.perf_counter() - t0, 1e-6)
    reps = max(1, int(0.05 / one))  # blocks of >= ~50 ms so timer overhead vanishes
    best, deadline = 0.0, time.perf_counter() + budget_s
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            run()
        sync()
        best = max(best, reps * flops / (time.perf_counter() - t0))
        if time.perf_counter() >= deadline:
            return best


def _pytorch_runner(n: int, dtype: str, device: str):
    # deferred: torch is heavy and optional on an ONNX-Runtime-only path
    import torch

    dt = getattr(torch, dtype)
    a = torch.randn(n, n, device=device).to(dt)
    b = torch.randn(n, n, device=device).to(dt)
    out = torch.empty(n, n, device=device, dtype=dt)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return (lambda: torch.mm(a, b, out=out)), sync


def _ort_runner(n: int, dtype: str, threads: int):
    # deferred: onnxruntime is heavy and optional on a PyTorch-only path
    import onnxruntime as ort

    # deferred: onnx is loaded only where a graph is read or written
    from onnx import TensorProto, helper

    elem = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}[dtype]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "gemm",
                              [helper.make_tensor_value_info("a", elem, [n, n]),
                               helper.make_tensor_value_info("b", elem, [n, n])],
                              [helper.make_tensor_value_info("y", elem, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"a": rng.standard_normal((n, n)).astype(dtype), "b": rng.standard_normal((n, n)).astype(dtype)}
    return (lambda: sess.run(None, feeds)), (lambda: None)


def _measure(threads: int, dtype: str, runtime: str, device: str, seconds: float,
             sizes: tuple[int, ...]) -> dict[str, Any]:
    per_size: dict[str, float] = {}
    budget = seconds / len(sizes)
    if runtime == "pytorch":
        # deferred: torch is heavy and optional on an ONNX-Runtime-only path
        import torch

        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for n in sizes:
                run, sync = _pytorch_runner(n, dtype, device)
                per_size[str(n)] = _best_rate(run, 2.0 * n ** 3, budget, sync)
        finally:
            torch.set_num_threads(old)
    elif runtime == "onnxruntime":
        if device != "cpu":
            raise ValueError("the ONNX Runtime GEMM peak is measured on the CPU provider only")
        for n in sizes:
            run, sync = _ort_runner(n, dtype, threads)
            per_size[str(n)] = _best_rate(run, 2.0 * n ** 3, budget, sync)
    else:
        raise ValueError(f"unknown runtime {runtime!r}; valid: {', '.join(RUNTIMES)}")
    best = max(per_size, key=per_size.get)
    return {"flops_per_s": per_size[best], "best_size": int(best), "per_size_flops_per_s": per_size}


def library_version(runtime: str) -> str:
    """The library whose GEMM is measured, with its version (a new version re-measures)."""
    if runtime == "pytorch":
        import torch  # deferred: heavy

        return f"torch {torch.__version__}"
    if runtime == "onnxruntime":
        import onnxruntime  # deferred: heavy

        return f"onnxruntime {onnxruntime.__version__}"
    raise ValueError(f"unknown runtime {runtime!r}; valid: {', '.join(RUNTIMES)}")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine from /proc/stat; None where there is none."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])  # user..steal: steal is CPU others took


def others_cpu_share(before: tuple[int, int] | None, after: tuple[int, int] | None,
                     own_cpu_s: float) -> float | None:
    """The share of the machine's CPU time that other processes used (0..1) between two reads."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    own = own_cpu_s * os.sysconf("SC_CLK_TCK")
    return min(1.0, max(0.0, (after[0] - before[0] - own) / (after[1] - before[1])))


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def stale_because(entry: dict[str, Any], cpu: str, cores: int, library: str) -> str | None:
    """Why a cached peak cannot be used here and now (None: it can)."""
    if not entry.get("flops_per_s", 0) > 0:
        return "no rate cached"
    if entry.get("under_load", True):
        return "it was measured under load" if "under_load" in entry else "it has no load record"
    for what, then, now in (("CPU", entry.get("device_name"), cpu), ("usable cores", entry.get("usable_cores"), cores),
                            ("library", entry.get("library"), library)):
        if then != now:
            return f"the {what} changed ({then} -> {now})"
    return None


def gemm_peak_entry(threads: int, dtype: str = "float32", runtime: str = "pytorch", *,
                    device: str = "cpu", cache_path: str | Path | None = DEFAULT_CACHE,
                    refresh: bool = False, seconds: float = 3.0,
                    sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """The peak with its record: ``flops_per_s``, ``measured_at``, ``load_average`` (1/5/15 min,
    before), ``others_cpu_share``, ``under_load``, ``library``, ``cached`` and, when measured
    again, ``remeasured_because``."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    key = cache_key(threads, dtype, runtime, device)
    cpu = cpu_name() if device == "cpu" else device
    cores, library = usable_cores(), library_version(runtime)
    path = Path(cache_path) if cache_path else None
    cache: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError):
            cache = {}  # a corrupt cache is re-measured, not fatal
    why = "refresh asked for" if refresh else (stale_because(cache[key], cpu, cores, library) if key in cache else None)
    if key in cache and why is None:
        return {**cache[key], "cached": True}
    load_before, stat_before, own_before = _load_average(), _cpu_jiffies(), time.process_time()
    entry = _measure(threads, dtype, runtime, device, seconds, tuple(sizes))
    share = others_cpu_share(stat_before, _cpu_jiffies(), time.process_time() - own_before)
    under_load = share > BUSY_SHARE if share is not None else bool(load_before and load_before[0] > cores / 2)
    entry.update(host=socket.gethostname(), device=device, device_name=cpu, usable_cores=cores, library=library,
                 dtype=dtype, runtime=runtime, threads=threads, seconds=seconds,
                 measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), load_average=load_before,
                 load_average_after=_load_average(), others_cpu_share=share, under_load=under_load)
    if key in cache:
        entry["remeasured_because"] = why
    if path is not None:
        try:
            latest = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            latest = {}
        latest[key] = entry
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(latest, indent=2, sort_keys=True))
        tmp.replace(path)
    return {**entry, "cached": False}


def measure_gemm_peak(threads: int, dtype: str = "float32", runtime: str = "pytorch", **kw: Any) -> float:
    """Attainable dense matmul FLOP/s on this host (see :func:`gemm_peak_entry` for the record)."""
    return float(gemm_peak_entry(threads, dtype, runtime, **kw)["flops_per_s"])


def utilization(achieved_flops_per_s: float | None, peak: float | None) -> float | None:
    """Achieved FLOP/s as a share of the attainable peak (0.25 = 25%); None when either is unknown."""
    if achieved_flops_per_s is None or peak is None or peak <= 0:
        return None
    return float(achieved_flops_per_s) / float(peak)


def achieved_flops_per_s(flops: int | None, latency_s: float | None) -> float | None:
    """A cell's FLOP/s from its FLOPs (2 x MACs, whole batch) and its median latency."""
    if flops is None or not latency_s or latency_s <= 0:
        return None
    return flops / latency_s


def _markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A small GitHub-style table (measurement code does not import the reporting libraries)."""
    cells = [header] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells[1:]])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runners.gemm_peak", description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1,2")
    p.add_argument("--runtimes", default=",".join(RUNTIMES))
    p.add_argument("--dtype", default="float32")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--cache", default=str(DEFAULT_CACHE))
    p.add_argument("--refresh", action="store_true")
    args = p.parse_args(argv)
    try:
        threads = [int(t) for t in args.threads.split(",") if t.strip()]
        rows = []
        for runtime in [r.strip() for r in args.runtimes.split(",") if r.strip()]:
            for t in threads:
                peak = measure_gemm_peak(t, args.dtype, runtime, cache_path=args.cache,
                                         refresh=args.refresh, seconds=args.seconds)
                rows.append([runtime, t, args.dtype, f"{peak / 1e9:,.1f}"])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"host {socket.gethostname()}, {cpu_name()}")
    print(_markdown_table(["runtime", "threads", "dtype", "GFLOP/s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
