#!/usr/bin/env bash
# Sets up the environment if needed, then runs the whole test suite.
#
#   scripts/test.sh               Python 3.7 + TensorFlow 1.15 (.venv)
#   TF=2 scripts/test.sh          Python 3.11 + TensorFlow 2.15 (.venv-tf2)
#   scripts/test.sh -k tokeniz    extra arguments go to pytest
#
# The tests read DATA_DIR; unset, data/ when it holds the full data, else the shipped sample
# data/sample. Every test runs on the sample; the checks that need the full data or the
# published KR-BERT vocabularies are then skipped, and the closing lines list them with
# their reasons (-rs) and count them. A DATA_DIR without the data fails the data tests.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(scripts/setup.sh | tail -n 1)
echo "test.sh: $("$VENV/bin/python" -c 'import sys; from krbert import tf_compat; print("Python %d.%d, TensorFlow %s" % (sys.version_info[0], sys.version_info[1], tf_compat.TF_VERSION))' 2>/dev/null), DATA_DIR=${DATA_DIR:-(unset)}"
exec "$VENV/bin/python" -m pytest -q -rs -p no:cacheprovider tests "$@"
