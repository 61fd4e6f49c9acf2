"""Jetson power domains from rail names: shared by the sysfs reader (:mod:`energy.jetson`) and the
``tegrastats`` fallback (:mod:`energy.tegrastats`), which therefore do not import each other.

Domains (:func:`plan`):

* ``board-input``: ``VIN`` where the board measures it (Thor).  It includes the carrier board
  (fan, USB, NVMe, network), so it is *more* than the module.
* ``module-input``: the module input rail where the module has one (``VDD_IN`` on Xavier NX,
  Orin NX/Nano; ``POM_5V_IN`` on the Nano), within ``board-input`` when there is one;
* ``module-rails-sum``: else the sum of the module rails (AGX Orin, AGX Thor), and the name says
  so; ``VIN`` is never part of this sum (adding the board input to the rails it contains made the
  Thor total 40-70% too high);
* ``rail:<NAME>``: each other module rail, within the module domain;
* ``carrier:<NAME>``: another carrier-board INA238 (labelled other than ``VIN``, or one of several
  unlabelled ones, then named ``INA238@<bus-address>``), never part of the module sum.

Negative readings (an idle Thor reports e.g. ``VDD_GPU -392mW``: a sensor offset) are kept as
read, signed, in the rail's domain and in any sum: the offset is in every reading of that rail,
positive ones too, so clamping only the negative ones at 0 would bias the sum upwards; a steady
offset cancels in ``energy_j`` because the idle baseline carries it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .sensor import Domain

INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
BOARD_INPUT_RAILS = ("VIN",)


@dataclass(frozen=True)
class Part:
    """One domain and the rails whose watts make it (one rail, or the stated sum)."""

    domain: Domain
    rails: tuple[str, ...]


def plan(rails: list[str], carrier: Iterable[str] = ()) -> list[Part]:
    """Board input first where measured, then the module (input rail or stated sum), then each rail.

    ``carrier`` names other carrier-board monitors (an INA238 labelled other than ``VIN``): each is
    its own ``carrier:<NAME>`` domain, never part of the module sum."""
    board = next((r for r in rails if r in BOARD_INPUT_RAILS), None)
    carrier = [r for r in rails if r in set(carrier) and r != board]
    module = [r for r in rails if r != board and r not in carrier]
    parts: list[Part] = []
    if board is not None:
        parts.append(Part(Domain(
            "board-input",
            f"Jetson board input {board}, measured on the carrier board: the module plus the carrier "
            "(fan, USB, NVMe, network); not the power adapter",
        ), (board,)))
    parent = parts[0].domain.name if parts else None
    carrier_parts = [
        Part(Domain(f"carrier:{r}", f"Jetson carrier-board monitor {r} (INA238), apart from the module rails", within=parent), (r,))
        for r in carrier
    ]
    if not module:
        return parts + carrier_parts
    inputs = [r for r in module if r in INPUT_RAILS]
    if inputs:
        top = Part(Domain(
            "module-input", f"Jetson module input rail {inputs[0]} (module only, not the carrier board)", within=parent,
        ), (inputs[0],))
        others = [r for r in module if r != inputs[0]]
    else:
        top = Part(Domain(
            "module-rails-sum",
            f"sum of the module rails {'+'.join(module)} (this module has no input rail; module only, "
            "not the carrier board; negative readings kept as read)",
            within=parent,
        ), tuple(module))
        others = list(module)
    parts.append(top)
    parts += [Part(Domain(f"rail:{r}", f"Jetson rail {r}", within=top.domain.name), (r,)) for r in others]
    return parts + carrier_parts


def domains_for(rails: list[str]) -> list[Domain]:
    """The domains of :func:`plan`, in order (the first is the primary)."""
    return [part.domain for part in plan(rails)]


def combine(rail_watts: dict[str, float], parts: list[Part] | None = None) -> dict[str, float]:
    """Per-domain watts from per-rail watts: a rail as read, a sum over signed readings."""
    parts = plan(list(rail_watts)) if parts is None else parts
    return {part.domain.name: sum(rail_watts[r] for r in part.rails) for part in parts}
