#!/usr/bin/env bash
# Create the project's virtual environment (.venv) and install what wavebench needs.
#
# torch is installed only when the environment has none (default torch==2.13.0, CPU wheel);
# when the system Python already has torch (a Jetson's NVIDIA build, a Pi's own wheel), the
# venv is created with --system-site-packages so that build is used and kept.  The same holds
# for onnxruntime (e.g. onnxruntime-gpu on a Jetson).  s3prl is installed with --no-deps.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
S3PRL_VERSION=${S3PRL_VERSION:-0.4.18}

if [ ! -x "$VENV/bin/python" ]; then
  if "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    echo "setup: the system Python has torch $("$PYTHON" -c 'import torch; print(torch.__version__)'); creating $VENV with --system-site-packages to keep it"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip
if "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "setup: keeping the installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
  echo "setup: installing torch==$TORCH_VERSION"
  "$PY" -m pip install --quiet "torch==$TORCH_VERSION"
fi
if "$PY" -c "import onnxruntime" >/dev/null 2>&1; then
  echo "setup: keeping the installed onnxruntime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)')"
else
  "$PY" -m pip install --quiet onnxruntime
fi
"$PY" -m pip install --quiet -r requirements.txt
"$PY" -m pip install --quiet --no-deps "s3prl==$S3PRL_VERSION"
"$PY" -c "import torch, onnxruntime, onnx, s3prl.upstream.mockingjay.model, transformers; print('setup: ok (torch', torch.__version__, '| onnxruntime', onnxruntime.__version__, ')')"
