"""Finding sensors and opening a meter: ``open_meter(spec, preferred)``.

``spec`` is what the user wrote in ``ENERGY=``:

* ``auto``: probe every family (the device profile's ``preferred`` ones first) and use every
  sensor found, each reported in its own domain; the first one found is the primary;
* ``none``: switch energy off (fields ``null``, reason "switched off");
* a family (``rapl``, ``nvml``, ``jetson``, ``tegrastats``, ``rpi``, ``hwmon``, ``estimate``) or
  ``csv:<path>``; several separated by commas.

A missing sensor never raises: the meter comes back with ``available = False`` and a reason
that says how to fix it.  A misspelt spec raises :class:`EnergyConfigError`.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

from host.commands import CommandRunner, SubprocessRunner
from host.sysfs import SysRoot

from . import csvmeter, estimate, hwmon, jetson, nvml, rapl, rpi, tegrastats
from .clock import Clock, SystemClock
from .errors import EnergyConfigError
from .meter import EnergyMeter
from .sensor import Context, Probe

#: families ``auto`` tries, in its default order (accelerators first: they are what a GPU/Jetson run is about)
AUTO_FAMILIES = ("nvml", "jetson", "rpi", "rapl", "hwmon")
#: every name a spec may use
FAMILIES = AUTO_FAMILIES + ("tegrastats", "estimate")
SPEC_HELP = "auto, none, " + ", ".join(FAMILIES) + ", csv:<path> (or several, comma-separated)"

NOTHING_FOUND_FIX = (
    "Fix: `python -m energy` says how to enable each sensor; or log an external meter (ENERGY=csv:<file>), "
    "or ask for a labelled estimate (ENERGY=estimate CPU_WATTS=<W>)"
)


def _probe_family(name: str, ctx: Context, forced: bool) -> Probe:
    if name.startswith("csv:"):
        return csvmeter.probe(ctx, name[4:])
    probes: dict[str, Callable[[], Probe]] = {
        "rapl": lambda: rapl.probe(ctx),
        "nvml": lambda: nvml.probe(ctx),
        "jetson": lambda: jetson.probe(ctx),
        "tegrastats": lambda: tegrastats.probe(ctx),
        "rpi": lambda: rpi.probe(ctx, forced=forced),
        "hwmon": lambda: hwmon.probe(ctx, forced=forced),
        "estimate": lambda: estimate.probe(ctx),
    }
    return probes[name]()


def parse_spec(spec: str | None) -> list[str]:
    """The families a spec names (``["auto"]``, ``["none"]``, ``["rapl", "csv:/x.csv"]``)."""
    text = (spec or "auto").strip()
    items = [part.strip() for part in text.split(",") if part.strip()] or ["auto"]
    out = []
    for item in items:
        if item.lower().startswith("csv:"):
            out.append("csv:" + item[4:])
            continue
        low = item.lower()
        if low not in FAMILIES + ("auto", "none"):
            raise EnergyConfigError(f"unknown energy sensor {item!r} (ENERGY={text}); valid: {SPEC_HELP}")
        out.append(low)
    if len(out) > 1 and ({"auto", "none"} & set(out)):
        raise EnergyConfigError(f"ENERGY={text}: 'auto' and 'none' cannot be combined with other sensors; valid: {SPEC_HELP}")
    return out


def make_context(
    root: "str | os.PathLike | SysRoot | None" = None,
    env: Mapping[str, str] | None = None,
    runner: CommandRunner | None = None,
    clock: Clock | None = None,
    nvml_module: Any = None,
    cpu_time: Callable[[], float] | None = None,
) -> Context:
    env = dict(os.environ if env is None else env)
    return Context(
        root=SysRoot.resolve(root, env), env=env, runner=runner or SubprocessRunner(),
        clock=clock or SystemClock(), nvml=nvml_module, cpu_time=cpu_time,
    )


def probe_all(ctx: Context, order: list[str] | None = None) -> list[Probe]:
    """Probe each auto family (in ``order``), for listings; the caller closes the sensors."""
    return [_probe_family(name, ctx, forced=False) for name in (order or list(AUTO_FAMILIES))]


def open_meter(
    spec: str = "auto",
    preferred: list[str] | None = None,
    *,
    root: "str | SysRoot | None" = None,
    env: dict | None = None,
    runner: CommandRunner | None = None,
    clock: Clock | None = None,
    nvml_module: Any = None,
    cpu_time: Callable[[], float] | None = None,
) -> EnergyMeter:
    """Open the sensors ``spec`` asks for.  Never raises for "no sensor"; raises
    :class:`EnergyConfigError` for a spec or ``preferred`` entry it does not know."""
    names = parse_spec(spec)
    for name in preferred or []:
        if name.lower() not in FAMILIES:
            raise EnergyConfigError(f"unknown energy sensor {name!r} in the device profile's preferred list; valid: {', '.join(FAMILIES)}")
    ctx = make_context(root, env, runner, clock, nvml_module, cpu_time)
    if names == ["none"]:
        return EnergyMeter(clock=ctx.clock, unavailable_reason="energy measurement switched off (ENERGY=none)")
    if names == ["auto"]:
        order = [p.lower() for p in preferred or []]
        order += [f for f in AUTO_FAMILIES if f not in order]
        probes = [_probe_family(name, ctx, forced=False) for name in order]
    else:
        probes = [_probe_family(name, ctx, forced=True) for name in names]
    sensors = [p.sensor for p in probes if p.sensor is not None]
    if sensors:
        return EnergyMeter(sensors=sensors, clock=ctx.clock, probes=probes)  # type: ignore[arg-type]
    if names == ["auto"]:
        reason = "no energy sensor found (" + "; ".join(f"{p.family}: {p.reason}" for p in probes) + "). " + NOTHING_FOUND_FIX
    else:
        reason = "; ".join(p.explain() for p in probes)
    return EnergyMeter(clock=ctx.clock, unavailable_reason=reason, probes=probes)


def open_meter_or_reason(spec: str = "auto", preferred: list[str] | None = None) -> tuple[EnergyMeter | None, str | None]:
    """(meter, None) when a sensor can measure; (None or an unavailable meter, the reason) when not.

    A sensor that fails to open must never cost a run its latency figures: the failure becomes the
    reason stored beside the ``null`` energy fields.  The benchmark worker and ``make eval`` both
    open their meter here."""
    try:
        meter = open_meter(spec, preferred)
    except Exception as exc:
        return None, f"energy sensor failed to open: {type(exc).__name__}: {exc}"
    return meter, (None if meter.available else meter.reason)
