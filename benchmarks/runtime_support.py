"""Which model each optional runtime can take: the support matrix of docs/runtimes.md.

For every model (the lab suite and ge2e), tiny and full size, it exports the ONNX file as ``make
export`` does (or reuses an identical export in ``--onnx-dir``), loads it in each optional runtime
that is installed, runs it once on the fidelity probe's 1 s input and compares the output with fp32
PyTorch.  No timing: a row says ``ok`` with the fidelity, or the runtime's own reason.

    .venv/bin/python benchmarks/runtime_support.py [--models logmel,apc] [--sizes tiny,full]
        [--runtimes openvino] [--onnx-dir /tmp/support-onnx] [--out docs/benchmarks/runtime-support.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from export.onnx_export import compare_outputs, export_model  # noqa: E402
from models.registry import LAB_SUITE, get_spec  # noqa: E402
from runners.reference import build_reference, probe_input  # noqa: E402
from runners.runtimes import FIXED_PROVIDERS, UnsupportedError, make_runtime  # noqa: E402
from runners.runtimes.packages import OPTIONAL, installed  # noqa: E402


def reference_outputs(model: str, tiny: bool) -> list:
    import torch  # deferred: heavy

    module = build_reference(model, tiny, "random")
    with torch.inference_mode():
        return [o.numpy() for o in module(torch.from_numpy(probe_input(get_spec(model))))]


def try_runtime(runtime: str, model: str, tiny: bool, onnx_path: str | None, reference: list) -> dict:
    start = time.perf_counter()
    try:
        rt = make_runtime(runtime, build=lambda: build_reference(model, tiny, "random"), onnx_path=onnx_path,
                          provider=FIXED_PROVIDERS.get(runtime, "cpu"), threads=1, model=model)
        rt.load()
        out = rt.outputs_numpy(rt.make_call(rt.prepare(probe_input(get_spec(model))))())
        err, cosine = compare_outputs(reference, out)
        row = {"status": "ok", "max_abs_err": err, "cosine": cosine, "facts": rt.facts}
        rt.close()
    except UnsupportedError as exc:
        row = {"status": "unsupported", "reason": str(exc)}
    except Exception as exc:  # a failure is a finding too
        row = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join((*LAB_SUITE, "ge2e")))
    p.add_argument("--sizes", default="tiny,full")
    p.add_argument("--runtimes", default=",".join(r for r in OPTIONAL if installed(r)))
    p.add_argument("--onnx-dir", default="results/onnx-support")
    p.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = p.parse_args()
    rows = []
    for size in args.sizes.split(","):
        tiny = size == "tiny"
        for model in args.models.split(","):
            try:
                onnx_path = export_model(model, args.onnx_dir, tiny=tiny)["path"]
                export_error = None
            except Exception as exc:
                onnx_path, export_error = None, f"{type(exc).__name__}: {exc}"
            reference = reference_outputs(model, tiny)
            for runtime in args.runtimes.split(","):
                row = try_runtime(runtime, model, tiny, onnx_path, reference)
                if export_error and row["status"] != "ok":
                    row["export_error"] = export_error
                row.update(model=model, size=size, runtime=runtime)
                rows.append(row)
                said = (f"ok, max abs err {row['max_abs_err']:.2g}, cosine {row['cosine']:.6f}"
                        if row["status"] == "ok" else f"{row['status']}: {row['reason']}")
                print(f"{model} ({size}) {runtime}: {said} [{row['seconds']} s]", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
