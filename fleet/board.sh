# wavebench fleet, board side: one short command per SSH call, sent as `sh -c` (nothing is
# installed on the board, nothing stays running but a started run).  POSIX sh + coreutils,
# util-linux (flock, setsid) and tar: present on Raspberry Pi OS, Ubuntu and JetPack.
# usage: board.sh COMMAND BASE [ARGS...]; BASE is the board's wavebench folder.
set -u
cmd=$1 base=$2
shift 2
expand() { case $1 in "~") printf '%s' "$HOME" ;; "~/"*) printf '%s' "$HOME/${1#"~/"}" ;; *) printf '%s' "$1" ;; esac; }
base=$(expand "$base")
runs=$base/runs
mkdir -p "$runs" "$base/code" "$base/results" || exit 3
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# alive RUN: the run's job is still going (its pid lives and its command line names this run,
# so a pid reused after a reboot is not mistaken for it)
alive() {
  [ -s "$1/pid" ] || return 1
  pid=$(cat "$1/pid")
  kill -0 "$pid" 2>/dev/null || return 1
  [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -F -- "$1/"
}

case $cmd in
have)    # have COMMIT: is that commit unpacked here?
  if [ -f "$base/code/$1/.complete" ]; then echo yes; else echo no; fi ;;
unpack)  # unpack COMMIT < tar: into a temporary folder, then renamed (another laptop may race)
  d=$base/code/$1
  if [ -f "$d/.complete" ]; then cat > /dev/null; exit 0; fi
  tmp=$base/code/.in-$1-$$
  rm -rf "$tmp"
  if ! { mkdir -p "$tmp" && tar -x -C "$tmp" && touch "$tmp/.complete"; }; then rm -rf "$tmp"; exit 4; fi
  mv -T "$tmp" "$d" 2>/dev/null || rm -rf "$tmp"
  [ -f "$d/.complete" ] ;;
have-artifacts)  # have-artifacts DIGEST: is that set of edge-runtime artifacts here, checked?
  if [ -f "$base/artifacts/$1/.complete" ]; then echo yes; else echo no; fi ;;
artifacts)  # artifacts DIGEST < tar: unpacked into a temporary folder, kept only when every checksum holds
  d=$base/artifacts/$1
  if [ -f "$d/.complete" ]; then cat > /dev/null; exit 0; fi
  mkdir -p "$base/artifacts" || exit 3
  tmp=$base/artifacts/.in-$1-$$
  rm -rf "$tmp"
  if ! { mkdir -p "$tmp" && tar -x -C "$tmp"; }; then rm -rf "$tmp"; echo "artifacts: the copy did not unpack" >&2; exit 4; fi
  if ! (cd "$tmp" && sha256sum -c --quiet SHA256SUMS >&2); then
    rm -rf "$tmp"; echo "artifacts: a file arrived damaged (its sha256 is not the manifest's)" >&2; exit 5
  fi
  touch "$tmp/.complete"
  mv -T "$tmp" "$d" 2>/dev/null || rm -rf "$tmp"
  [ -f "$d/.complete" ] ;;
start)   # start RUN_ID COMMIT PROFILE VENV HOLDER < environment, "#--job--#", job script
  id=$1 commit=$2 profile=$3 venv=$(expand "$4") holder=$5
  run=$runs/$id
  mkdir -p "$run"
  if alive "$run"; then echo "state=attached"; echo "since=$(cat "$run/started" 2>/dev/null)"; exit 0; fi
  if [ "$(cat "$run/exit" 2>/dev/null)" = 0 ]; then echo "state=finished"; exit 0; fi
  # the board's lock: held by the started job (it inherits fd 9) until the job ends
  exec 9>>"$base/lock"
  if ! flock -n 9; then
    echo "state=busy"; cat "$base/lock.holder" 2>/dev/null; exit 0
  fi
  printf 'holder=%s\nsince=%s\n' "$holder" "$(now)" > "$base/lock.holder"
  cat > "$run/payload"
  sed '/^#--job--#$/,$d' "$run/payload" > "$run/env"
  sed '1,/^#--job--#$/d' "$run/payload" > "$run/job.sh"
  rm -f "$run/payload" "$run/exit"
  [ -f "$run/started" ] && echo "relaunched $(now)" >> "$run/launches"
  now > "$run/started"    # also the mark that finds the run folder the suite writes (status)
  setsid nohup sh "$run/job.sh" "$run" "$base/code/$commit" "$venv" "$profile" "$base/results" "$base/artifacts" \
    >> "$run/log" 2>&1 < /dev/null &
  echo $! > "$run/pid"
  echo "state=started" ;;
status)  # status RUN_ID: state, phase, the suite's run folder, cells written, then the log's end
  run=$runs/$1
  if [ ! -d "$run" ]; then echo "state=none"; exit 0; fi
  if alive "$run"; then echo "state=running"
  elif [ -f "$run/exit" ]; then echo "state=finished"; echo "exit=$(cat "$run/exit")"
  elif [ -f "$run/pid" ]; then echo "state=dead"
  else echo "state=none"; fi
  echo "phase=$(cat "$run/phase" 2>/dev/null)"
  rd=$(cat "$run/run_dir" 2>/dev/null)
  if [ -z "$rd" ] && [ -f "$run/started" ]; then
    rd=$(cd "$base" && find results -mindepth 3 -maxdepth 3 -name run.json -newer "$run/started" 2>/dev/null | head -n 1)
    rd=${rd%/run.json}
    if [ -n "$rd" ]; then printf '%s\n' "$rd" > "$run/run_dir"; fi
  fi
  echo "run_dir=$rd"
  if [ -n "$rd" ] && [ -f "$base/$rd/cells.jsonl" ]; then echo "cells=$(wc -l < "$base/$rd/cells.jsonl")"; fi
  echo "--log--"
  tail -c "${2:-1500}" "$run/log" 2>/dev/null ;;
file)    # file PATH: a file of the board's wavebench folder (run.json)
  cat "$base/$1" ;;
manifest)  # manifest RUN_DIR: size and hash of cells.jsonl, to verify the copy
  f=$base/$1/cells.jsonl
  echo "size=$(wc -c < "$f")"
  echo "sha256=$(sha256sum < "$f" | cut -d' ' -f1)" ;;
pack)    # pack RUN_DIR: the run folder as a tar stream
  cd "$base/$(dirname "$1")" && tar -c "$(basename "$1")" ;;
stop)    # stop RUN_ID [WAIT_S]: Ctrl-C for the job's process group (the suite keeps its cells)
  run=$runs/$1
  if ! alive "$run"; then echo "state=not-running"; exit 0; fi
  pid=$(cat "$run/pid")
  kill -INT "-$pid" 2>/dev/null
  i=0
  while alive "$run" && [ "$i" -lt "${2:-60}" ]; do sleep 1; i=$((i + 1)); done
  if alive "$run"; then kill -KILL "-$pid" 2>/dev/null; echo "state=killed"; else echo "state=stopped"; fi ;;
*)
  echo "board.sh: unknown command $cmd" >&2; exit 2 ;;
esac
