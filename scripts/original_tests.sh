#!/usr/bin/env bash
# Runs the original BERT release's unit tests (tokenization_test.py, modeling_test.py,
# optimization_test.py) against this project's modules, unchanged, from a copy outside
# the repository.
#
#   scripts/original_tests.sh ORIGINAL_REPO_DIR           TensorFlow 1.15 (.venv)
#   TF=2 scripts/original_tests.sh ORIGINAL_REPO_DIR      TensorFlow 2.15 (.venv-tf2)
#
# ORIGINAL_REPO_DIR is a checkout of github.com/google-research/bert. The tests import
# `tensorflow` and use its TF 1.x names; under TensorFlow 2.15 that name is bound to the
# tf.compat.v1 API of tf_compat.py before each test file runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
source scripts/common.sh

[ $# = 1 ] || fail "usage: $0 ORIGINAL_REPO_DIR (a checkout of google-research/bert)"
tests=(tokenization_test.py modeling_test.py optimization_test.py)
for name in "${tests[@]}"; do
  [ -f "$1/$name" ] || fail "$1/$name not found; give a checkout of google-research/bert"
done
python=$(job_python)
root=$(pwd)
case "$python" in /*) ;; */*) python=$root/$python ;; esac  # the tests run from a copy
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
for name in "${tests[@]}"; do cp "$1/$name" "$copy/"; done
cd "$copy"
status=0
for name in "${tests[@]}"; do
  echo "=== $name"
  if PYTHONPATH=$root "$python" -c '
import runpy, sys
from krbert import tf_compat
sys.modules["tensorflow"] = tf_compat.tf
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")' "$name" > "$name.log" 2>&1; then
    tail -n 3 "$name.log"
  else
    tail -n 30 "$name.log"
    status=1
  fi
done
exit "$status"
