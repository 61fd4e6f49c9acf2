"""How close a runtime's outputs must be to PyTorch's: one definition for every check.

The ONNX export, each edge runtime's artifact check and the GRU kernel probe
(``benchmarks/gru_kernels.py``) all judge an output by the same two numbers: the largest absolute
error over every output, and the cosine similarity of the last one.  NumPy only, so that a board
with nothing but a runtime and NumPy can apply the same rule.
"""

from __future__ import annotations

import numpy as np

MIN_COSINE = 0.9999
MAX_REL_ERR = 1e-3  # max abs error relative to max(1, max |reference|)


class OutputMismatch(RuntimeError):
    """Two output lists cannot be compared (another count or shape); the message says which."""


def compare_outputs(reference: list[np.ndarray], candidate: list[np.ndarray]) -> tuple[float, float]:
    """(max abs error over all outputs, cosine similarity of the last output)."""
    if len(reference) != len(candidate):
        raise OutputMismatch(f"output count differs: {len(reference)} vs {len(candidate)}")
    err = 0.0
    for r, c in zip(reference, candidate):
        if r.shape != c.shape:
            raise OutputMismatch(f"output shape differs: {r.shape} vs {c.shape}")
        err = max(err, float(np.max(np.abs(r.astype(np.float64) - c.astype(np.float64)))) if r.size else 0.0)
    a = reference[-1].astype(np.float64).ravel()
    b = candidate[-1].astype(np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    cosine = float(a @ b / denom) if denom > 0 else float(np.array_equal(a, b))
    return err, cosine


def error_allowed(reference: list[np.ndarray]) -> float:
    """The largest absolute error accepted against ``reference``: relative to its scale, at least 1."""
    return MAX_REL_ERR * max(1.0, max((float(np.max(np.abs(r))) for r in reference if r.size), default=0.0))


def agrees(reference: list[np.ndarray], err: float, cosine: float) -> bool:
    """Whether (err, cosine) of a candidate against ``reference`` passes the check."""
    return cosine >= MIN_COSINE and err <= error_allowed(reference)
