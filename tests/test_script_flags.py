"""Every script keeps its flags: the name, type and default of each flag a script had when
this snapshot was taken (tests/fixtures/script_flags.json) are still there. Scripts may gain
flags; none may lose or change one, since users' shell scripts pass them by name."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

SNAPSHOT = os.path.join(ROOT, "tests", "fixtures", "script_flags.json")

LIST_FLAGS = r'''
import importlib, json, sys
from absl import flags
importlib.import_module(sys.argv[1])
out = {}
for name in sorted(flags.FLAGS):
    module = flags.FLAGS.find_module_defining_flag(name) or ""
    if module.startswith(("absl", "tensorflow")):
        continue
    flag = flags.FLAGS[name]
    default = flag.default
    if not isinstance(default, (bool, int, float, str, type(None))):
        default = repr(default)
    out[name] = [flag.flag_type(), default]
print(json.dumps(out))
'''


def script_flags(script):
    """{flag: [type, default]} of the project's flags once ``script`` is imported."""
    done = subprocess.run([sys.executable, "-c", LIST_FLAGS, script], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-2000:]
    return json.loads(done.stdout.decode("utf-8").strip().splitlines()[-1])


with open(SNAPSHOT, encoding="utf-8") as _handle:
    EXPECTED = json.load(_handle)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_the_script_keeps_every_flag_with_its_type_and_default(script):
    assert os.path.isfile(os.path.join(ROOT, script + ".py")), script
    now = script_flags(script)
    lost = sorted(set(EXPECTED[script]) - set(now))
    assert not lost, "flags lost: %s" % lost
    changed = {name: (want, now[name]) for name, want in EXPECTED[script].items()
               if now[name] != want}
    assert not changed, changed


def test_the_snapshot_covers_the_original_scripts():
    assert {"run_pretraining", "run_classifier", "create_pretraining_data", "extract_features",
            "build_vocab"} <= set(EXPECTED)
    assert EXPECTED["run_pretraining"]["train_batch_size"] == ["int", 32]
