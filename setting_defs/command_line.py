"""The settings on a command line: flags derived from the definitions, defaults from the environment.

Every command that reads settings (``python -m runners``, ``python -m export``, ``python -m flops``,
``python -m evaluation``, ``python -m fleet``) adds them with :func:`add_flags`, so a flag, its
variable and its help are the same everywhere; the environment (make's exported variables) gives
each flag's default, an empty variable counting as unset, as in make.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Mapping

from setting_defs.kinds import check_writable, is_unset
from setting_defs.table import SettingDef, setting, settings_for


def from_environment(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's text, None when unset or empty."""
    value = (os.environ if environ is None else environ).get(name)
    return None if is_unset(value) else value


def add_flags(parser: argparse.ArgumentParser, tool: str, *, aliases: Mapping[str, tuple[str, ...]] | None = None,
              environ: Mapping[str, str] | None = None) -> None:
    """One flag per setting ``tool`` reads; each holds the text as typed (parsed by :func:`values`).
    ``aliases``: older spellings of a flag kept by a command (``python -m export --out``)."""
    for d in settings_for(tool):
        if d.flag is None:
            continue
        names = [d.flag, *(aliases or {}).get(d.name, ())]
        kwargs: dict[str, Any] = {"dest": d.dest, "default": from_environment(d.name, environ), "help": d.help_line()}
        if d.is_switch:
            kwargs.update(action="store_const", const="1")
        else:
            kwargs["metavar"] = d.name
        parser.add_argument(*names, **kwargs)


def texts(args: argparse.Namespace, tool: str) -> dict[str, Any]:
    """The settings of ``tool`` as typed (None: unset), by variable name."""
    return {d.name: getattr(args, d.dest, None) for d in settings_for(tool) if d.flag is not None}


def values(args: argparse.Namespace, tool: str) -> dict[str, Any]:
    """The settings of ``tool`` parsed and checked (SettingError: one line), defaults applied;
    ``ONNX_DIR`` and ``FLOPS_DIR`` default to folders of ``RESULTS_DIR``, as for make bench, and
    ``ARTIFACTS_DIR`` to ``<ONNX_DIR>/artifacts``."""
    out = {name: setting(name).value(text) for name, text in texts(args, tool).items()}
    results = out.get("RESULTS_DIR") or setting("RESULTS_DIR").default
    for name, sub in (("ONNX_DIR", "onnx"), ("FLOPS_DIR", "flops")):
        if name in out and out[name] is None:
            out[name] = str(Path(results) / sub)
    if "ARTIFACTS_DIR" in out and out["ARTIFACTS_DIR"] is None:
        out["ARTIFACTS_DIR"] = str(Path(out.get("ONNX_DIR") or Path(results) / "onnx") / "artifacts")
    return out


def check_folders(found: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """The folders named by these settings must be writable; checked before anything runs."""
    for name in names:
        d: SettingDef = setting(name)
        if found.get(name) is not None:
            check_writable(found[name], name, d.flag, d.folder or "folder")
