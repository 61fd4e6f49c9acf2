"""Every setting of wavebench, defined once.

A setting (``REPS``, ``ORDER``, ``THREADS`` ...) is one :class:`SettingDef` in :data:`SETTINGS`:
its make/environment variable, its command-line flag, how its text is parsed and checked, its
default, its valid values, whether it changes what is measured (then it feeds the settings hash
that decides whether a run can resume another), whether ``make fleet`` forwards it to the boards,
which commands read it, and its help text.  Everything else is derived from this table —
``python -m runners``' flags (``bench/cli.py``), the settings hash's fields (``bench/settings.py``),
the variables ``make fleet`` forwards (``fleet/config.py``), how ``python -m export``,
``python -m flops``, ``make eval`` and ``make fleet`` read the shared variables — or checked
against it by tests (the Makefile's ``export`` lines, the README's settings tables, the keywords of
``bench.settings.build_settings`` and the fields of ``Settings``), so a setting cannot be half-added.

To add a setting: one entry here; for ``make bench`` also a keyword of ``build_settings`` and a
field of ``Settings`` named by ``field``; its name on the Makefile's ``export`` line; a row in the
README's table.  ``tests/test_setting_defs.py`` names whatever is missing.

This module imports nothing of the project, so the lowest packages (``export/``, ``flops/``) can
read it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from setting_defs.kinds import (
    choice_parser,
    parse_count,
    parse_flag,
    parse_list,
    parse_positive,
    parse_text,
)

# the commands that read settings: ``make bench`` (python -m runners), ``make export``,
# ``make flops``, ``make eval`` and ``make fleet`` (the laptop's own variables)
TOOLS = ("bench", "export", "flops", "eval", "fleet")
SHARED = ("bench", "export", "flops", "eval")


def int_list(text: Any, name: str) -> tuple[int, ...] | None:
    return parse_list(text, int, name)


def float_list(text: Any, name: str) -> tuple[float, ...] | None:
    return parse_list(text, float, name)


def text_list(text: Any, name: str) -> tuple[str, ...] | None:
    return parse_list(text, str, name)


def choice_list(choices: tuple[str, ...]) -> Callable[[Any, str], tuple[str, ...] | None]:
    """A comma-separated list whose every item is one of ``choices``."""
    one = choice_parser(choices)

    def parse(text: Any, name: str) -> tuple[str, ...] | None:
        values = parse_list(text, str, name)
        return None if values is None else tuple(one(v, name) or "" for v in values)
    return parse


@dataclass(frozen=True)
class SettingDef:
    """One setting.  ``default`` is the typed value when the variable is unset; ``None`` means
    another source decides (the device profile, another setting), said by ``default_text``."""

    name: str                         # the make variable = the environment variable
    flag: str | None                  # the command-line flag (None: environment only)
    parse: Callable[[Any, str], Any]  # (text or typed value, name) -> typed value; SettingError
    default: Any
    default_text: str                 # the default in words (README, --help)
    help: str                         # what it does, in a few words
    field: str | None = None          # the bench Settings field / build_settings keyword it fills
    measuring: bool = False           # changes what is measured: part of the settings hash
    fleet: bool = False               # make fleet forwards it to every board's run
    tools: tuple[str, ...] = ("bench",)
    choices: tuple[str, ...] = ()     # its valid values, where they are a fixed list
    folder: str = ""                  # names a folder that is written: its noun in errors

    @property
    def dest(self) -> str:
        """The attribute of a parsed command line that holds it."""
        return self.field or self.name.lower()

    @property
    def is_switch(self) -> bool:
        return self.parse is parse_flag

    def value(self, text: Any) -> Any:
        """The typed value of ``text`` (the default when unset); SettingError when invalid."""
        parsed = self.parse(text, self.name)
        return self.default if parsed is None else parsed

    def help_line(self) -> str:
        valid = f" ({', '.join(self.choices)})" if self.choices else ""
        return f"{self.help}{valid}; default: {self.default_text} (make: {self.name}=)".replace("%", "%%")


def _switch(name: str, help: str, **kw: Any) -> SettingDef:
    flag = "--" + name.lower().replace("_", "-")
    return SettingDef(name, flag, parse_flag, False, "off", help, **kw)


ORDERS = ("interleaved", "grouped")
EXPORTERS = ("torchscript", "dynamo")
# runstore.records.RUNTIMES and runners.runtimes.ALL (every runtime); the optional ones (openvino,
# executorch, litert) must be installed (make setup-runtimes)
RUNTIME_NAMES = ("pytorch", "onnxruntime", "openvino", "executorch", "litert", "all")
# SPEEDUP_BASE: any runtime a record may name (runstore.records.RUNTIMES); it must also be one of
# the run's RUNTIMES (bench.settings.build_settings says so, naming the run's)
BASE_NAMES = RUNTIME_NAMES[:-1]
# the optional runtimes' distributions: recorded (environment, fingerprint) only where installed,
# so that runs recorded before they existed keep their fingerprints
OPTIONAL_RUNTIME_PACKAGES = ("openvino", "executorch", "ai-edge-litert", "litert-torch")
VARIANT_NAMES = ("fp32", "fp16", "int8")
ORT_OPT_NAMES = ("disable", "basic", "extended", "all")

SETTINGS: tuple[SettingDef, ...] = (
    # what is measured: part of the settings hash, forwarded by make fleet (DEVICE is the board's profile)
    SettingDef("DEVICE", "--device", parse_text, "auto", "auto",
               "device profile: cpu, rpi, jetson, gpu or auto (bench/device_profiles/*.toml)",
               field="device", measuring=True, tools=("bench", "export")),
    SettingDef("MODELS", "--models", text_list, None, "the lab suite", "comma-separated model ids",
               field="models", measuring=True, fleet=True, tools=SHARED),
    SettingDef("RUNTIMES", "--runtimes", choice_list(RUNTIME_NAMES), None,
               "the profile's: pytorch,onnxruntime (make eval: both)",
               "runtimes to measure (make export: whose artifacts to make); openvino, executorch and litert are "
               "installed by make setup-runtimes", field="runtimes", measuring=True, fleet=True, tools=("bench", "eval", "export"),
               choices=RUNTIME_NAMES),
    SettingDef("PROVIDERS", "--providers", text_list, None, "the profile's",
               "ONNX Runtime execution providers (must exist in the installed onnxruntime)",
               field="providers", measuring=True, fleet=True),
    SettingDef("BATCH_SIZES", "--batch-sizes", int_list, None, "the profile's (make flops: 1)", "batch sizes",
               field="batch_sizes", measuring=True, fleet=True, tools=("bench", "flops", "export")),
    SettingDef("DURATIONS", "--durations", float_list, None, "the profile's (make flops: 1,2,4,8,16)",
               "seconds of 16 kHz audio", field="durations", measuring=True, fleet=True,
               tools=("bench", "flops", "export")),
    SettingDef("REPS", "--reps", parse_count, 10, "10",
               "minimum timed repetitions per cell (REPS=0 is refused)", field="reps", measuring=True, fleet=True),
    SettingDef("THREADS", "--threads", int_list, None, "one per available core (profile)",
               "threads for both runtimes (a list sweeps; make eval takes one)", field="threads", measuring=True,
               fleet=True, tools=("bench", "eval")),
    SettingDef("VARIANTS", "--variants", choice_list(VARIANT_NAMES), ("fp32",), "fp32", "model variants",
               field="variants", measuring=True, fleet=True, choices=VARIANT_NAMES),
    SettingDef("ORT_OPT", "--ort-opt", choice_list(ORT_OPT_NAMES), ("all",), "all",
               "ONNX Runtime graph optimisation levels", field="ort_opts", measuring=True, fleet=True,
               choices=ORT_OPT_NAMES),
    SettingDef("ENERGY", "--energy", parse_text, "auto", "auto",
               "energy sensor: auto, none, a sensor name or csv:<file> (python -m energy lists them)",
               field="energy", measuring=True, fleet=True, tools=("bench", "eval")),
    SettingDef("WEIGHTS", "--weights", parse_text, "default", "default",
               "default (each model's own: random, ge2e's packaged trained weights) | random | pretrained | "
               "a checkpoint file or folder | model=path,...", field="weights", measuring=True, fleet=True,
               tools=("bench", "export", "eval")),
    _switch("GRID", "every batch size x duration instead of two lines through the grid", field="grid",
            measuring=True, fleet=True, tools=("bench", "export")),
    _switch("QUICK", "a smoke run of about a minute", field="quick", measuring=True, fleet=True,
            tools=("bench", "export")),
    _switch("TINY", "toy-size models (for tests and smoke checks)", field="tiny", measuring=True, fleet=True,
            tools=("bench", "export", "eval")),
    SettingDef("MIN_TIME", "--min-time", parse_positive, 1.0, "1 s", "minimum measured seconds per cell",
               field="min_time_s", measuring=True, fleet=True),
    SettingDef("MAX_TIME", "--max-time", parse_positive, 8.0, "8 s", "measurement cap per cell (seconds)",
               field="max_time_s", measuring=True, fleet=True),
    SettingDef("CI_TARGET", "--ci-target", parse_positive, 0.05, "0.05",
               "stop when the median's 95% CI is this narrow (a fraction of the median)",
               field="ci_target", measuring=True, fleet=True),
    SettingDef("SPEEDUP_CI", "--speedup-ci", parse_positive, 0.15, "0.15",
               "interleaved order: stop when the paired speed-up's 95% CI is this narrow (relative width; "
               "runners/stopping.py)", field="speedup_ci", measuring=True, fleet=True),
    SettingDef("SPEEDUP_BASE", "--speedup-base", choice_parser(BASE_NAMES), "pytorch",
               "pytorch (a run without PyTorch: the first of RUNTIMES)",
               "the runtime every speed-up is against: its rounds pair with each other runtime's, and every "
               "other runtime's record carries its speed-up over it (must be one of RUNTIMES)",
               field="speedup_base", measuring=True, fleet=True, choices=BASE_NAMES),
    SettingDef("EXPORTER", "--exporter", choice_parser(EXPORTERS), "torchscript", "torchscript",
               "the ONNX exporter", field="exporter", measuring=True, fleet=True,
               tools=("bench", "export", "eval"), choices=EXPORTERS),
    SettingDef("ORDER", "--order", choice_parser(ORDERS), "interleaved", "interleaved",
               "interleaved: the runtimes' rounds alternate per cell; grouped: phase by phase",
               field="order", measuring=True, fleet=True, choices=ORDERS),
    # how the run goes, not what it measures
    SettingDef("REMEASURE", "--remeasure", choice_parser(("drift",)), "", "off",
               "drift: resume the run and measure its drift-flagged comparisons again", field="remeasure",
               fleet=True, choices=("drift",)),
    SettingDef("CELL_TIMEOUT", "--cell-timeout", parse_positive, None, "the profile's (900 s)",
               "seconds before a cell's worker is stopped", field="cell_timeout_s", fleet=True),
    SettingDef("CPU_WATTS", "--cpu-watts", parse_positive, None, "unset",
               "the CPU's power in watts, for ENERGY=estimate", fleet=True, tools=("bench", "eval")),
    _switch("FRESH", "start a new run even where an interrupted one could be resumed (make export: export again)",
            fleet=True, tools=("bench", "export")),
    _switch("LONG_RNN", "make export RUNTIMES=executorch or litert: export RNNs above the runtime's input limit "
            "too (ExecuTorch 0.25 s, LiteRT 1 s; minutes and GBs each, stopped after 480 s)", tools=("export",)),
    _switch("NO_PEAK", "skip the GEMM peak measurement (utilisation stays null)", fleet=True),
    # where things are: this machine's folders (a board has its own)
    SettingDef("RESULTS_DIR", "--results", parse_text, "results", "results", "where runs are written",
               field="results_dir", tools=SHARED + ("fleet",), folder="results folder"),
    SettingDef("ONNX_DIR", "--onnx-dir", parse_text, None, "<RESULTS_DIR>/onnx", "where ONNX exports are",
               field="onnx_dir", tools=SHARED, folder="ONNX folder"),
    SettingDef("ARTIFACTS_DIR", "--artifacts-dir", parse_text, None, "<ONNX_DIR>/artifacts",
               "edge-runtime artifacts made for other machines, with their manifest: written by make export "
               "RUNTIMES=executorch or litert, used by make bench where they match, shipped to the boards by make fleet",
               field="artifacts_dir", tools=("bench", "export", "fleet"), folder="artifacts folder"),
    SettingDef("FLOPS_DIR", "--flops-dir", parse_text, None, "<RESULTS_DIR>/flops",
               "where make flops writes its report", tools=("flops",), folder="FLOPs folder"),
    # make fleet's own (the laptop's; never forwarded)
    SettingDef("HOSTS", "--hosts", parse_text, None, "unset", "boards: [user@]host:profile,...", tools=("fleet",)),
    SettingDef("FLEET", "--fleet", parse_text, None, "unset", "a fleet.toml naming the boards", tools=("fleet",)),
    _switch("STOP", "stop the boards' runs of this command instead of starting them", tools=("fleet",)),
    SettingDef("POLL", "--poll", parse_text, "5", "5", "seconds between polls of a board", tools=("fleet",)),
    SettingDef("LOCK_TIMEOUT", "--lock-timeout", parse_text, "600", "600",
               "seconds to wait for a board another user holds", tools=("fleet",)),
    SettingDef("RECONNECT_TIMEOUT", "--reconnect-timeout", parse_text, "900", "900",
               "seconds to keep retrying a dropped board", tools=("fleet",)),
    _switch("ALLOW_DIRTY", "ship the last commit although tracked files have uncommitted changes", tools=("fleet",)),
    SettingDef("SSH_CONFIG", "--ssh-config", parse_text, None, "~/.ssh/config", "another ssh_config file",
               tools=("fleet",)),
)


def setting(name: str) -> SettingDef:
    """The definition of ``name`` (a KeyError names a setting that is not defined)."""
    for d in SETTINGS:
        if d.name == name:
            return d
    raise KeyError(f"no setting {name!r} in setting_defs.SETTINGS")


def settings_for(tool: str) -> tuple[SettingDef, ...]:
    """The settings ``tool`` reads, in the table's order."""
    return tuple(d for d in SETTINGS if tool in d.tools)


def measuring_fields() -> tuple[str, ...]:
    """The bench Settings fields that change what is measured (the settings hash's inputs)."""
    return tuple(d.field for d in SETTINGS if d.measuring and d.field)


def fleet_names() -> tuple[str, ...]:
    """The variables make fleet forwards to the boards' runs."""
    return tuple(d.name for d in SETTINGS if d.fleet)
