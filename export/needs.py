"""What an exporter needs beyond ``make bench``'s packages, said before any model is built.

The dynamo exporter (``EXPORTER=dynamo``) builds its graphs with onnxscript, which is not in
requirements.txt (most boards never use it: requirements-dynamo.txt).  ``make bench`` and
``make export`` install it when ``EXPORTER=dynamo``; anything else that asks for the dynamo
exporter (``python -m export``, a profile) gets this one line instead of each model's export
failing on an import deep inside torch.  Kept apart from onnx_export.py, whose source is part of
the exported files' fingerprint.
"""

from __future__ import annotations

import importlib.util

# exporter -> (the package it imports, the requirement file that installs it)
NEEDS = {"dynamo": ("onnxscript", "requirements-dynamo.txt")}


def missing_for(exporter: str) -> str | None:
    """The one-line fix when ``exporter``'s package is not installed, else None."""
    if exporter not in NEEDS:
        return None
    package, requirements = NEEDS[exporter]
    if importlib.util.find_spec(package) is not None:
        return None
    return (f"EXPORTER={exporter} needs {package}, which is not installed: make bench or make export "
            f"with EXPORTER={exporter} installs it, or pip install -r {requirements}")
