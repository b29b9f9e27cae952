"""How the tests build their tiny models: the scripts run as users run them, the tiny BERT
configs, random pretraining records, and ``built_once``, which builds a model once per test
run for every pytest-xdist worker.

The session fixtures of tests/conftest.py (``pretrained_tiny``, ``nsmc_finetuned``, ...)
are made with these helpers; test modules import the helpers from here, never from another
test module.
"""

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_VOCAB = os.path.join(ROOT, "vocab", "vocab_20000.txt")

# run_classifier.py's tiny model: 2 layers, 32 wide, the shipped vocabulary.
TINY_CONFIG = {
    "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "hidden_size": 32, "initializer_range": 0.02, "intermediate_size": 64,
    "max_position_embeddings": 64, "num_attention_heads": 2, "num_hidden_layers": 2,
    "type_vocab_size": 2, "vocab_size": 20000,
}

# run_pretraining.py's tiny model on random records: SEQ tokens, PREDS masked, VOCAB ids.
SEQ, PREDS, VOCAB = 16, 3, 100
TINY = {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "hidden_size": 32, "initializer_range": 0.02,
        "intermediate_size": 64, "max_position_embeddings": 32, "num_attention_heads": 2,
        "num_hidden_layers": 2, "type_vocab_size": 2, "vocab_size": VOCAB}


def free_ports(count):
    """``count`` TCP ports on 127.0.0.1 that were free a moment ago (for worker
    processes; the operating system picks them, so parallel tests do not collide)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def original_release():
    """(checkout, python) of the original BERT release to compare with: ORIGINAL_BERT_DIR,
    and a Python with TensorFlow 1.x (ORIGINAL_BERT_PYTHON, or this one under TF 1.15);
    skips the test when either is missing."""
    from krbert.tf_compat import IS_TF2

    checkout = os.environ.get("ORIGINAL_BERT_DIR")
    if not checkout:
        pytest.skip("ORIGINAL_BERT_DIR (a google-research/bert checkout) is not set")
    python = os.environ.get("ORIGINAL_BERT_PYTHON") or (None if IS_TF2 else sys.executable)
    if not python:
        pytest.skip("the original needs TensorFlow 1.x: set ORIGINAL_BERT_PYTHON")
    return checkout, python


# ---------------------------------------------------------------------------------------
# The scripts, each in its own process (their flags are process-wide).

def run_classifier(args, expect_ok=True, script=os.path.join(ROOT, "run_classifier.py")):
    """Runs a script (run_classifier.py by default); returns (returncode, stderr)."""
    done = subprocess.run([sys.executable, script] + args, cwd=ROOT, timeout=600,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if expect_ok and done.returncode != 0:
        pytest.fail("%s failed:\n%s" % (os.path.basename(script), done.stderr[-4000:]),
                    pytrace=False)
    return done.returncode, done.stderr


def run_pretraining(args, timeout=240):
    """Runs run_pretraining.py; returns (returncode, combined log)."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "run_pretraining.py")] + args,
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout)
    return proc.returncode, proc.stdout


def convert(args, expect_ok=True, env=None):
    """Runs convert_checkpoint.py; returns (returncode, stderr)."""
    done = subprocess.run([sys.executable, os.path.join(ROOT, "convert_checkpoint.py")] + args,
                          cwd=ROOT, timeout=300, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          env=dict(os.environ, **(env or {})))
    if expect_ok and done.returncode != 0:
        pytest.fail("convert_checkpoint.py failed:\n%s" % done.stderr[-4000:], pytrace=False)
    return done.returncode, done.stderr


# ---------------------------------------------------------------------------------------
# Inputs.

def head(src, dst, rows, extra=()):
    """Header and the first ``rows`` data lines of ``src`` (then ``extra`` lines)."""
    with open(src, encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(rows + 1)]
    with open(dst, "w", encoding="utf-8") as handle:
        handle.writelines(lines + list(extra))


def first_lines(src, dst, count):
    """Writes the first ``count`` lines of ``src`` to ``dst``; returns ``dst`` as text."""
    with open(src, encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(count)]
    with open(dst, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    return str(dst)


def write_records(path, num, seq=SEQ, preds=PREDS, max_id=VOCAB, seed=0):
    """``num`` random examples: ids in [5, max_id), the masked ids as labels."""
    from krbert.tf_compat import tf

    rng = np.random.RandomState(seed)

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(num):
            ids = rng.randint(5, max_id, size=seq)
            positions = np.sort(rng.choice(np.arange(1, seq), preds, replace=False))
            features = {
                "input_ids": ints(ids), "input_mask": ints([1] * seq),
                "segment_ids": ints([0] * (seq // 2) + [1] * (seq - seq // 2)),
                "masked_lm_positions": ints(positions), "masked_lm_ids": ints(ids[positions]),
                "masked_lm_weights": tf.train.Feature(
                    float_list=tf.train.FloatList(value=[1.0] * preds)),
                "next_sentence_labels": ints([rng.randint(2)]),
            }
            example = tf.train.Example(features=tf.train.Features(feature=features))
            writer.write(example.SerializeToString())
    return str(path)


def tiny_config(tmp_path, **changes):
    """``tmp_path``/bert_config.json: the tiny pretraining config with ``changes``."""
    path = tmp_path / "bert_config.json"
    path.write_text(json.dumps(dict(TINY, **changes)))
    return str(path)


def flags_for(config, data, out, steps, **extra):
    """run_pretraining.py's flags for the tiny model on ``data`` for ``steps`` steps."""
    args = {"bert_config_file": config, "input_file": data, "output_dir": out,
            "max_seq_length": SEQ, "max_predictions_per_seq": PREDS,
            "train_batch_size": 8, "eval_batch_size": 8, "num_train_steps": steps,
            "num_warmup_steps": 2, "learning_rate": 2e-3, "save_checkpoints_steps": 10,
            "save_summary_steps": 10, "log_every_n_steps": 10, "max_eval_steps": 5,
            "seed": 1}
    args.update(extra)
    return ["--%s=%s" % item for item in sorted(args.items())]


# ---------------------------------------------------------------------------------------
# Built once per test run.

def shared_root(tmp_path_factory):
    """The test run's temporary root, the same for every pytest-xdist worker (each worker's
    own base temp is a folder inside it)."""
    base = tmp_path_factory.getbasetemp()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return base.parent if worker and base.name == "popen-%s" % worker else base


def built_once(tmp_path_factory, name, build):
    """``build(folder)``'s JSON result, built once per test run in ``folder`` = the run's
    temporary root/``name``: the first worker builds under a file lock while the others
    wait, then all read the result. A failed build leaves nothing and the next caller tries
    again (and fails the same way, with the same message)."""
    root = shared_root(tmp_path_factory)
    folder = root / name
    result = root / (name + ".json")
    with open(str(root / (name + ".lock")), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            if folder.exists():
                shutil.rmtree(str(folder))
            folder.mkdir()
            value = build(folder)
            partial = root / (name + ".json.tmp")
            partial.write_text(json.dumps(value))
            os.rename(str(partial), str(result))
        return json.loads(result.read_text())
