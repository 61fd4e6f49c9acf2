#!/usr/bin/env bash
# Wall time of `make bench` (defaults, export included) and of `make bench QUICK=1`, from an
# empty results folder, on this machine.  Writes docs/benchmarks/suite-time.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmarks/suite-time.md
tmp=$(mktemp -d)
mkdir -p docs/benchmarks
t0=$(date +%s); make bench QUICK=1 DEVICE=cpu RESULTS_DIR="$tmp/quick" > "$tmp/quick.log" 2>&1; t1=$(date +%s)
t2=$(date +%s); make bench DEVICE=cpu RESULTS_DIR="$tmp/full" > "$tmp/full.log" 2>&1; t3=$(date +%s)
{
  echo "# Suite wall time ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB."
  echo
  echo "| command | wall time (s) | includes |"
  echo "|---|---|---|"
  echo "| make bench QUICK=1 DEVICE=cpu | $((t1 - t0)) | set-up check, ONNX export of the lab suite, 12 cells |"
  echo "| make bench DEVICE=cpu | $((t3 - t2)) | set-up check, ONNX export of the lab suite, 96 cells |"
} > "$out"
cat "$out"
echo "logs: $tmp"
