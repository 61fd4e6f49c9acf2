#!/usr/bin/env bash
# Create the project's virtual environment (.venv) and install what `make bench` needs
# (requirements.txt); the make targets that need more install their set on top (requirements-*.txt).
#
# torch is installed only when the environment has none (default torch==2.13.0, CPU wheel);
# when the system Python already has torch (a Jetson's NVIDIA build, a Pi's own wheel), the
# venv is created with --system-site-packages so that build is used and kept.  The same holds
# for onnxruntime (e.g. onnxruntime-gpu on a Jetson).  s3prl is installed with --no-deps.
# Where torch is installed, scripts/torch_plan.py chooses the build: on Linux without an NVIDIA
# GPU (a Raspberry Pi), PyTorch's CPU-only build from PyTorch's CPU index, not PyPI's CUDA build.
#
# Settings: PYTHON (interpreter, 3.10-3.13), VENV, TORCH_VERSION, TORCH_INDEX_URL, S3PRL_VERSION.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
S3PRL_VERSION=${S3PRL_VERSION:-0.4.18}
HERE=$(cd "$(dirname "$0")" && pwd)

# Python 3.10-3.13 (requires-python in pyproject.toml).  An older one (JetPack 5 has 3.8) stops here.
if ! PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2]); sys.exit(sys.version_info < (3, 10))' 2>/dev/null); then
  echo "setup: wavebench needs Python 3.10 to 3.13; ${PYTHON} is ${PYVER:-not a working Python} (JetPack 5 has 3.8: see README, Boards)" >&2
  exit 2
fi
case "$PYVER" in
  3.10|3.11|3.12|3.13) ;;
  *) echo "setup: warning: Python $PYVER is newer than the versions wavebench is tested on (3.10-3.13)" >&2 ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  # Debian, Ubuntu and Raspberry Pi OS ship venv's ensurepip in a separate package: without it
  # python -m venv fails half-way and leaves an environment without pip.  Say so before starting.
  if ! "$PYTHON" -c "import venv, ensurepip" >/dev/null 2>&1; then
    echo "setup: ${PYTHON} -m venv is missing (Debian/Ubuntu/Pi OS: sudo apt install python${PYVER}-venv)" >&2
    exit 2
  fi
  if "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    echo "setup: the system Python has torch $("$PYTHON" -c 'import torch; print(torch.__version__)'); creating $VENV with --system-site-packages to keep it"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import pip" >/dev/null 2>&1; then  # e.g. left by a python -m venv that failed half-way
  echo "setup: $VENV has no pip (a python -m venv that failed half-way?): remove it (rm -r $VENV) and run again" >&2
  exit 2
fi
"$PY" -m pip install --quiet --upgrade pip
if "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "setup: keeping the installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
  TORCH_ARGS=$("$PY" "$HERE/torch_plan.py" plan --version "$TORCH_VERSION")
  mapfile -t TORCH_ARGS <<<"$TORCH_ARGS"
  "$PY" -m pip install --quiet "${TORCH_ARGS[@]}"
  "$PY" "$HERE/torch_plan.py" describe
fi
if "$PY" -c "import onnxruntime" >/dev/null 2>&1; then
  echo "setup: keeping the installed onnxruntime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)')"
else
  "$PY" -m pip install --quiet onnxruntime
fi
"$PY" -m pip install --quiet -r requirements.txt
"$PY" -m pip install --quiet --no-deps "s3prl==$S3PRL_VERSION"
# pretrained weights inside wheels (ge2e, Silero VAD); --no-deps: only their files are used
"$PY" -m pip install --quiet --no-deps "resemblyzer==0.1.4" "silero-vad>=5.1"
"$PY" -c "import torch, onnxruntime, onnx, s3prl.upstream.mockingjay.model, transformers; print('setup: ok (torch', torch.__version__, '| onnxruntime', onnxruntime.__version__, ')')"
