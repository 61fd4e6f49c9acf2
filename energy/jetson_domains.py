"""Jetson power domains from rail names: shared by the INA3221 reader (:mod:`energy.jetson`) and
the ``tegrastats`` fallback (:mod:`energy.tegrastats`), which therefore do not import each other."""

from __future__ import annotations

from .sensor import Domain

INPUT_RAILS = ("VDD_IN", "POM_5V_IN")


def domains_for(rails: list[str]) -> list[Domain]:
    """Module input rail first when there is one, else the stated sum of rails; then each rail."""
    inputs = [r for r in rails if r in INPUT_RAILS]
    if inputs:
        top = Domain("module-input", f"Jetson module input rail {inputs[0]} (module only, not the carrier board)")
        others = [r for r in rails if r != inputs[0]]
    else:
        top = Domain(
            "module-rails-sum",
            f"sum of the module rails {'+'.join(rails)} (this module has no input rail; module only, not the carrier board)",
        )
        others = list(rails)
    return [top] + [Domain(f"rail:{r}", f"Jetson rail {r}", within=top.name) for r in others]


def combine(rail_watts: dict[str, float]) -> dict[str, float]:
    """Per-domain watts from per-rail watts (input rail, or the sum when there is none)."""
    names = list(rail_watts)
    doms = domains_for(names)
    out: dict[str, float] = {}
    top = doms[0]
    if top.name == "module-input":
        out[top.name] = next(rail_watts[r] for r in names if r in INPUT_RAILS)
    else:
        out[top.name] = sum(rail_watts.values())
    for dom in doms[1:]:
        out[dom.name] = rail_watts[dom.name.split(":", 1)[1]]
    return out
