#!/usr/bin/env bash
# A short CUDA check of both runtimes: run it on a machine with an NVIDIA GPU and record what it
# prints (docs/gpu.md).  It checks: PyTorch on CUDA (synchronised timing, CUDA peak memory),
# ONNX Runtime's CUDA provider with I/O binding, the TensorRT provider when the installed
# onnxruntime has it, fp16, NVML energy when nvidia-ml-py is installed, and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-results}
nvidia-smi --query-gpu=name,driver_version,power.limit,memory.total --format=csv || true
"$PY" - <<'PYEOF'
import torch, onnxruntime as ort
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("onnxruntime", ort.__version__, ort.get_available_providers())
PYEOF
"$PY" -m energy || true
"$PY" -m runners --device gpu --models "${MODELS:-logmel,tera,wav2vec2-base}" --batch-sizes 1,4 --durations 1,4 \
  --variants fp32,fp16 --reps 10 --energy "${ENERGY:-auto}" --results "$OUT" --fresh --no-progress
