"""What a benchmark run measures: settings, their validation, and the plan of cells.

Validation happens before anything is written: a bad value raises ``SettingsError`` with one
line naming the value and the valid choices (the command line turns it into exit code 2).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any

from bench.plan import PlannedCell
from bench.profiles import Accelerators, DeviceProfile, profile_gaps
from bench.schedule import ORDERS
from energy import EnergyConfigError, parse_spec
from export.onnx_export import EXPORTERS
from export.variants import ORT_OPT_LEVELS, VARIANTS, variant_name  # noqa: E402
from models.registry import LAB_SUITE, get_spec
from models.sources import validate_user_model
from models.weights import WeightsError, fetch_pretrained, resolve_source
from runners.harness import SAMPLE_CAP, SPEEDUP_CI, TimingPolicy
from runners.runtimes import ALL, FIXED_PROVIDERS, expand_runtimes
from runners.runtimes.packages import missing as runtime_package_gap
from runstore.records import RUNTIMES

QUICK = {"batch_sizes": (1,), "durations": (1.0,), "reps": 5, "min_time_s": 0.2, "max_time_s": 3.0}


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    device: str
    models: tuple[str, ...]
    runtimes: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    durations: tuple[float, ...]
    reps: int = 10
    threads: tuple[int, ...] = (1,)
    variants: tuple[str, ...] = ("fp32",)
    ort_opts: tuple[str, ...] = ("all",)
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    pytorch_device: str = "cpu"
    energy: str = "auto"
    weights: str = "random"
    energy_preferred: tuple[str, ...] = ()
    grid: bool = False
    quick: bool = False
    tiny: bool = False
    min_time_s: float = 1.0
    max_time_s: float = 8.0
    ci_target: float = 0.05
    speedup_ci: float = SPEEDUP_CI  # relative width of the paired speed-up's CI (runners/stopping.py)
    cell_timeout_s: float = 900.0
    exporter: str = "torchscript"
    measure_peak: bool = True
    order: str = "interleaved"  # bench/schedule.py ORDERS
    remeasure: str = ""  # "drift": a resumed run measures its drift-flagged comparisons again
    results_dir: str = "results"
    onnx_dir: str = "results/onnx"
    extra: dict[str, Any] = field(default_factory=dict)

    # fields that change what is measured: two runs with the same ones can resume each other
    MEASURING = ("device", "models", "runtimes", "batch_sizes", "durations", "reps", "threads",
                 "variants", "ort_opts", "providers", "pytorch_device", "energy", "weights", "grid", "quick", "tiny",
                 "min_time_s", "max_time_s", "ci_target", "speedup_ci", "exporter", "order")

    def settings_hash(self) -> str:
        data = {k: getattr(self, k) for k in self.MEASURING}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=list).encode()).hexdigest()[:10]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def policy(self) -> TimingPolicy:
        """The stopping rule, built once for the run (the scheduler and every worker read this one
        object); the sample cap never cuts below REPS (REPS=2000 raises it)."""
        return TimingPolicy(min_reps=self.reps, max_reps=max(SAMPLE_CAP, self.reps), min_time_s=self.min_time_s,
                            max_time_s=max(self.max_time_s, self.min_time_s), ci_target=self.ci_target,
                            speedup_ci=self.speedup_ci)

    def sweep(self) -> list[tuple[int, float]]:
        """(batch, duration) pairs: the full grid, or two lines through it (the default)."""
        if self.grid:
            return list(product(self.batch_sizes, self.durations))
        first_d, first_b = self.durations[0], self.batch_sizes[0]
        pairs = [(b, first_d) for b in self.batch_sizes]
        pairs += [(first_b, d) for d in self.durations if (first_b, d) not in pairs]
        return pairs

    def plan(self) -> list[PlannedCell]:
        """Every cell, grouped so that one worker measures one model × runtime configuration."""
        cells = []
        for model in self.models:
            for runtime in self.runtimes:
                providers = [self.pytorch_device] if runtime == "pytorch" else list(self.providers)
                if runtime in FIXED_PROVIDERS:  # OpenVINO: its CPU plugin, whatever the profile's EPs
                    providers = [FIXED_PROVIDERS[runtime]]
                opts = self.ort_opts if runtime == "onnxruntime" else ("all",)  # graph levels are ORT's
                variants = [variant_name(v, o) for v in self.variants for o in opts]
                for provider, variant, threads in product(providers, variants, self.threads):
                    for batch, duration in self.sweep():
                        cells.append(PlannedCell(model=model, runtime=runtime, provider=provider,
                                                 variant=variant, threads=threads,
                                                 batch_size=batch, duration_s=float(duration)))
        return cells


def parse_list(text: str | None, kind: type, name: str) -> tuple | None:
    """``"1,2,4"`` -> (1, 2, 4); each value must be > 0 for numbers."""
    if text is None or text == "":
        return None
    values = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        if kind is str:
            values.append(item)
            continue
        try:
            value = kind(item)
        except ValueError:
            raise SettingsError(f"{name}={item!r} is not a number; expected a comma-separated list of "
                                f"positive {'integers' if kind is int else 'numbers'}") from None
        if value <= 0:
            raise SettingsError(f"{name}={item} must be > 0")
        values.append(value)
    if not values:
        raise SettingsError(f"{name} is empty")
    return tuple(values)


def parse_count(text: str | int | None, name: str) -> int | None:
    """A whole number >= 1 typed by the user (``REPS=0`` and ``REPS=ten`` are refused)."""
    if text is None or str(text).strip() == "":
        return None
    try:
        value = int(str(text).strip())
    except ValueError:
        raise SettingsError(f"{name}={str(text).strip()!r} is not a whole number; expected an integer >= 1") from None
    if value < 1:
        raise SettingsError(f"{name}={value} must be >= 1")
    return value


def check_choice(values: tuple[str, ...], valid: tuple[str, ...] | list[str], name: str) -> None:
    for value in values:
        if value not in valid:
            raise SettingsError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


def check_writable(results_dir: str | Path) -> None:
    """The results folder must be creatable and writable; checked before anything is written."""
    path = Path(results_dir).resolve()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise SettingsError(f"results folder {results_dir} is not writable (checked {probe}); "
                            f"choose another with RESULTS_DIR=... / --results")


def build_settings(profile: DeviceProfile, *, models: str | None, runtimes: str | None,
                   batch_sizes: str | None, durations: str | None, reps: int | str | None,
                   threads: str | None, providers: str | None, energy: str | None,
                   variants: str | None = None, ort_opts: str | None = None, grid: bool = False, quick: bool = False,
                   tiny: bool = False, min_time_s: float | None = None, max_time_s: float | None = None,
                   ci_target: float | None = None, speedup_ci: float | None = None, cell_timeout_s: float | None = None,
                   exporter: str = "torchscript", results_dir: str = "results",
                   onnx_dir: str | None = None, weights: str | None = None, available_providers: list[str] | None = None,
                   all_providers: list[str] | None = None, accelerators: Accelerators | None = None,
                   order: str | None = None, remeasure: str | None = None) -> Settings:
    """Validated settings; explicit values are checked whatever QUICK, GRID or the profile say."""
    model_list = parse_list(models, str, "MODELS") or LAB_SUITE
    for model in model_list:
        try:
            spec = get_spec(model)
            if model.startswith(("python:", "hf:", "s3prl:")):
                validate_user_model(spec, tiny)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    runtime_list = parse_list(runtimes, str, "RUNTIMES") or profile.runtimes
    check_choice(runtime_list, (*RUNTIMES, ALL), "runtime")
    runtime_list = expand_runtimes(runtime_list)
    not_installed = runtime_package_gap(runtime_list)  # optional runtimes are installed only when asked
    if not_installed:
        raise SettingsError(not_installed)
    provider_list = parse_list(providers, str, "PROVIDERS")
    gaps = profile_gaps(profile, runtime_list, accelerators, providers_given=bool(provider_list))
    if gaps:
        raise SettingsError(f"DEVICE={profile.name} cannot run here: {'; '.join(gaps)}; "
                            f"use DEVICE=cpu, or RUNTIMES= without the runtime that cannot run")
    variant_list = parse_list(variants, str, "VARIANTS") or ("fp32",)
    check_choice(variant_list, VARIANTS, "variant")
    opt_list = parse_list(ort_opts, str, "ORT_OPT") or ("all",)
    check_choice(opt_list, ORT_OPT_LEVELS, "ONNX Runtime optimisation level")
    if exporter not in EXPORTERS:
        raise SettingsError(f"unknown exporter {exporter!r}; valid: {', '.join(EXPORTERS)}")
    available = available_providers if available_providers is not None else _ort_available()
    if provider_list:
        # typed by the user: must exist in this onnxruntime build (a profile's required providers
        # are checked with the profile above; its optional ones are used only when present)
        known = all_providers if all_providers is not None else _ort_all()
        check_choice(provider_list, known, "execution provider")
        for p in provider_list:
            if p not in available:
                raise SettingsError(f"execution provider {p} is not available in the installed onnxruntime; "
                                    f"available: {', '.join(available)}")
    else:
        provider_list = tuple(profile.providers_for(available))
    batch_list = parse_list(batch_sizes, int, "BATCH_SIZES") or profile.batch_sizes
    duration_list = parse_list(durations, float, "DURATIONS") or profile.durations
    thread_list = parse_list(threads, int, "THREADS") or (profile.default_threads(),)
    reps = parse_count(reps, "REPS")
    for name, value in (("MIN_TIME", min_time_s), ("MAX_TIME", max_time_s), ("CI_TARGET", ci_target),
                        ("SPEEDUP_CI", speedup_ci), ("CELL_TIMEOUT", cell_timeout_s)):
        if value is not None and value <= 0:
            raise SettingsError(f"{name}={value} must be > 0")
    energy_spec = energy or "auto"
    check_energy(energy_spec)
    weights = weights or "random"
    _check_weights(model_list, weights)
    order = order or "interleaved"
    if order not in ORDERS:
        raise SettingsError(f"ORDER={order!r} is not an order; valid: {', '.join(ORDERS)}")
    remeasure = remeasure or ""
    if remeasure not in ("", "drift"):
        raise SettingsError(f"REMEASURE={remeasure!r} is not supported; valid: drift")
    check_writable(results_dir)
    settings = Settings(
        device=profile.name, models=tuple(model_list), runtimes=tuple(runtime_list),
        batch_sizes=tuple(batch_list), durations=tuple(float(d) for d in duration_list),
        reps=reps or 10, threads=tuple(thread_list), variants=tuple(variant_list), ort_opts=tuple(opt_list),
        providers=tuple(provider_list), pytorch_device=profile.pytorch_device,
        energy=energy_spec, weights=weights, energy_preferred=tuple(profile.energy), grid=grid, tiny=tiny,
        cell_timeout_s=cell_timeout_s or profile.cell_timeout_s, exporter=exporter,
        results_dir=str(results_dir), onnx_dir=onnx_dir or str(Path(results_dir) / "onnx"),
        order=order, remeasure=remeasure,
    )
    if quick:
        explicit = {"batch_sizes": batch_sizes, "durations": durations, "reps": reps}
        overrides = {k: v for k, v in QUICK.items() if explicit.get(k) in (None, "")}
        settings = replace(settings, quick=True, **overrides)
    if min_time_s is not None:
        settings = replace(settings, min_time_s=min_time_s)
    if max_time_s is not None:
        settings = replace(settings, max_time_s=max_time_s)
    if ci_target is not None:
        settings = replace(settings, ci_target=ci_target)
    if speedup_ci is not None:
        settings = replace(settings, speedup_ci=speedup_ci)
    if settings.max_time_s < settings.min_time_s:
        raise SettingsError(f"MAX_TIME={settings.max_time_s} must be >= MIN_TIME={settings.min_time_s}")
    return settings


def _check_weights(models: tuple[str, ...], weights: str) -> None:
    """Local checkpoints must exist and published ones must be reachable before anything runs."""
    if weights == "random":
        return
    for model in models:
        source = resolve_source(model, weights)
        try:
            if source == "pretrained":
                fetch_pretrained(model)
            elif source != "random" and not Path(source).expanduser().exists():
                raise WeightsError(f"{model}: weights {source} not found; use WEIGHTS=/path/to/checkpoint "
                                   f"or WEIGHTS=random")
        except WeightsError as exc:
            raise SettingsError(str(exc).splitlines()[0]) from None


def check_energy(spec: str) -> None:
    """Reject an unknown sensor name before anything runs (the sensors are probed later)."""
    try:
        families = parse_spec(spec)
    except EnergyConfigError as exc:
        raise SettingsError(str(exc)) from None
    if "estimate" in families:
        watts = os.environ.get("CPU_WATTS", "")
        try:
            ok = float(watts) > 0
        except ValueError:
            ok = False
        if not ok:
            raise SettingsError(f"ENERGY=estimate needs CPU_WATTS=<watts> (> 0), got CPU_WATTS={watts!r}")


def _ort_available() -> list[str]:
    # deferred: onnxruntime is heavy and optional on a PyTorch-only path
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _ort_all() -> list[str]:
    # deferred: onnxruntime is heavy and optional on a PyTorch-only path
    import onnxruntime as ort

    return list(ort.get_all_providers())
