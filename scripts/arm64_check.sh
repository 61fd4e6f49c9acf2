#!/usr/bin/env bash
# wavebench on a Raspberry Pi's userland, emulated: a Debian 12 (bookworm) arm64 root run under
# qemu-user-static.  Builds the root once (mmdebstrap, cached outside the repository), copies the
# project in, and inside it runs the README's set-up, a tiny benchmark, the optional runtimes (one
# cell of each, with ExecuTorch and LiteRT artifacts made on this host as a board would get them),
# the GRU kernel probe under two emulated CPUs, and the fast tests; then prints a summary (each
# step's result and time).  Slow (emulation): a script you run, not CI.
#
#   sudo scripts/arm64_check.sh                 # everything
#   ARM64_STEPS=setup,bench scripts/arm64_check.sh
#
# Settings (environment):
#   ARM64_ROOT    the cached root (default ${XDG_CACHE_HOME:-~/.cache}/wavebench/arm64-root)
#   ARM64_SUITE   Debian suite (default bookworm: Raspberry Pi OS 12's base, Python 3.11)
#   ARM64_STEPS   some of setup,bench,runtimes,edge,gru,tests,run (default: all but run, in that order)
#                 runtimes: make setup-runtimes RUNTIMES=all inside the root
#                 edge:     make export RUNTIMES=executorch,litert on this host (the converters), then
#                           inside: make bench RUNTIMES=all with those artifacts (ARTIFACTS_DIR)
#                 gru:      benchmarks/gru_kernels.py: weights and artifacts made here, checked inside
#                           against NumPy under each CPU of ARM64_QEMU_CPUS
#                 run:      the command in ARM64_RUN, inside (a look at one thing: a shell line)
#   ARM64_FRESH   1: delete the root's virtual environment first, so set-up starts from nothing
#   ARM64_MODELS  models of the tiny benchmark (default logmel,apc,tera)
#   ARM64_EDGE_MODELS  models of the edge step's tiny benchmark (default tera)
#   ARM64_CPU     the CPU qemu emulates for every step (default cortex-a76: a Raspberry Pi 5's core, as
#                 the CPU description shown to the libraries says; qemu's own default, max, adds SVE,
#                 SVE2, SME and more, which no Pi has and with which PyTorch's GRU gives wrong results
#                 here: docs/platforms.md)
#   ARM64_QEMU_CPUS    the emulated CPUs of the gru step, space-separated, each with qemu's -cpu options
#                 (default "max cortex-a76"; e.g. "max,sve-default-vector-length=16 max,sve=off")
#   ARM64_GRU_RUNTIMES the gru step's runtimes (default: all; benchmarks/gru_kernels.py check --runtimes)
#   HOST_VENV     this host's virtual environment for the edge and gru steps' artifacts (default
#                 the repository's .venv, with make setup-runtimes RUNTIMES=executorch,litert)
#   ARM64_LOGS    where each step's full output goes (default: beside the root, a folder per run)
# Needs: root, mmdebstrap, qemu-user-static and binfmt_misc (apt-get install mmdebstrap
# qemu-user-static binfmt-support).  Exit code: 0 all steps ok, 1 a step failed, 2 cannot start.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${ARM64_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/wavebench/arm64-root}
SUITE=${ARM64_SUITE:-bookworm}
STEPS=${ARM64_STEPS:-setup,bench,runtimes,edge,gru,tests}
MODELS=${ARM64_MODELS:-logmel,apc,tera}
EDGE_MODELS=${ARM64_EDGE_MODELS:-tera}
CPU=${ARM64_CPU:-cortex-a76}
QEMU_CPUS=${ARM64_QEMU_CPUS:-max cortex-a76}
GRU_RUNTIMES=${ARM64_GRU_RUNTIMES:-}
HOST_VENV=${HOST_VENV:-$REPO/.venv}
PACKAGES=python3,python3-venv,python3-pip,make,ca-certificates,procps
PROJECT=/opt/wavebench                 # inside the root
VENV=/opt/wavebench-venv               # inside the root, kept between runs (ARM64_FRESH=1 clears it)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGS=${ARM64_LOGS:-$(dirname "$ROOT")/arm64-logs/$STAMP}

die() { echo "arm64_check: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap, chroot and mounts); run it with sudo"
case "$ROOT" in "$REPO"|"$REPO"/*) die "ARM64_ROOT=$ROOT is inside the repository; put the cache outside it" ;; esac
for tool in mmdebstrap chroot mount; do
  command -v "$tool" >/dev/null || die "$tool is missing; apt-get install mmdebstrap qemu-user-static binfmt-support"
done
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  command -v update-binfmts >/dev/null && update-binfmts --enable qemu-aarch64 2>/dev/null || true
fi
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
  || die "no aarch64 emulator registered in binfmt_misc; apt-get install qemu-user-static binfmt-support"
for step in ${STEPS//,/ }; do
  case "$step" in
    setup|bench|runtimes|edge|gru|tests|run) ;;
    *) die "unknown step '$step' in ARM64_STEPS; valid: setup,bench,runtimes,edge,gru,tests,run" ;;
  esac
done

# 1. the root, built once
if [ ! -f "$ROOT/.wavebench-arm64-root" ]; then
  echo "arm64_check: building a Debian $SUITE arm64 root in $ROOT (once; emulated, several minutes)"
  rm -rf "$ROOT.tmp"
  mkdir -p "$(dirname "$ROOT")"
  t0=$SECONDS
  mmdebstrap --arch=arm64 --variant=apt --include="$PACKAGES" "$SUITE" "$ROOT.tmp"
  echo "suite=$SUITE packages=$PACKAGES built=$STAMP seconds=$((SECONDS - t0))" > "$ROOT.tmp/.wavebench-arm64-root"
  rm -rf "$ROOT" && mv "$ROOT.tmp" "$ROOT"
fi

# 2. what the host uses to reach the package registry: CA certificates, pip configuration, DNS
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
for conf in /etc/xdg/pip /etc/pip.conf "$HOME/.config/pip" "$HOME/.pip"; do
  if [ -e "$conf" ]; then
    target="$ROOT${conf/#$HOME//root}"
    mkdir -p "$(dirname "$target")" && rm -rf "$target" && cp -a "$conf" "$target"
  fi
done
PASS_ENV=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "QEMU_CPU=$CPU")
while IFS='=' read -r name value; do
  case "$name" in PIP_*|SSL_CERT_FILE|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE) PASS_ENV+=("$name=$value") ;; esac
done < <(env)

# 3. the project, as committed plus untracked-but-not-ignored files (no .venv, no results)
rm -rf "$ROOT$PROJECT" && mkdir -p "$ROOT$PROJECT"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
  | tar --null -T - -cf -) | tar -xf - -C "$ROOT$PROJECT"
if [ "${ARM64_FRESH:-0}" = 1 ]; then rm -rf "$ROOT$VENV"; fi

# 4. /proc, /sys and /dev inside (without /sys, torch's and onnxruntime's cpuinfo fail), and an
#    Arm CPU's description in them
mounted=()
cleanup() {
  for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -R "${mounted[i]}" 2>/dev/null || umount -lR "${mounted[i]}" || true; done
  [ -z "${FAKE:-}" ] || rm -rf "$FAKE"
}
trap cleanup EXIT
mount -t proc proc "$ROOT/proc" && mounted+=("$ROOT/proc")
mount --rbind /sys "$ROOT/sys" && mount --make-rslave "$ROOT/sys" && mounted+=("$ROOT/sys")
mount --rbind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev" && mounted+=("$ROOT/dev")
# qemu-user leaves /proc/cpuinfo and /sys/devices/system/cpu describing the x86 host: torch
# (xbyak_aarch64: "Can't open MIDR_EL1 sysfs entry") and onnxruntime (cpuinfo) then crash on
# import with SIGSEGV.  Show them what a Raspberry Pi 5 shows (Cortex-A76, MIDR 0x414fd0b1), one
# entry per host CPU so that the thread count stays the host's.
FAKE=$(mktemp -d)
ncpu=$(nproc)
for ((i = 0; i < ncpu; i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' "$i"
done > "$FAKE/cpuinfo"
mount --bind "$FAKE/cpuinfo" "$ROOT/proc/cpuinfo" && mounted+=("$ROOT/proc/cpuinfo")
CPUS="$ROOT/sys/devices/system/cpu"
mount -t tmpfs tmpfs "$CPUS" && mounted+=("$CPUS")
for f in online possible present; do echo "0-$((ncpu - 1))" > "$CPUS/$f"; done
for ((i = 0; i < ncpu; i++)); do
  mkdir -p "$CPUS/cpu$i/regs/identification" "$CPUS/cpu$i/topology"
  echo 0x00000000414fd0b1 > "$CPUS/cpu$i/regs/identification/midr_el1"
  echo 0x0 > "$CPUS/cpu$i/regs/identification/revidr_el1"
  T="$CPUS/cpu$i/topology"
  echo "$i" > "$T/core_id"
  for f in physical_package_id cluster_id die_id; do echo 0 > "$T/$f"; done
  for f in thread_siblings_list core_cpus_list; do echo "$i" > "$T/$f"; done
  for f in core_siblings_list package_cpus_list cluster_cpus_list die_cpus_list; do echo "0-$((ncpu - 1))" > "$T/$f"; done
  # the caches a Pi 5 has (OpenVINO's CPU plugin and hwloc read them): L1 64 KiB each, L2 512 KiB per core, L3 2 MiB shared
  for spec in "0 1 Data 64K $i" "1 1 Instruction 64K $i" "2 2 Unified 512K $i" "3 3 Unified 2048K 0-$((ncpu - 1))"; do
    read -r index level type size shared <<<"$spec"
    C="$CPUS/cpu$i/cache/index$index"
    mkdir -p "$C"
    echo "$level" > "$C/level"; echo "$type" > "$C/type"; echo "$size" > "$C/size"
    echo "$shared" > "$C/shared_cpu_list"; echo 64 > "$C/coherency_line_size"
  done
done
# local wheel folders and file:// indexes that the host's pip configuration names (find-links,
# extra-index-url): the same paths, read-only, so the copied configuration means the same inside
for dir in $(cat /etc/xdg/pip/pip.conf /etc/pip.conf "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf" 2>/dev/null \
               | grep -oE '(file://)?/[^ ,;"]+'; env | grep -E '^PIP_(FIND_LINKS|INDEX_URL|EXTRA_INDEX_URL)=' | cut -d= -f2- | tr ' ' '\n'); do
  dir=${dir#file://}; dir=${dir%/}; dir=${dir%/simple}     # an index's pages link to ../../files
  case "$dir" in /etc/*|/proc/*|/sys/*|/dev/*) continue ;; esac
  while [ ! -d "$dir" ] && [ "$dir" != / ]; do dir=$(dirname "$dir"); done
  [ "$dir" != / ] || continue
  case " ${mounted[*]} " in *" $ROOT$dir "*) continue ;; esac
  mkdir -p "$ROOT$dir" && mount --bind -o ro "$dir" "$ROOT$dir" && mounted+=("$ROOT$dir")
done

inside() { chroot "$ROOT" /usr/bin/env -i "${PASS_ENV[@]}" bash -c "cd $PROJECT && $1"; }

mkdir -p "$LOGS"
declare -A RESULT TIME
run_step() {  # name, command inside the root
  local name=$1 t0=$SECONDS rc=0
  echo "arm64_check: $name: $2   (log: $LOGS/$name.log)"
  inside "$2" > "$LOGS/$name.log" 2>&1 || rc=$?
  TIME[$name]=$((SECONDS - t0))
  if [ "$rc" = 0 ]; then RESULT[$name]=ok; else RESULT[$name]="failed (exit $rc)"; tail -n 15 "$LOGS/$name.log" >&2; fi
}

cpu_file() { echo "${1//[,=]/_}"; }   # a qemu -cpu value as part of a file name

on_host() {  # name, command run here (not in the root), in the repository
  echo "arm64_check: $1 (on this host): $2   (log: $LOGS/$1-host.log)"
  (cd "$REPO" && bash -c "$2") > "$LOGS/$1-host.log" 2>&1
}

EDGE_SHAPES="QUICK=1 TINY=1 MODELS=$EDGE_MODELS DEVICE=cpu"   # the same plan here and inside: the same shapes
for step in ${STEPS//,/ }; do
  case "$step" in
    setup) run_step setup "make setup VENV=$VENV SETS=dev" ;;
    bench) run_step bench "make bench VENV=$VENV QUICK=1 TINY=1 MODELS=$MODELS DEVICE=auto RESULTS_DIR=results" ;;
    runtimes) run_step runtimes "make setup-runtimes VENV=$VENV RUNTIMES=all" ;;
    edge)
      # ExecuTorch programs and LiteRT models made here, as a laptop makes them for a board (LiteRT's
      # converter has no aarch64 wheel), then used inside from their manifest
      t0=$SECONDS
      rm -rf "$LOGS/host-results" "$ROOT/opt/wavebench-artifacts"
      if on_host edge "make export VENV=$HOST_VENV RUNTIMES=executorch,litert $EDGE_SHAPES RESULTS_DIR=$LOGS/host-results \
             ARTIFACTS_DIR=$ROOT/opt/wavebench-artifacts"; then
        run_step edge "rm -rf results-edge && make bench VENV=$VENV RUNTIMES=all $EDGE_SHAPES RESULTS_DIR=results-edge \
          ARTIFACTS_DIR=/opt/wavebench-artifacts ENERGY=none"
        TIME[edge]=$((SECONDS - t0))
      else
        RESULT[edge]="failed on this host"; TIME[edge]=$((SECONDS - t0)); tail -n 15 "$LOGS/edge-host.log" >&2
      fi ;;
    gru)
      # one GRU's weights and artifacts made here; inside, each emulated CPU runs every runtime on them
      t0=$SECONDS
      rm -rf "$ROOT/opt/wavebench-gru"
      if on_host gru "$HOST_VENV/bin/python benchmarks/gru_kernels.py make $ROOT/opt/wavebench-gru"; then
        cmd="rc=0"
        for cpu in $QEMU_CPUS; do
          cmd="$cmd; QEMU_CPU=$cpu $VENV/bin/python benchmarks/gru_kernels.py check /opt/wavebench-gru \
            ${GRU_RUNTIMES:+--runtimes $GRU_RUNTIMES} --label 'emulated aarch64, QEMU_CPU=$cpu' \
            --out /opt/wavebench-gru/check-$(cpu_file "$cpu").json || rc=1"
        done
        run_step gru "$cmd; exit \$rc"
        TIME[gru]=$((SECONDS - t0))
        cp "$ROOT"/opt/wavebench-gru/check-*.json "$LOGS/" 2>/dev/null || true
      else
        RESULT[gru]="failed on this host"; TIME[gru]=$((SECONDS - t0)); tail -n 15 "$LOGS/gru-host.log" >&2
      fi ;;
    run) run_step run "${ARM64_RUN:?ARM64_STEPS=run needs ARM64_RUN, the command to run inside}" ;;
    tests) run_step tests "$VENV/bin/python -m pytest -p no:cacheprovider \$(grep -v '^#' tests/fast.txt)" ;;
  esac
done

# 5. summary
facts=$(inside "uname -m; python3 -c 'import platform; print(platform.python_version())'; \
  . /etc/os-release && echo \"\$PRETTY_NAME\"; du -sh $VENV 2>/dev/null | cut -f1; \
  $VENV/bin/python scripts/torch_plan.py describe 2>/dev/null || echo 'no torch'; \
  $VENV/bin/python -c 'import onnxruntime; print(onnxruntime.__version__)' 2>/dev/null || echo 'no onnxruntime'" 2>/dev/null || true)
mapfile -t F <<<"$facts"
count_cells() {  # results folder inside the root, by_runtime (1 or empty) -> "N ok, N error"
  inside "python3 -c '
import collections, glob, json
c = collections.Counter()
for path in glob.glob(\"$1/*/*/cells.jsonl\"):
    for line in open(path):
        try:
            cell = json.loads(line)
            c[(str(cell.get(\"runtime\")) + \" \" if \"$2\" else \"\") + str(cell.get(\"status\"))] += 1
        except (ValueError, AttributeError):
            c[\"damaged line\"] += 1
print(\", \".join(f\"{n} {s}\" for s, n in sorted(c.items())) or \"none\")'" 2>/dev/null || echo "unknown"
}
cells=$(count_cells results "")
edge_cells=$(count_cells results-edge 1)
gru_line=""
for cpu in $QEMU_CPUS; do
  [ -f "$LOGS/check-$(cpu_file "$cpu").json" ] || continue
  gru_line="$gru_line $cpu: $("$HOST_VENV/bin/python" "$REPO/benchmarks/gru_kernels.py" verdict "$LOGS/check-$(cpu_file "$cpu").json" 2>/dev/null || echo unknown);"
done
tests_line=$(grep -E "^[0-9]+ (passed|failed)|passed|failed" "$LOGS/tests.log" 2>/dev/null | tail -n 1 || true)
echo
echo "arm64_check summary ($STAMP, host load average at end: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "  root:        ${F[2]:-?} ($SUITE), $(uname -m) host emulating ${F[0]:-?} ($CPU) with qemu-user-static"
echo "  python:      ${F[1]:-?};  venv: ${F[3]:-?};  ${F[4]:-?};  onnxruntime ${F[5]:-?}"
status=0
for step in ${STEPS//,/ }; do
  extra=""
  [ "$step" = bench ] && extra="  cells: $cells"
  [ "$step" = edge ] && extra="  cells: $edge_cells"
  [ "$step" = gru ] && extra=" $gru_line"
  [ "$step" = tests ] && extra="  ${tests_line}"
  printf '  %-8s %-20s %6ss%s\n' "$step" "${RESULT[$step]:-not run}" "${TIME[$step]:-0}" "$extra"
  [ "${RESULT[$step]:-}" = ok ] || status=1
done
echo "  logs:        $LOGS"
exit $status
