"""``python -m export``: build and export models to ONNX (``make export`` calls it); with
``RUNTIMES=executorch`` (or ``litert``) also the edge runtimes' per-shape artifacts for ``DEVICE``'s cells, with
their manifest (``bench/edge_export.py``: made here, used on a board)."""

from __future__ import annotations

import argparse
import sys

from export.needs import missing_for
from export.onnx_export import ExportError, export_model
from models.registry import LAB_SUITE, MODELS, UnknownModelError
from setting_defs import SettingError, add_flags, check_folders, values


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    # MODELS, ONNX_DIR (--out), EXPORTER, TINY, WEIGHTS, FRESH (--force), RESULTS_DIR: read as make bench reads them;
    # RUNTIMES, DEVICE, BATCH_SIZES, DURATIONS, GRID, QUICK, ARTIFACTS_DIR: the edge runtimes' artifacts
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
    onnx_wanted, edge, edge_settings = True, (), None
    if found["RUNTIMES"]:
        # deferred: make export's entry point reaches up to bench for the edge runtimes (the profile's
        # cell shapes, each runtime's own export); tests/test_architecture.py allows this one import
        from bench.edge_export import export_artifacts, export_settings, split_runtimes, summary_line

        onnx_wanted, edge = split_runtimes(found["RUNTIMES"])
        try:
            if edge:
                check_folders(found, ("ARTIFACTS_DIR",))
                edge_settings = export_settings(found, edge)  # checked before anything is exported
        except SettingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not onnx_wanted and not edge:
            print(f"nothing to export for RUNTIMES={','.join(found['RUNTIMES'])} (PyTorch builds its model "
                  "in the worker)")
            return 0
    failed = 0
    if onnx_wanted:
        if (missing := missing_for(exporter)) is not None:
            print(f"error: {missing}", file=sys.stderr)
            return 2
        failed += export_onnx(names, out, tiny=tiny, exporter=exporter, force=force, weights=weights)
    if edge_settings is not None:
        outcome = export_artifacts(edge_settings, edge, fresh=force, long_rnn=found["LONG_RNN"], log=print)
        print(summary_line(outcome))
        failed += len(outcome.errors)
    return 1 if failed else 0


def export_onnx(names: list[str], out: str, *, tiny: bool, exporter: str, force: bool, weights: str) -> int:
    """Export each model to ONNX and say how it went; the number that failed."""
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
    return failed


if __name__ == "__main__":
    sys.exit(main())
