"""Python 3.10 is the oldest supported version (a Jetson on JetPack 6 has it): nothing in the
code may need a newer one, and pyproject.toml says the same as the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.profiles import load_profile

REPO = Path(__file__).resolve().parents[1]
OLDEST = (3, 10)
PROJECT_DIRS = ("runners", "bench", "worker", "export", "energy", "compare", "evaluation", "benchmarks", "scripts", "tests",
                "host", "runstore", "report", "models", "flops")


def project_python_files() -> list[str]:
    files = [str(p.relative_to(REPO)) for d in PROJECT_DIRS for p in sorted((REPO / d).rglob("*.py"))]
    assert len(files) > 50, files  # the walk found the code, not an empty tree
    return files


def test_no_code_needs_a_python_newer_than_the_oldest_supported():
    pytest.importorskip("vermin", reason="vermin is in requirements-dev.txt: make test installs it")
    target = f"{OLDEST[0]}.{OLDEST[1]}-"
    proc = subprocess.run([sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", f"--target={target}", "--violations", "--no-tips",
                           "--eval-annotations", *project_python_files()],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and "Target versions not met" not in proc.stdout, proc.stdout + proc.stderr


def test_requires_python_states_the_oldest_supported_version():
    text = (REPO / "pyproject.toml").read_text()
    found = re.search(r'^requires-python\s*=\s*">=(\d+)\.(\d+)"', text, re.M)
    assert found and (int(found.group(1)), int(found.group(2))) == OLDEST, found
    assert "3.10" in (REPO / "README.md").read_text() and "3.13" in (REPO / "README.md").read_text()


def test_profiles_parse_with_this_pythons_toml_reader():
    """tomllib on 3.11+, tomli on 3.10: the same profile either way (CI runs this on both)."""
    profile = load_profile("rpi")
    assert profile.threads == 4 and profile.batch_sizes == (1, 2, 4)
