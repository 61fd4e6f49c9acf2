"""``make export RUNTIMES=executorch,litert``: the edge runtimes' per-shape artifacts for a device profile's
cells, made on this machine to be used on another, with their manifest.

A board cannot always make them itself: LiteRT's converter has no Linux aarch64 wheel, and an
ExecuTorch export of an RNN takes minutes and GBs (``make bench`` does not even try one above
0.25 s of input; ``make export`` neither, unless ``LONG_RNN=1``).  ``make export
RUNTIMES=executorch DEVICE=rpi`` on a laptop makes one artifact for
every shape ``make bench DEVICE=rpi`` would measure — the profile's sweep as the bench's own settings
make it (``BATCH_SIZES``, ``DURATIONS``, ``GRID``, ``QUICK``, ``TINY``, ``MODELS``, ``WEIGHTS``
apply) — and for the fidelity probe's input, with the runtime's own export (the one its runner
calls: the same file, the same check against PyTorch), and writes them with ``manifest.json`` into
``ARTIFACTS_DIR`` (``<ONNX_DIR>/artifacts``).  ``make fleet`` ships that folder; on the board the
runner uses an artifact where the model hash, the shape and the runtime's release match and the
checksum verifies (``runners/runtimes/artifacts.py``).

An artifact already in the manifest with the same key (every version included) and an intact file
is kept ("up to date"; ``FRESH=1`` makes it again); one in this machine's cache
(``<ONNX_DIR>/<runtime>/``) is copied rather than exported again.  What a runtime cannot make is
listed under the manifest's ``unsupported`` with the reason, as ``make bench`` would record it —
and so is what ``make bench`` would not try (an RNN above the runtime's input limit: ExecuTorch
0.25 s, LiteRT 1 s), unless ``LONG_RNN=1`` asks for it.

LiteRT's and ExecuTorch's drift canaries (``runners/canary.py``, model ``canary``, input 256×256)
are made too: their workers obtain them as the models' (cache, manifest, conversion), so a board
without LiteRT's converter times a canary instead of recording drift as unknown, and a board does
not lower ExecuTorch's canary again in every worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.profiles import ProfileError, resolve_profile
from bench.settings import Settings, build_settings
from models.audio_format import samples_of
from models.registry import get_spec
from models.weights import NO_WEIGHTS_LABEL, has_no_weights, resolve_source
from runners.canary import CANARY_MODEL, CANARY_SHAPE, SHIPPED_CANARIES, canary_module
from runners.memory import return_freed_memory
from runners.reference import build_reference, probe_shape
from runners.runtimes import (
    FIXED_PROVIDERS,
    ONNX_RUNTIMES,
    SHIPPABLE,
    UnsupportedError,
    artifacts,
    expand_runtimes,
    make_runtime,
)
from runstore.folder import portable_text
from setting_defs import SettingError

CANARY_WEIGHTS = "seeded (runners/canary.py)"  # the canary's fixed weights, as the manifest names them


@dataclass
class EdgeExport:
    """What one ``make export`` made: counts, and one line per shape that could not be made."""

    manifest: Path
    made: int = 0
    copied: int = 0
    up_to_date: int = 0
    unsupported: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def split_runtimes(names: tuple[str, ...]) -> tuple[bool, tuple[str, ...]]:
    """(whether an ONNX export is wanted, the runtimes whose artifacts make export makes) for
    ``RUNTIMES``: ONNX Runtime and OpenVINO load the ONNX file; ExecuTorch and LiteRT make per-shape
    artifacts; PyTorch builds its module in the worker (nothing to export)."""
    expanded = expand_runtimes(names)
    return bool(set(expanded) & set(ONNX_RUNTIMES)), tuple(r for r in expanded if r in SHIPPABLE)


def export_settings(found: dict[str, Any], edge: tuple[str, ...]) -> Settings:
    """make bench's settings for ``DEVICE``'s profile (whose sweep gives the shapes); SettingError."""
    try:
        profile = resolve_profile(str(found.get("DEVICE") or "auto"))
    except ProfileError as exc:
        raise SettingError(str(exc)) from None
    return build_settings(profile, models=found.get("MODELS"), runtimes=",".join(edge),
                          batch_sizes=found.get("BATCH_SIZES"), durations=found.get("DURATIONS"), reps=None,
                          threads=None, providers=None, energy="none", grid=found.get("GRID"),
                          quick=found.get("QUICK"), tiny=found.get("TINY"), weights=found.get("WEIGHTS"),
                          exporter=found.get("EXPORTER"), results_dir=found.get("RESULTS_DIR"),
                          onnx_dir=found.get("ONNX_DIR"), artifacts_dir=found.get("ARTIFACTS_DIR"))


def artifact_shapes(settings: Settings, model: str, runtime: str) -> list[tuple[int, int]]:
    """(batch, samples) of every cell of ``model`` under ``runtime`` in ``settings``' plan (those
    its model can take) and of the fidelity probe's input, smallest first."""
    spec = get_spec(model)
    shapes = {(c.batch_size, samples_of(c.duration_s)) for c in settings.plan()
              if c.model == model and c.runtime == runtime}
    shapes = {s for s in shapes if s[1] >= spec.min_samples}
    shapes.add(probe_shape(spec))
    return sorted(shapes, key=lambda s: (s[1], s[0]))


def canary_artifacts(runtime: str) -> list[tuple[str, tuple[int, int]]]:
    """(model, shape) of the drift canary's artifact ``make export`` makes for ``runtime`` (LiteRT's:
    a board without its converter has a canary only so), beside the models' shapes; the same for
    every profile, size and model list, so ``make fleet`` ships it to every board of the runtime."""
    return [(CANARY_MODEL, CANARY_SHAPE)] if runtime in SHIPPED_CANARIES else []


def weights_label(model: str, settings: Settings, module: Any = None) -> str:
    """The weights an artifact was made with, as the records name them (``none`` for a model without
    parameters; no absolute path)."""
    if module is not None and has_no_weights(module):
        return NO_WEIGHTS_LABEL
    return portable_text(resolve_source(model, settings.weights, settings.tiny))


def _drop_replaced(folder: Path, entries: list[dict[str, Any]], old: list[dict[str, Any]], keep: str) -> None:
    """Remove ``old`` entries (another version of the same artifact) and their files, unless
    another entry still names the file."""
    for entry in old:
        entries.remove(entry)
    named = {e.get("file") for e in entries} | {keep}
    for entry in old:
        name = str(entry.get("file") or "")
        if name and name not in named and not Path(name).is_absolute() and ".." not in Path(name).parts:
            (folder / name).unlink(missing_ok=True)


def export_artifacts(settings: Settings, runtimes: tuple[str, ...], *, fresh: bool = False, long_rnn: bool = False,
                     log: Callable[[str], None] = print) -> EdgeExport:
    """Make (or keep) every artifact of ``runtimes`` for ``settings``' cells and write the manifest;
    the manifest is saved after each artifact, so an interrupted export keeps what it made.

    A shape the runtime would not export during ``make bench`` (its ``refusal``: an RNN above its
    input limit, unrolled frame by frame, minutes and GBs each) is listed as unsupported with that
    reason rather than tried up to the export time limit; ``long_rnn`` (``LONG_RNN=1``) tries it."""
    folder = Path(settings.artifacts_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        manifest = artifacts.load_manifest(folder) or artifacts.empty_manifest()
    except artifacts.ManifestError as exc:
        log(f"artifacts: {exc}; starting a new manifest")
        manifest = artifacts.empty_manifest()
    entries: list[dict[str, Any]] = [e for e in manifest["artifacts"] if isinstance(e, dict)]
    refused: list[dict[str, Any]] = [e for e in manifest.get("unsupported") or [] if isinstance(e, dict)]
    made_on = artifacts.this_host()
    outcome = EdgeExport(folder / artifacts.MANIFEST)

    def save() -> None:
        artifacts.save_manifest(folder, {**manifest, "artifacts": entries, "unsupported": refused})

    for runtime in runtimes:
        cache_dir = Path(settings.onnx_dir) / runtime
        canaries = dict(canary_artifacts(runtime))
        for model in (*settings.models, *canaries):
            canary = model in canaries and model not in settings.models
            shapes = [canaries[model]] if canary else artifact_shapes(settings, model, runtime)
            build = canary_module if canary else (lambda m=model: build_reference(m, settings.tiny, settings.weights))
            runtime_obj = make_runtime(runtime, build=build, provider=FIXED_PROVIDERS.get(runtime, "CPUExecutionProvider"),
                                       threads=None, artifact_dir=cache_dir, model=model)
            if not isinstance(runtime_obj, artifacts.Convertible):  # a SHIPPABLE runtime without the methods
                raise TypeError(f"the {runtime} runtime has no artifact_key/export (runners/runtimes/artifacts.py)")
            try:
                runtime_obj.load()
            except UnsupportedError as exc:
                for shape in shapes:
                    _refuse(refused, outcome, runtime, model, shape, str(exc), made_on, log)
                save()
                continue
            except Exception as exc:  # the model cannot be built (weights): this model fails, the others go on
                outcome.errors.append(f"{runtime} {model}: {type(exc).__name__}: {exc}")
                log(f"{runtime} {model}: FAILED: {type(exc).__name__}: {exc}")
                continue
            label = CANARY_WEIGHTS if canary else weights_label(model, settings, getattr(runtime_obj, "module", None))
            for shape in shapes:
                key = runtime_obj.artifact_key(shape)
                where = f"{runtime} {model} {key.shape_text()}"
                refused[:] = [e for e in refused if not (e.get("runtime") == runtime and e.get("model") == model
                                                         and list(e.get("input_shape") or []) == list(shape))]
                old = [e for e in entries if artifacts.for_shape(e, key) and e.get("module_sha256") == key.module_sha256]
                same = next((e for e in old if artifacts.same_artifact(e, key)
                             and artifacts.verify_file(folder, e) is None), None)
                if same is not None and not fresh:
                    outcome.up_to_date += 1
                    log(f"{where}: up to date ({same['file']})")
                    continue
                cached = None if fresh else artifacts.read_cached(cache_dir, key)
                why = None if long_rnn or cached is not None else runtime_obj.refusal(shape)
                if why:
                    _refuse(refused, outcome, runtime, model, shape, why, made_on, log)
                    log(f"{where}: LONG_RNN=1 exports it anyway (within the export time limit)")
                    save()
                    continue
                try:
                    if cached is not None:
                        meta: dict[str, Any] = cached
                        rel, _ = artifacts.copy_into(folder, key, artifacts.cache_path(cache_dir, key))
                        how = "copied from this machine's cache"
                        outcome.copied += 1
                    else:
                        log(f"{where}: exporting ...")
                        data, meta = runtime_obj.export(shape)
                        rel, _ = artifacts.copy_into(folder, key, data)
                        del data
                        how = f"exported in {meta['export_s']:.1f} s"
                        outcome.made += 1
                except UnsupportedError as exc:
                    _refuse(refused, outcome, runtime, model, shape, str(exc), made_on, log)
                    save()
                    continue
                except Exception as exc:  # a runtime's surprise: this shape fails, the export goes on
                    outcome.errors.append(f"{where}: {type(exc).__name__}: {exc}")
                    log(f"{where}: FAILED: {type(exc).__name__}: {exc}")
                    continue
                entry = artifacts.manifest_entry(key, meta, rel, made_on, tiny=None if canary else settings.tiny,
                                                 weights=label, profile=None if canary else settings.device)
                _drop_replaced(folder, entries, old, rel)
                entries.append(entry)
                save()
                check = meta.get("check") or {}
                log(f"{where}: {how}, {meta['bytes'] / 1e6:.1f} MB"
                    + (f" (check: max abs err {check['max_abs_err']:.2g}, cosine {check['cosine']:.6f})"
                       if "max_abs_err" in check else ""))
            runtime_obj.close()
            return_freed_memory()
    save()
    return outcome


def _refuse(refused: list[dict[str, Any]], outcome: EdgeExport, runtime: str, model: str, shape: tuple[int, int],
            reason: str, made_on: dict[str, str], log: Callable[[str], None]) -> None:
    """List a shape that cannot be made (the latest reason only)."""
    refused[:] = [e for e in refused if not (e.get("runtime") == runtime and e.get("model") == model
                                             and list(e.get("input_shape") or []) == list(shape))]
    refused.append({"runtime": runtime, "model": model, "input_shape": list(shape), "reason": portable_text(reason),
                    "made_on": made_on, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    outcome.unsupported.append(f"{runtime} {model} {shape[0]}x{shape[1]}: {reason}")
    log(f"{runtime} {model} {shape[0]}x{shape[1]}: unsupported: {reason}")


def summary_line(outcome: EdgeExport) -> str:
    made = outcome.made + outcome.copied
    parts = [f"{made} made" + (f" ({outcome.copied} from this machine's cache)" if outcome.copied else ""),
             f"{outcome.up_to_date} up to date"]
    if outcome.unsupported:
        parts.append(f"{len(outcome.unsupported)} unsupported")
    if outcome.errors:
        parts.append(f"{len(outcome.errors)} FAILED")
    return f"edge artifacts: {', '.join(parts)}; manifest {outcome.manifest}"
