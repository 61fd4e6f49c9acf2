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
from energy import EnergyConfigError, parse_spec
from export.variants import ORT_OPT_LEVELS, VARIANTS, variant_name  # noqa: E402
from models.registry import LAB_SUITE, get_spec
from models.sources import validate_user_model
from models.weights import WeightsError, fetch_pretrained, resolve_source
from runners.harness import SAMPLE_CAP, TimingPolicy
from runners.runtimes import ALL, FIXED_PROVIDERS, expand_runtimes
from runners.runtimes.packages import missing as runtime_package_gap
from runstore.records import RUNTIMES
from setting_defs import SettingError, check_writable, measuring_fields, parse_count, parse_list, setting
from setting_defs.kinds import is_unset

QUICK: dict[str, Any] = {"batch_sizes": (1,), "durations": (1.0,), "reps": 5, "min_time_s": 0.2, "max_time_s": 3.0}

# a bad setting (one line naming the value and what is valid); the definitions raise it too
SettingsError = SettingError

# measured fields the profile decides rather than a setting (DEVICE's profile picks PyTorch's device)
PROFILE_MEASURING = ("pytorch_device",)


def hash_fields() -> tuple[str, ...]:
    """The Settings fields two runs must share to resume each other: every setting defined as
    changing what is measured (setting_defs) and what the profile decides with them."""
    return measuring_fields() + PROFILE_MEASURING


def _default(name: str) -> Any:
    """A Settings field's default: the setting's own (setting_defs), written nowhere else."""
    return setting(name).default


@dataclass(frozen=True)
class Settings:
    device: str
    models: tuple[str, ...]
    runtimes: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    durations: tuple[float, ...]
    # the defaults are the settings' own (setting_defs.table); what each means is said there
    reps: int = _default("REPS")
    threads: tuple[int, ...] = (1,)
    variants: tuple[str, ...] = _default("VARIANTS")
    ort_opts: tuple[str, ...] = _default("ORT_OPT")
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    pytorch_device: str = "cpu"
    energy: str = _default("ENERGY")
    weights: str = _default("WEIGHTS")
    energy_preferred: tuple[str, ...] = ()
    grid: bool = False
    quick: bool = False
    tiny: bool = False
    min_time_s: float = _default("MIN_TIME")
    max_time_s: float = _default("MAX_TIME")
    ci_target: float = _default("CI_TARGET")
    speedup_ci: float = _default("SPEEDUP_CI")  # relative width of the paired speed-up's CI (runners/stopping.py)
    speedup_base: str = _default("SPEEDUP_BASE")  # the runtime the speed-ups are against (bench/schedule.py pairs())
    cell_timeout_s: float = 900.0
    exporter: str = _default("EXPORTER")
    measure_peak: bool = True
    order: str = _default("ORDER")  # bench/schedule.py ORDERS
    remeasure: str = _default("REMEASURE")  # "drift": a resumed run measures its drift-flagged comparisons again
    results_dir: str = _default("RESULTS_DIR")
    onnx_dir: str = "results/onnx"
    artifacts_dir: str = "results/onnx/artifacts"  # edge-runtime artifacts made elsewhere, with their manifest
    extra: dict[str, Any] = field(default_factory=dict)

    def settings_hash(self) -> str:
        """Names what is measured: two runs with the same hash can resume each other."""
        data = {k: getattr(self, k) for k in hash_fields()}
        data["weights"] = self.measured_weights()
        if not self.base_is_measured():
            del data["speedup_base"]
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=list).encode()).hexdigest()[:10]

    def measured_weights(self) -> str:
        """``WEIGHTS`` as far as it changes what is measured: ``default`` that gives every model of
        the run its random weights (the lab suite) measures what ``random`` measures, and hashes
        as ``random``, so a run of an older version (default ``random``) can still be resumed."""
        if self.weights == "default" and all(resolve_source(m, "default", self.tiny) == "random" for m in self.models):
            return "random"
        return self.weights

    def base_is_measured(self) -> bool:
        """``SPEEDUP_BASE`` as far as it changes what is measured: PyTorch, which every version
        before the setting paired with, or a run of one runtime (nothing to pair) measure what
        they measured before, and hash as they did then, so an older run can still be resumed."""
        return self.speedup_base != setting("SPEEDUP_BASE").default and len(self.runtimes) > 1

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


def speedup_base_of(runtimes: tuple[str, ...] | list[str], text: object) -> str:
    """The run's base runtime: ``SPEEDUP_BASE`` as given, which must be one of ``runtimes``
    (SettingsError naming it and the run's runtimes otherwise); unset, PyTorch, or the first of
    ``runtimes`` when the run does not measure PyTorch."""
    if is_unset(text):
        default = str(setting("SPEEDUP_BASE").default)
        return default if default in runtimes or not runtimes else runtimes[0]
    given = str(text).strip()
    if given not in runtimes:  # a runtime this run does not measure, or no runtime at all
        raise SettingsError(f"SPEEDUP_BASE={given!r} is not among the runtimes of this run (RUNTIMES); "
                            f"valid: {', '.join(runtimes)}")
    return given


def check_choice(values: tuple[str, ...], valid: tuple[str, ...] | list[str], name: str) -> None:
    for value in values:
        if value not in valid:
            raise SettingsError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


def build_settings(profile: DeviceProfile, *, models: str | None, runtimes: str | None,
                   batch_sizes: str | None, durations: str | None, reps: int | str | None,
                   threads: str | None, providers: str | None, energy: str | None,
                   variants: str | None = None, ort_opts: str | None = None, grid: bool | str | None = False,
                   quick: bool | str | None = False, tiny: bool | str | None = False,
                   min_time_s: float | str | None = None, max_time_s: float | str | None = None,
                   ci_target: float | str | None = None, speedup_ci: float | str | None = None,
                   cell_timeout_s: float | str | None = None, exporter: str | None = None, results_dir: str | None = None,
                   onnx_dir: str | None = None, weights: str | None = None, available_providers: list[str] | None = None,
                   all_providers: list[str] | None = None, accelerators: Accelerators | None = None,
                   order: str | None = None, remeasure: str | None = None,
                   speedup_base: str | None = None, artifacts_dir: str | None = None) -> Settings:
    """Validated settings; explicit values are checked whatever QUICK, GRID or the profile say.

    Each keyword is a setting's ``field`` (setting_defs), as typed (text) or already typed; it is
    parsed by its definition, and unset means the definition's default (or the profile's)."""
    def value(name: str, text: object) -> object:
        return setting(name).value(text)

    tiny, grid, quick = bool(value("TINY", tiny)), bool(value("GRID", grid)), bool(value("QUICK", quick))
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
    base = speedup_base_of(runtime_list, speedup_base)
    not_installed = runtime_package_gap(runtime_list)  # optional runtimes are installed only when asked
    if not_installed:
        raise SettingsError(not_installed)
    provider_list = parse_list(providers, str, "PROVIDERS")
    gaps = profile_gaps(profile, runtime_list, accelerators, providers_given=bool(provider_list))
    if gaps:
        raise SettingsError(f"DEVICE={profile.name} cannot run here: {'; '.join(gaps)}; "
                            f"use DEVICE=cpu, or RUNTIMES= without the runtime that cannot run")
    variant_list = parse_list(variants, str, "VARIANTS") or setting("VARIANTS").default
    check_choice(variant_list, VARIANTS, "variant")
    opt_list = parse_list(ort_opts, str, "ORT_OPT") or setting("ORT_OPT").default
    check_choice(opt_list, ORT_OPT_LEVELS, "ONNX Runtime optimisation level")
    exporter_name = str(value("EXPORTER", exporter))  # one of setting_defs' EXPORTER choices (= EXPORTERS)
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
    batch_list, duration_list = sweep_lists(profile, batch_sizes, durations, quick)
    thread_list = parse_list(threads, int, "THREADS") or (profile.default_threads(),)
    reps_given = parse_count(reps, "REPS")
    timing = {name: setting(name).parse(text, name) for name, text in (
        ("MIN_TIME", min_time_s), ("MAX_TIME", max_time_s), ("CI_TARGET", ci_target), ("SPEEDUP_CI", speedup_ci),
        ("CELL_TIMEOUT", cell_timeout_s))}
    energy_spec = str(value("ENERGY", energy))
    check_energy(energy_spec)
    weights_given = str(value("WEIGHTS", weights))
    check_weights(model_list, weights_given, tiny)
    order_name = str(value("ORDER", order))  # one of setting_defs' ORDER choices (= bench.schedule.ORDERS)
    remeasure_mode = str(value("REMEASURE", remeasure))
    results = str(value("RESULTS_DIR", results_dir))
    onnx_folder = str(value("ONNX_DIR", onnx_dir) or Path(results) / "onnx")
    artifacts_folder = str(value("ARTIFACTS_DIR", artifacts_dir) or Path(onnx_folder) / "artifacts")  # read only here
    check_writable(results, "RESULTS_DIR", "--results", setting("RESULTS_DIR").folder)
    check_writable(onnx_folder, "ONNX_DIR", "--onnx-dir", setting("ONNX_DIR").folder)
    settings = Settings(
        device=profile.name, models=tuple(model_list), runtimes=tuple(runtime_list),
        batch_sizes=tuple(batch_list), durations=tuple(float(d) for d in duration_list),
        reps=reps_given or setting("REPS").default, threads=tuple(thread_list), variants=tuple(variant_list),
        ort_opts=tuple(opt_list), providers=tuple(provider_list), pytorch_device=profile.pytorch_device,
        energy=energy_spec, weights=weights_given, energy_preferred=tuple(profile.energy), grid=grid, tiny=tiny,
        cell_timeout_s=timing["CELL_TIMEOUT"] or profile.cell_timeout_s, exporter=exporter_name,
        results_dir=results, onnx_dir=onnx_folder, artifacts_dir=artifacts_folder, order=order_name,
        remeasure=remeasure_mode, speedup_base=base,
    )
    if quick:
        explicit = {"batch_sizes": batch_sizes, "durations": durations, "reps": reps_given}
        overrides = {k: v for k, v in QUICK.items()  # the sweep's lists are sweep_lists' already
                     if k not in ("batch_sizes", "durations") and explicit.get(k) in (None, "")}
        settings = replace(settings, quick=True, **overrides)
    for name, key in (("MIN_TIME", "min_time_s"), ("MAX_TIME", "max_time_s"), ("CI_TARGET", "ci_target"),
                      ("SPEEDUP_CI", "speedup_ci")):
        if timing[name] is not None:
            settings = replace(settings, **{key: timing[name]})
    if settings.max_time_s < settings.min_time_s:
        raise SettingsError(f"MAX_TIME={settings.max_time_s} must be >= MIN_TIME={settings.min_time_s}")
    return settings


def sweep_lists(profile: DeviceProfile, batch_sizes: object, durations: object,
                quick: bool) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """(batch sizes, durations) of a run: as given, else QUICK's, else the profile's.  Apart from
    build_settings because the fleet needs a board's sweep on the laptop (which artifacts to ship),
    where build_settings' checks of this machine (installed runtimes, accelerators) do not apply."""
    batches = parse_list(batch_sizes, int, "BATCH_SIZES") or (QUICK["batch_sizes"] if quick else profile.batch_sizes)
    seconds = parse_list(durations, float, "DURATIONS") or (QUICK["durations"] if quick else profile.durations)
    return tuple(batches), tuple(float(d) for d in seconds)


def check_weights(models: tuple[str, ...] | list[str], weights: str, tiny: bool = False) -> None:
    """Local checkpoints must exist and published ones must be reachable before anything runs
    (``make bench`` and ``make eval``)."""
    if weights == "random":
        return
    for model in models:
        source = resolve_source(model, weights, tiny)
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
    for family in families:
        if family.startswith("csv:"):
            _check_meter_log(family[len("csv:"):])
    if "estimate" in families:
        watts = os.environ.get("CPU_WATTS", "")
        try:
            ok = float(watts) > 0
        except ValueError:
            ok = False
        if not ok:
            raise SettingsError(f"ENERGY=estimate needs CPU_WATTS=<watts> (> 0), got CPU_WATTS={watts!r}")


def _check_meter_log(path: str) -> None:
    """ENERGY=csv:<file>: the meter's log may start after the run, but its folder must be there."""
    if not path:
        raise SettingsError("ENERGY=csv: needs the path of the meter's log, e.g. ENERGY=csv:/tmp/usbmeter.csv")
    log = Path(path).expanduser()
    if log.is_dir():
        raise SettingsError(f"ENERGY=csv:{path}: is a folder; name the meter's log file in it")
    if not log.parent.is_dir():
        raise SettingsError(f"ENERGY=csv:{path}: no folder {log.parent} for the meter's log")


def _ort_available() -> list[str]:
    # deferred: onnxruntime is heavy and optional on a PyTorch-only path
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _ort_all() -> list[str]:
    # deferred: onnxruntime is heavy and optional on a PyTorch-only path
    import onnxruntime as ort

    return list(ort.get_all_providers())
