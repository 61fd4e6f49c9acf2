"""A registered (or user) model built with the weights asked for: the one place that does it.

``export_model(weights=...)``, the benchmark worker and ``make eval`` all build through
:func:`build_weighted`; ``python -m models.build MODEL SOURCE`` loads and prints the weights label.
"""

from __future__ import annotations

import argparse
import sys

from torch import nn

from models.registry import get_spec
from models.weights import NO_WEIGHTS_LABEL, WeightsError, has_no_weights, load_weights


def build_weighted(name: str, tiny: bool, weights: str | None) -> tuple[nn.Module, str]:
    """The registry's model with ``weights`` loaded (``random``: the seeded random weights; the
    label is ``none`` for a model without parameters, whatever was asked)."""
    model = get_spec(name).build(tiny)
    if not weights or weights == "random":
        return model, NO_WEIGHTS_LABEL if has_no_weights(model) else "random"
    return model.eval(), load_weights(name, model, weights, tiny)


def main(argv: list[str] | None = None) -> int:
    """``python -m models.build MODEL SOURCE``: load and print the label (exit 2 on failure)."""

    parser = argparse.ArgumentParser(prog="python -m models.build", description=main.__doc__)
    parser.add_argument("model")
    parser.add_argument("source", help="default | random | pretrained | /path/to/checkpoint | model=path,...")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args(argv)
    try:
        _, label = build_weighted(args.model, args.tiny, args.source)
    except (WeightsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
