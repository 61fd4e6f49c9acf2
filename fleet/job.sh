# wavebench fleet job: runs on the board in its own session (setsid nohup), so it survives a
# dropped link or a closed laptop.  Sets up the board's venv with the project's own script
# (once per requirements: a stamp in the venv) with make bench's set only (requirements.txt, plus
# requirements-dynamo.txt when EXPORTER=dynamo: no test or lint tool), installs the optional runtimes
# RUNTIMES asks for (what make setup-runtimes RUNTIMES=... runs: only those, each once), then runs the
# suite, pointed at the edge-runtime artifacts the laptop shipped (WAVEBENCH_ARTIFACTS names their
# folder); the exit code goes to RUN/exit ("setup-failed N" when set-up failed, "setup-runtimes-failed
# N" when an optional runtime could not be installed).  The board's lock (fd 9) is held until it ends.
# usage: job.sh RUN CODE VENV PROFILE RESULTS [ARTIFACTS]
run=$1 code=$2 venv=$3 profile=$4 results=$5 artifacts=${6:-}
trap '' HUP
# started with "&" by a non-interactive shell, this job ignores SIGINT (POSIX), and so would the
# suite: its Python restores Ctrl-C below, so that STOP=1 (SIGINT) ends it keeping its cells
trap 'echo "job: terminated"' TERM
finish() { printf '%s\n' "$1" > "$run/exit.tmp" && mv "$run/exit.tmp" "$run/exit"; exit 0; }
. "$run/env"
export PYTHONUNBUFFERED=1
echo "job: $(date -u +%Y-%m-%dT%H:%M:%SZ) commit folder $code, profile $profile"
cd "$code" || finish "setup-failed: no folder $code"
echo setup > "$run/phase"
mkdir -p "$(dirname "$venv")"
reqs="requirements.txt"
if [ "${EXPORTER:-}" = dynamo ]; then reqs="$reqs requirements-dynamo.txt"; fi
stamp="$venv/.wavebench-fleet-setup-$(cat $reqs scripts/setup_env.sh | sha256sum | cut -c1-16)"
(
  flock 8 || exit 1
  if [ -f "$stamp" ]; then echo "setup: $venv already set up for these requirements"; exit 0; fi
  VENV="$venv" ./scripts/setup_env.sh || exit
  if [ "${EXPORTER:-}" = dynamo ]; then "$venv/bin/python" -m pip install --quiet -r requirements-dynamo.txt || exit; fi
  touch "$stamp"
) 8>>"$venv.setup-lock"
rc=$?
[ "$rc" -eq 0 ] || finish "setup-failed $rc"
# the optional runtimes asked for (openvino, executorch, all ...): installed when missing, kept otherwise
if [ -n "${RUNTIMES:-}" ]; then
  (
    flock 8 || exit 1
    "$venv/bin/python" -m runners.runtimes.packages "$RUNTIMES"
  ) 8>>"$venv.setup-lock"
  rc=$?
  [ "$rc" -eq 0 ] || finish "setup-runtimes-failed $rc"
fi
echo run > "$run/phase"
# a relaunch after a drop resumes the run already started, even when it began with FRESH=1
if [ -s "$run/run_dir" ]; then unset FRESH; fi
set -- --device "$profile" --results "$results"
if [ -n "${WAVEBENCH_ARTIFACTS:-}" ] && [ -n "$artifacts" ]; then
  echo "job: edge-runtime artifacts from the laptop: $artifacts/$WAVEBENCH_ARTIFACTS"
  set -- "$@" --artifacts-dir "$artifacts/$WAVEBENCH_ARTIFACTS"
fi
"$venv/bin/python" -c 'import runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv[0] = "runners"
runpy.run_module("runners", run_name="__main__", alter_sys=True)' "$@"
finish "$?"
