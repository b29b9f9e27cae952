#!/usr/bin/env bash
# Sets up the environment if needed, then runs the whole test suite.
#
#   scripts/test.sh               Python 3.7 + TensorFlow 1.15 (.venv)
#   TF=2 scripts/test.sh          Python 3.11 + TensorFlow 2.15 (.venv-tf2)
#   scripts/test.sh -k tokeniz    extra arguments go to pytest
#
# Tests that need the real data read DATA_DIR (default data/) and fail with a clear
# message when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(scripts/setup.sh | tail -n 1)
export DATA_DIR=${DATA_DIR:-data}
echo "test.sh: $("$VENV/bin/python" -c 'import sys, tf_compat; print("Python %d.%d, TensorFlow %s" % (sys.version_info[0], sys.version_info[1], tf_compat.TF_VERSION))' 2>/dev/null), DATA_DIR=$DATA_DIR"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
