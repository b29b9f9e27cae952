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
#   scripts/lock.sh gpu          requirements/lock-py311-gpu.txt from requirements/gpu.txt:
#                                TensorFlow 2.15 with CUDA from PyPI, for GPU=1 TF=2
#                                scripts/setup.sh (Linux x86-64, Python 3.11)
#
# The GPU lock is resolved by pip itself (pip install --dry-run --report, which reads the
# packages' metadata without downloading the multi-GB CUDA wheels) and pins each package
# to the one file pip picked for Linux x86-64 and Python 3.11, with that file's sha256.
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

lock_gpu() {  # requirements/gpu.txt -> requirements/lock-py311-gpu.txt
  local venv="$LOCK_VENVS/gpu" py report
  if [ ! -x "$venv/bin/pip" ]; then
    py=$(find_python 3.11) || { echo "lock.sh: python3.11 not found" >&2; exit 1; }
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip >&2
  fi
  report=$(mktemp)
  echo "lock.sh: requirements/lock-py311-gpu.txt from requirements/gpu.txt (Python 3.11)" >&2
  "$venv/bin/pip" install --quiet --dry-run --ignore-installed --report "$report" \
    -r requirements/gpu.txt
  python3 - "$report" requirements/lock-py311-gpu.txt <<'PYEOF'
import json, sys
report, output = sys.argv[1:]
lines = ["# Written by scripts/lock.sh gpu from requirements/gpu.txt: every package of the\n",
         "# GPU stack at one version, with the sha256 of the file pip picked for Linux x86-64\n",
         "# and Python 3.11. Installed by GPU=1 TF=2 scripts/setup.sh.\n"]
for item in sorted(json.load(open(report))["install"],
                   key=lambda item: item["metadata"]["name"].lower()):
    name, version = item["metadata"]["name"].lower(), item["metadata"]["version"]
    digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
    lines.append("%s==%s \\\n    --hash=sha256:%s\n" % (name, version, digest))
open(output, "w", encoding="utf-8").writelines(lines)
PYEOF
  rm -f "$report"
}

for python in "${pythons[@]}"; do
  case "$python" in
    gpu) lock_gpu ;;
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
    *) echo "lock.sh: unknown target '$python'; use 37, 311 and/or gpu" >&2; exit 2 ;;
  esac
done
