#!/usr/bin/env bash
# Regenerate the worked comparison in docs/examples/compare/ from the two runs kept in
# docs/examples/compare/results/ (run from the repository root).  To measure afresh instead:
#   python -m runners --device cpu --models logmel,apc,wav2vec2-base --batch-sizes 1 \
#       --durations 1,2 --threads 1 --energy none --min-time 1 --max-time 4   # then --threads 2
# and copy the two run folders' run.json and cells.jsonl into results/cpu/<run_id>/ here.
set -euo pipefail
E=docs/examples/compare
PY=${PY:-.venv/bin/python}
runs=($(ls -d $E/results/cpu/*/ | sort))
rm -rf "$E/threads" "$E/runtime"
# this machine with itself at 1 and 2 threads, as two "devices"
$PY -m compare --results "cpu-1t=${runs[0]%/},cpu-2t=${runs[1]%/}" --by device --out "$E/threads"
# PyTorch vs ONNX Runtime inside each run
$PY -m compare --results "$E/results" --by runtime --out "$E/runtime" --quiet
if [ -x /usr/bin/chromium ]; then
  for d in threads runtime; do
    /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync \
      --user-data-dir="$(mktemp -d)" --hide-scrollbars --window-size=1500,1500 \
      --virtual-time-budget=5000 --screenshot="$E/$d/screenshot.png" \
      "file://$PWD/$E/$d/compare.html" 2>/dev/null
  done
fi
