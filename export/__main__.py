"""``python -m export``: build and export models to ONNX (``make export`` calls it)."""

from __future__ import annotations

import argparse
import sys

from export.needs import missing_for
from export.onnx_export import ExportError, export_model
from models.registry import LAB_SUITE, MODELS, UnknownModelError
from setting_defs import SettingError, add_flags, check_folders, values


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    # MODELS, ONNX_DIR (--out), EXPORTER, TINY, WEIGHTS, FRESH (--force), RESULTS_DIR: read as make bench reads them
    add_flags(p, "export", aliases={"ONNX_DIR": ("--out",), "FRESH": ("--force",)})
    args = p.parse_args(argv)
    try:
        found = values(args, "export")
        check_folders(found, ("ONNX_DIR",))
    except SettingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = list(found["MODELS"] or LAB_SUITE)
    for name in names:
        if name not in MODELS:
            print(f"error: unknown model {name!r}; valid models: {', '.join(MODELS)}", file=sys.stderr)
            return 2
    out, tiny, exporter, force = found["ONNX_DIR"], found["TINY"], found["EXPORTER"], found["FRESH"]
    weights = found["WEIGHTS"]
    if (missing := missing_for(exporter)) is not None:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            e = export_model(name, out, tiny=tiny, exporter=exporter, force=force, weights=weights)
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
