#!/usr/bin/env bash
# wavebench on a Raspberry Pi's userland, emulated: a Debian 12 (bookworm) arm64 root run under
# qemu-user-static.  Builds the root once (mmdebstrap, cached outside the repository), copies the
# project in, and inside it runs the README's set-up, a tiny benchmark and the fast tests; then
# prints a summary (each step's result and time).  Slow (emulation): a script you run, not CI.
#
#   sudo scripts/arm64_check.sh                 # everything
#   ARM64_STEPS=setup,bench scripts/arm64_check.sh
#
# Settings (environment):
#   ARM64_ROOT    the cached root (default ${XDG_CACHE_HOME:-~/.cache}/wavebench/arm64-root)
#   ARM64_SUITE   Debian suite (default bookworm: Raspberry Pi OS 12's base, Python 3.11)
#   ARM64_STEPS   setup,bench,tests (default: all three, in that order)
#   ARM64_FRESH   1: delete the root's virtual environment first, so set-up starts from nothing
#   ARM64_MODELS  models of the tiny benchmark (default logmel,apc,tera)
#   ARM64_LOGS    where each step's full output goes (default: beside the root, a folder per run)
# Needs: root, mmdebstrap, qemu-user-static and binfmt_misc (apt-get install mmdebstrap
# qemu-user-static binfmt-support).  Exit code: 0 all steps ok, 1 a step failed, 2 cannot start.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${ARM64_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/wavebench/arm64-root}
SUITE=${ARM64_SUITE:-bookworm}
STEPS=${ARM64_STEPS:-setup,bench,tests}
MODELS=${ARM64_MODELS:-logmel,apc,tera}
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
  case "$step" in setup|bench|tests) ;; *) die "unknown step '$step' in ARM64_STEPS; valid: setup,bench,tests" ;; esac
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
PASS_ENV=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
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
  echo "$i" > "$CPUS/cpu$i/topology/core_id"
  echo 0 > "$CPUS/cpu$i/topology/physical_package_id"
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

for step in ${STEPS//,/ }; do
  case "$step" in
    setup) run_step setup "make setup VENV=$VENV SETS=dev" ;;
    bench) run_step bench "make bench VENV=$VENV QUICK=1 TINY=1 MODELS=$MODELS DEVICE=auto RESULTS_DIR=results" ;;
    tests) run_step tests "$VENV/bin/python -m pytest -p no:cacheprovider \$(grep -v '^#' tests/fast.txt)" ;;
  esac
done

# 5. summary
facts=$(inside "uname -m; python3 -c 'import platform; print(platform.python_version())'; \
  . /etc/os-release && echo \"\$PRETTY_NAME\"; du -sh $VENV 2>/dev/null | cut -f1; \
  $VENV/bin/python scripts/torch_plan.py describe 2>/dev/null || echo 'no torch'; \
  $VENV/bin/python -c 'import onnxruntime; print(onnxruntime.__version__)' 2>/dev/null || echo 'no onnxruntime'" 2>/dev/null || true)
mapfile -t F <<<"$facts"
cells=$(inside "python3 -c '
import collections, glob, json
c = collections.Counter()
for path in glob.glob(\"results/*/*/cells.jsonl\"):
    for line in open(path):
        try: c[json.loads(line).get(\"status\")] += 1
        except ValueError: c[\"damaged line\"] += 1
print(\", \".join(f\"{n} {s}\" for s, n in sorted(c.items())) or \"none\")'" 2>/dev/null || echo "unknown")
tests_line=$(grep -E "^[0-9]+ (passed|failed)|passed|failed" "$LOGS/tests.log" 2>/dev/null | tail -n 1 || true)
echo
echo "arm64_check summary ($STAMP, host load average at end: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "  root:        ${F[2]:-?} ($SUITE), $(uname -m) host emulating ${F[0]:-?} with qemu-user-static"
echo "  python:      ${F[1]:-?};  venv: ${F[3]:-?};  ${F[4]:-?};  onnxruntime ${F[5]:-?}"
status=0
for step in ${STEPS//,/ }; do
  extra=""
  [ "$step" = bench ] && extra="  cells: $cells"
  [ "$step" = tests ] && extra="  ${tests_line}"
  printf '  %-6s %-18s %6ss%s\n' "$step" "${RESULT[$step]}" "${TIME[$step]}" "$extra"
  [ "${RESULT[$step]}" = ok ] || status=1
done
echo "  logs:        $LOGS"
exit $status
