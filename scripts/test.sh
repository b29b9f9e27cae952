#!/usr/bin/env bash
# Sets up the environment if needed, then runs the whole test suite on every core.
#
#   scripts/test.sh               Python 3.7 + TensorFlow 1.15 (.venv)
#   TF=2 scripts/test.sh          Python 3.11 + TensorFlow 2.15 (.venv-tf2)
#   scripts/test.sh -k tokeniz    extra arguments go to pytest
#   JOBS=1 scripts/test.sh        one process (pytest-xdist off); JOBS=N: N worker processes
#                                 (default: the number of cores, at most 2)
#   FAST=1 scripts/test.sh        leaves out the long end-to-end runs (marker `slow`, listed
#                                 in tests/conftest.py) for quick checks while editing
#
# The tests read DATA_DIR; unset, data/ when it holds the full data, else the shipped sample
# data/sample. Every test runs on the sample; the checks that need the full data or the
# published KR-BERT vocabularies are then skipped, and the closing lines list them with
# their reasons (-rs) and count them. A DATA_DIR without the data fails the data tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
JOBS=${JOBS:-$(( cores < 2 ? cores : 2 ))}
case "$JOBS" in
  ''|*[!0-9]*|0) echo "test.sh: JOBS must be a number of processes, 1 or more (got '$JOBS')" >&2; exit 2 ;;
esac
VENV=$(scripts/setup.sh | tail -n 1)
args=(-q -rs -p no:cacheprovider)
if [ "$JOBS" -gt 1 ]; then args+=(-n "$JOBS" --dist loadfile); fi
if [ "${FAST:-0}" = 1 ]; then args+=(-m "not slow"); fi
echo "test.sh: $("$VENV/bin/python" -c 'import sys; from krbert import tf_compat; print("Python %d.%d, TensorFlow %s" % (sys.version_info[0], sys.version_info[1], tf_compat.TF_VERSION))' 2>/dev/null), DATA_DIR=${DATA_DIR:-(unset)}, $JOBS process(es)${FAST:+, FAST=$FAST}"
exec "$VENV/bin/python" -m pytest "${args[@]}" tests "$@"
