#!/usr/bin/env bash
# Lints the tree: ruff (pyflakes and pycodestyle rules, settings in ruff.toml) on the Python
# code and shellcheck on scripts/*.sh and .ci/run. Exits non-zero on any finding.
#
#   scripts/lint.sh
#
# The linters, pinned in requirements/lint.txt, are installed from PyPI into .venv-lint on
# first use (with python3, or LINT_PYTHON), and again when that file changes.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-lint
stamp=$VENV/.requirements.sha
want_sha=$(sha1sum requirements/lint.txt | cut -d' ' -f1)
if [ ! -x "$VENV/bin/ruff" ] || [ ! -x "$VENV/bin/shellcheck" ] || [ ! -f "$stamp" ] ||
   [ "$(cat "$stamp")" != "$want_sha" ]; then
  "${LINT_PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r requirements/lint.txt
  echo "$want_sha" > "$stamp"
fi

status=0
"$VENV/bin/ruff" check --no-cache . || status=1
"$VENV/bin/shellcheck" -x scripts/*.sh .ci/run || status=1
if [ "$status" = 0 ]; then
  echo "lint: clean"
fi
exit "$status"
