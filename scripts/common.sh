# shellcheck shell=bash
# Sourced by the job scripts.

# fail MESSAGE...: prints "error: MESSAGE" on stderr and exits with status 1.
fail() {
  echo "error: $*" >&2
  exit 1
}

# job_python: prints the Python a job script runs: $PYTHON when set; with DRY_RUN=1 the
# path in the virtual environment for TF (1: .venv, 2: .venv-tf2), which is not created;
# otherwise the environment scripts/setup.sh creates or finds. Use as python=$(job_python),
# so that a failed set-up stops the script.
job_python() {
  if [ -n "${PYTHON:-}" ]; then
    echo "$PYTHON"
  elif [ "${DRY_RUN:-0}" = 1 ]; then
    if [ "${TF:-1}" = 2 ]; then echo .venv-tf2/bin/python; else echo .venv/bin/python; fi
  else
    local venv
    venv=$(scripts/setup.sh | tail -n1) || return 1
    echo "$venv/bin/python"
  fi
}

# run_or_print CMD...: prints the command (shell-quoted, ready to copy), then runs it in
# place of the script, or only prints it when DRY_RUN=1.
run_or_print() {
  printf '%q ' "$@"
  echo
  if [ "${DRY_RUN:-0}" = 1 ]; then
    exit 0
  fi
  exec "$@"
}

# run_stage NAME LOG COMMAND...: prints the stage name and the command (shell-quoted), runs
# it and appends "NAME<TAB>seconds" to $TIMES. With a LOG path (not ""), the command's
# output is appended to that file too.
run_stage() {
  local name=$1 log=$2 start
  shift 2
  echo
  echo "=== $name"
  printf '%q ' "$@"
  echo
  start=$(date +%s)
  if [ -n "$log" ]; then
    mkdir -p "$(dirname "$log")"
    "$@" 2>&1 | tee -a "$log"
  else
    "$@"
  fi
  echo -e "$name\t$(( $(date +%s) - start ))" >> "$TIMES"
}

# pick_data_dir FILE...: prints the data folder: DATA_DIR when set; else data/ when it holds
# every FILE; else the shipped sample data/sample, saying so in one line on stderr.
pick_data_dir() {
  local need
  if [ -n "${DATA_DIR:-}" ]; then
    echo "$DATA_DIR"
    return 0
  fi
  for need in "$@"; do
    if [ ! -s "data/$need" ]; then
      echo "$(basename "$0"): no DATA_DIR and no full data in data/: running on the shipped" \
           "sample data/sample (data/sample/README.md); for the full data run" \
           "scripts/download_data.sh (needs internet) or set DATA_DIR." >&2
      echo data/sample
      return 0
    fi
  done
  echo data
}

# require_data DATA_DIR FILE...: stops with a one-line error naming the first FILE (a path
# inside DATA_DIR) that is missing or empty, and how to get the data.
require_data() {
  local dir=$1 need
  shift
  for need in "$@"; do
    if [ ! -s "$dir/$need" ]; then
      echo "error: $dir/$need not found. Run scripts/download_data.sh (needs internet) or" \
           "set DATA_DIR to a folder laid out as data/README.md describes." >&2
      exit 1
    fi
  done
}

# find_python VERSION: prints the path of a python VERSION (e.g. 3.7): on PATH, under pyenv
# or in /usr; fails when there is none.
find_python() {
  local want=$1 cand
  for cand in "python$want" "$(pyenv root 2>/dev/null)/versions/$want"*/bin/"python$want" \
              /usr/bin/"python$want" /usr/local/bin/"python$want"; do
    if [ -n "$cand" ] && "$cand" -c 'import sys' >/dev/null 2>&1; then
      command -v "$cand" 2>/dev/null || echo "$cand"
      return 0
    fi
  done
  return 1
}
