import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def tiny_onnx_dir(tmp_path_factory):
    """Tiny ONNX exports of the lab suite, shared by tests that need files."""
    from export.onnx_export import export_model
    from models.registry import LAB_SUITE

    out = tmp_path_factory.mktemp("onnx")
    for name in LAB_SUITE:
        export_model(name, out, tiny=True)
    return out
