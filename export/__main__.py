"""``python -m export``: build and export models to ONNX (``make export`` calls it)."""

from __future__ import annotations

import argparse
import os
import sys

from export.needs import missing_for
from export.onnx_export import EXPORTERS, ExportError, export_model
from models.registry import LAB_SUITE, MODELS, UnknownModelError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    p.add_argument("--models", default=os.environ.get("MODELS") or ",".join(LAB_SUITE))
    p.add_argument("--out", default=os.environ.get("ONNX_DIR") or "results/onnx")
    p.add_argument("--exporter", default=os.environ.get("EXPORTER") or "torchscript", choices=EXPORTERS)
    p.add_argument("--tiny", action="store_true", default=os.environ.get("TINY") == "1")
    p.add_argument("--force", action="store_true", default=os.environ.get("FRESH") == "1")
    args = p.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in names:
        if name not in MODELS:
            print(f"error: unknown model {name!r}; valid models: {', '.join(MODELS)}", file=sys.stderr)
            return 2
    if (missing := missing_for(args.exporter)) is not None:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            e = export_model(name, args.out, tiny=args.tiny, exporter=args.exporter, force=args.force)
        except (ExportError, UnknownModelError) as exc:
            print(f"FAILED {exc}", file=sys.stderr)
            failed += 1
            continue
        if e.get("skipped"):
            print(f"{name}: up to date ({e['file']})")
            continue
        worst = max(c["max_abs_err"] for c in e["checks"])
        cos = min(c["cosine"] for c in e["checks"])
        print(f"{name}: {e['file']} {e['onnx_bytes'] / 1e6:.1f} MB, {e['params_unique']:,} parameters "
              f"(used {e['params_used']:,}), export {e['export_time_s']:.1f}s, "
              f"check max abs err {worst:.2e}, cosine {cos:.6f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
