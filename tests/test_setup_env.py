"""Set-up keeps a board's own torch and onnxruntime (a Jetson's NVIDIA builds): the "system"
Python here is a real interpreter prefix whose site-packages already holds torch and
onnxruntime (this test environment's, through a .pth file); set-up runs on top of it, offline,
and must neither install nor shadow them."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "scripts" / "setup_env.sh"


def make_system_python(prefix: Path, *, packages: bool = True, leave_out: tuple[str, ...] = ()) -> Path:
    """A Python installation at ``prefix`` (its own executable, the base interpreter's standard
    library linked in, less ``leave_out``) whose site-packages sees this environment's packages,
    torch included (unless ``packages`` is false)."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    base_lib = Path(sys.base_prefix) / "lib" / version
    lib = prefix / "lib" / version
    lib.mkdir(parents=True)
    for entry in base_lib.iterdir():
        if entry.name not in ("site-packages", "dist-packages", *leave_out):
            (lib / entry.name).symlink_to(entry)
    (lib / "site-packages").mkdir()
    if packages:
        (lib / "site-packages" / "board_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (prefix / "bin").mkdir()
    exe = prefix / "bin" / version
    exe.write_bytes(Path(sys._base_executable).read_bytes())  # a copy: its location decides the prefix
    exe.chmod(0o755)
    return exe


def site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def test_set_up_on_a_python_that_has_torch_keeps_its_torch_and_onnxruntime(tmp_path):
    torch = pytest.importorskip("torch")
    onnxruntime = pytest.importorskip("onnxruntime")
    system_python = make_system_python(tmp_path / "system")
    probe = subprocess.run([str(system_python), "-c", "import sys, torch; print(sys.prefix); print(torch.__file__)"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert probe == [str(tmp_path / "system"), torch.__file__]  # a system Python of its own, with torch

    venv = tmp_path / "venv"
    env = {**os.environ, "PYTHON": str(system_python), "VENV": str(venv), "PIP_NO_INDEX": "1"}
    proc = subprocess.run(["bash", str(SETUP)], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"the system Python has torch {torch.__version__}; creating" in out
    assert f"keeping the installed torch {torch.__version__}" in out
    assert f"keeping the installed onnxruntime {onnxruntime.__version__}" in out
    assert "installing torch" not in out

    # nothing of the kind landed in the new environment itself, and it imports the board's builds
    own = {p.name.lower() for p in site_packages(venv).iterdir()}
    assert not {n for n in own if n.startswith(("torch", "onnxruntime", "nvidia"))}, sorted(own)
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import torch, onnxruntime; print(torch.__file__); print(onnxruntime.__file__)"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert where == [torch.__file__, onnxruntime.__file__]


def test_set_up_refuses_an_interpreter_that_is_not_python_3_10_or_newer(tmp_path):
    venv = tmp_path / "venv"
    proc = subprocess.run(["bash", str(SETUP)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": "/bin/false", "VENV": str(venv)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "setup: wavebench needs Python 3.10 to 3.13; /bin/false is not a working Python "
        "(JetPack 5 has 3.8: see README, Boards)"]
    assert not venv.exists()


def older_python() -> str | None:
    """A real interpreter older than 3.10 on this machine (pyenv keeps some), or None."""
    for name in ("python3.9", "python3.8"):
        for candidate in [shutil.which(name), *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.*/bin/{name}")))]:
            if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
                return candidate
    return None


def test_set_up_names_the_version_of_a_too_old_python(tmp_path):
    python = older_python()
    if python is None:
        pytest.skip("no Python older than 3.10 on this machine")
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.run(["bash", str(SETUP)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": python, "VENV": str(tmp_path / "venv")})
    assert proc.returncode == 2
    assert f"{python} is {version} (JetPack 5 has 3.8" in proc.stderr
    assert not (tmp_path / "venv").exists()


def test_set_up_says_how_to_install_venv_where_the_python_has_no_ensurepip(tmp_path):
    """Debian, Ubuntu and Pi OS ship ensurepip in pythonX.Y-venv: without it python -m venv fails
    half-way.  Set-up names the package in one line and exits 2 before trying."""
    python = make_system_python(tmp_path / "system", packages=False, leave_out=("ensurepip",))
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    # the interpreter is what such a system has: python -m venv itself fails on it, and leaves a
    # venv without pip behind
    half = tmp_path / "half-made"
    assert subprocess.run([str(python), "-m", "venv", str(half)], capture_output=True).returncode != 0
    assert (half / "bin" / "python").exists()
    assert subprocess.run([str(half / "bin" / "python"), "-c", "import pip"], capture_output=True).returncode != 0

    venv = tmp_path / "venv"
    proc = subprocess.run(["bash", str(SETUP)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": str(python), "VENV": str(venv), "PIP_NO_INDEX": "1"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"setup: {python} -m venv is missing (Debian/Ubuntu/Pi OS: sudo apt install python{version}-venv)"]
    assert not venv.exists()

    # run again after installing the package, on the venv the failed python -m venv left: set-up
    # says to remove it instead of failing on pip
    proc = subprocess.run(["bash", str(SETUP)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, "VENV": str(half), "PIP_NO_INDEX": "1"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"setup: {half} has no pip (a python -m venv that failed half-way?): remove it (rm -r {half}) and run again"]
