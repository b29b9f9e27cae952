#!/usr/bin/env bash
# Regenerates the lock files that scripts/setup.sh installs from: every package at one exact
# version with the sha256 hashes of its release files (pip-compile from pip-tools).
#
#   requirements/lock-py37.txt         Python 3.7 + TensorFlow 1.15: requirements/dev.txt
#   requirements/lock-py311.txt        Python 3.11 + TensorFlow 2.15: requirements/dev.txt and,
#                                      when present, requirements/test.txt
#   requirements/lock-py311-torch.txt  torch at its exact version, without hashes (below)
#
#   scripts/lock.sh              keeps every pin that still satisfies the loose requirements
#                                (only added or changed requirements are resolved anew)
#   UPGRADE=1 scripts/lock.sh    moves every pin to the newest release the requirements allow
#   scripts/lock.sh 311          one Python only (37 or 311)
#
# pip-tools runs in throwaway virtual environments under LOCK_VENVS (default
# /tmp/krbert-lock), created with the same Python finder as setup.sh.
#
# torch: the wheel pip installs here is a CPU build from a local wheel folder, with another
# hash than the files of the same version on PyPI, so a hash would pin one machine's file.
# torch therefore sits in its own file with its exact version and no hash; its dependencies
# stay in the hashed lock.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
source scripts/common.sh

LOCK_VENVS=${LOCK_VENVS:-/tmp/krbert-lock}
UPGRADE=${UPGRADE:-0}
pythons=("$@")
if [ ${#pythons[@]} -eq 0 ]; then pythons=(37 311); fi

lock_venv() {  # PY_WANT -> path of a venv with pip-tools for that Python
  local want=$1 venv="$LOCK_VENVS/py$1" py
  if [ ! -x "$venv/bin/pip-compile" ]; then
    py=$(find_python "$want") || {
      echo "lock.sh: python$want not found; install it (e.g. 'pyenv install $want')" >&2
      exit 1
    }
    "$py" -m venv "$venv"
    # pip-tools 6.14 is the last release for Python 3.7; it needs pip < 24.1.
    "$venv/bin/python" -m pip install -q "pip<24.1" "pip-tools<7.4" >&2
  fi
  echo "$venv"
}

compile() {  # PY_WANT OUTPUT INPUT...
  local want=$1 output=$2 venv upgrade=()
  shift 2
  venv=$(lock_venv "$want")
  if [ "$UPGRADE" = 1 ]; then upgrade=(--upgrade); fi
  echo "lock.sh: $output from $* (Python $want)" >&2
  "$venv/bin/pip-compile" --quiet --resolver=backtracking --generate-hashes --allow-unsafe \
    --no-emit-index-url --no-emit-find-links --strip-extras "${upgrade[@]}" \
    --output-file="$output" "$@"
}

split_off() {  # PACKAGE LOCK OUTPUT: moves PACKAGE's entry from LOCK to OUTPUT, version only
  python3 - "$@" <<'PYEOF'
import re, sys
package, lock, output = sys.argv[1:]
kept, version, inside = [], None, False
for line in open(lock, encoding="utf-8"):
    match = re.match(r"%s==([^ \\;+]+)" % re.escape(package), line)
    if match:
        version, inside = match.group(1), True
    elif inside and not line[:1].isspace():
        inside = False
    if not inside:
        kept.append(line)
if version is None:
    sys.exit("lock.sh: %s not found in %s" % (package, lock))
open(lock, "w", encoding="utf-8").writelines(kept)
header = ("# Written by scripts/lock.sh: %s at its exact version, without hashes (see lock.sh);\n"
          "# its dependencies are pinned with hashes in %s.\n" % (package, lock))
open(output, "w", encoding="utf-8").write("%s%s==%s\n" % (header, package, version))
PYEOF
}

for python in "${pythons[@]}"; do
  case "$python" in
    37) compile 3.7 requirements/lock-py37.txt requirements/dev.txt ;;
    311)
      inputs=(requirements/dev.txt)
      if [ -f requirements/test.txt ]; then inputs+=(requirements/test.txt); fi
      # The torch pin, kept from the last run, goes back into the lock for pip-compile.
      if [ -f requirements/lock-py311-torch.txt ] && [ "$UPGRADE" != 1 ]; then
        grep -h '^torch==' requirements/lock-py311-torch.txt >> requirements/lock-py311.txt || :
      fi
      rm -f requirements/lock-py311-torch.txt
      compile 3.11 requirements/lock-py311.txt "${inputs[@]}"
      if grep -q '^torch==' requirements/lock-py311.txt; then
        split_off torch requirements/lock-py311.txt requirements/lock-py311-torch.txt
      fi ;;
    *) echo "lock.sh: unknown Python '$python'; use 37 and/or 311" >&2; exit 2 ;;
  esac
done
