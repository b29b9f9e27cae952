"""Distributed training as users run it, on this machine's CPU: two CPU replicas
(--num_cpu_replicas=2) and two worker processes on 127.0.0.1 (--distribution=multi_worker
with TF_CONFIG) against one device, for pretraining and fine-tuning; a worker killed and
the job restarted; float16 with its loss scale; the one-line errors.

Each pair of runs starts from the same --init_checkpoint with dropout 0 and a fixed seed,
so the only differences are rounding: every variable (weights, Adam slots, global step)
must end within 1e-5 of one device's, relative to the variable's largest value. The
attention key biases are left out of that comparison: their gradient is exactly 0 (the
softmax over keys does not change when every score moves by the same amount), so they
hold only rounding noise; they are checked to stay below 1e-6.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import run_pretraining
from krbert.bert_config import load_bert_config
from krbert.classifier import model as classifier_model
from krbert.estimator import distribution
from krbert.tf_compat import tf
from tiny_models import PREDS, SEQ, TINY, free_ports, write_records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 5
RTOL = 1e-5
NOISE_ONLY = "attention/self/key/bias"
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def launch(script, args, env=None):
    """Starts a script; returns the Popen (stdout and stderr in one text stream)."""
    environment = dict(os.environ, **(env or {}))
    environment.pop("TF_CONFIG", None)
    environment.update(env or {})
    return subprocess.Popen([sys.executable, os.path.join(ROOT, script)] + args, cwd=ROOT,
                            env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True)


def run(script, args, env=None, expect_ok=True, timeout=300):
    """Runs a script to its end; returns (returncode, log)."""
    proc = launch(script, args, env)
    log, _ = proc.communicate(timeout=timeout)
    if expect_ok and proc.returncode != 0:
        pytest.fail("%s failed:\n%s" % (script, log[-4000:]), pytrace=False)
    return proc.returncode, log


def flags(values):
    return ["--%s=%s" % item for item in sorted(values.items())]


def save_initial_checkpoint(path, build_graph):
    """Writes the trainable variables build_graph() creates (seeded) to ``path``."""
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        build_graph()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return tf.train.Saver(tf.trainable_variables()).save(sess, path)


def assert_same_variables(expected_dir, got_dir):
    """Every variable of the last checkpoints of the two folders is the same (RTOL)."""
    expected, got = (tf.train.latest_checkpoint(d) for d in (expected_dir, got_dir))
    assert expected and got, (expected_dir, got_dir)
    names = dict(tf.train.list_variables(expected))
    assert names == dict(tf.train.list_variables(got))  # same names and shapes
    assert any(name.endswith("/adam_m") for name in names)
    for name in sorted(names):
        want, value = tf.train.load_variable(expected, name), tf.train.load_variable(got, name)
        if NOISE_ONLY in name:
            assert np.max(np.abs(value)) < 1e-6, name
            continue
        scale = max(float(np.max(np.abs(want))), 1e-30)
        assert np.max(np.abs(value - want)) <= RTOL * scale, (
            name, float(np.max(np.abs(value - want))) / scale)
    return tf.train.load_variable(got, "global_step")


def tf_configs(count):
    """TF_CONFIG values of ``count`` workers on 127.0.0.1, worker 0 first."""
    workers = ["127.0.0.1:%d" % port for port in free_ports(count)]
    return [json.dumps({"cluster": {"worker": workers},
                        "task": {"type": "worker", "index": i}}) for i in range(count)]


def run_workers(script, args, count=2, timeout=300):
    """Runs ``count`` workers of one job; returns their logs (worker 0 first)."""
    procs = [launch(script, args, {"TF_CONFIG": config}) for config in tf_configs(count)]
    logs = [proc.communicate(timeout=timeout)[0] for proc in procs]
    for proc, log in zip(procs, logs):
        if proc.returncode != 0:
            pytest.fail("a worker failed:\n%s" % log[-4000:], pytrace=False)
    return logs


# ---------------------------------------------------------------------------------------
# Pretraining


@pytest.fixture(scope="module")
def pretraining(tmp_path_factory):
    """Data, a no-dropout config, an initial checkpoint and one device's STEPS steps."""
    tmp = tmp_path_factory.mktemp("distributed_pretraining")
    config = tmp / "bert_config.json"
    config.write_text(json.dumps(dict(TINY, **NO_DROPOUT)))
    bert_config = load_bert_config(str(config), SEQ)

    def build():
        features = {name: tf.zeros([2, SEQ], tf.int32)
                    for name in ("input_ids", "input_mask", "segment_ids")}
        features.update({name: tf.zeros([2, PREDS], tf.int32)
                         for name in ("masked_lm_positions", "masked_lm_ids")})
        features["masked_lm_weights"] = tf.ones([2, PREDS])
        features["next_sentence_labels"] = tf.zeros([2, 1], tf.int32)
        model_fn = run_pretraining.model_fn_builder(bert_config, None, 1e-3, 10, 2, False,
                                                    False)
        model_fn(features, None, tf.estimator.ModeKeys.EVAL, {})

    init = save_initial_checkpoint(str(tmp / "init" / "model.ckpt"), build)
    values = {"bert_config_file": str(config),
              "input_file": write_records(tmp / "train.tfrecord", 64),
              "max_seq_length": SEQ, "max_predictions_per_seq": PREDS,
              "train_batch_size": 16, "num_train_steps": STEPS, "num_warmup_steps": 2,
              "learning_rate": 1e-3, "seed": 1, "log_every_n_steps": 1,
              "save_checkpoints_steps": 1000, "init_checkpoint": init, "do_train": True}
    one_device = str(tmp / "one_device")
    _, log = run("run_pretraining.py", flags(dict(values, output_dir=one_device)))
    return {"tmp": tmp, "flags": values, "one_device": one_device, "log": log}


def logged_losses(log):
    """[(step, loss, masked_lm_loss, next_sentence_loss)] of the progress lines."""
    return re.findall(r"step (\d+) of \d+ \S+: .*?\bloss = (\S+), .*masked_lm_loss = (\S+), "
                      r"next_sentence_loss = (\S+?),?\s", log)


def test_pretraining_on_two_cpu_replicas_matches_one_device(pretraining):
    out = str(pretraining["tmp"] / "two_replicas")
    _, log = run("run_pretraining.py", flags(dict(pretraining["flags"], output_dir=out,
                                                  num_cpu_replicas=2)))
    assert "mirrored, 2 replica(s) in sync" in log
    assert assert_same_variables(pretraining["one_device"], out) == STEPS
    # The logged losses are the global batch's, as one device logs them.
    losses = logged_losses(log)
    assert len(losses) == STEPS and losses == logged_losses(pretraining["log"])


def test_pretraining_on_two_workers_matches_one_device_and_only_the_chief_saves(
        pretraining):
    out = str(pretraining["tmp"] / "two_workers")
    ordered = str(pretraining["tmp"] / "one_device_ordered")
    run("run_pretraining.py", flags(dict(pretraining["flags"], output_dir=ordered,
                                         shuffle_buffer=1)))
    # Each worker reads its own share of the records: with the input order fixed (one
    # file, no shuffle) the two shares make the batch one device reads.
    chief, worker = run_workers("run_pretraining.py", flags(dict(
        pretraining["flags"], output_dir=out, distribution="multi_worker",
        shuffle_buffer=1)))
    assert "multi_worker, 2 replica(s) in sync" in chief
    assert "this is worker 1 of 2 tasks" in worker
    assert assert_same_variables(ordered, out) == STEPS
    assert "Saving checkpoints for %d" % STEPS in chief
    assert "Saving checkpoints" not in worker
    assert not [name for name in os.listdir(out) if name.startswith("tmp_")]


def wait_for(proc, pattern, log_lines, timeout=240):
    """Reads ``proc``'s output until a line matches ``pattern``; returns the match."""
    deadline = time.time() + timeout
    for line in proc.stdout:
        log_lines.append(line)
        match = re.search(pattern, line)
        if match or time.time() > deadline:
            return match
    return None


@pytest.mark.slow
def test_killing_a_worker_stops_the_job_and_a_restart_resumes(pretraining):
    out = str(pretraining["tmp"] / "killed")
    values = dict(pretraining["flags"], output_dir=out, distribution="multi_worker",
                  num_train_steps=100000, save_checkpoints_steps=20, log_every_n_steps=50,
                  worker_timeout_secs=5)
    configs = tf_configs(2)
    chief = launch("run_pretraining.py", flags(values), {"TF_CONFIG": configs[0]})
    worker = launch("run_pretraining.py", flags(values), {"TF_CONFIG": configs[1]})
    chief_log = []
    try:
        assert wait_for(chief, r"Saving checkpoints for 40 ", chief_log), "".join(chief_log)
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=60)
        rest, _ = chief.communicate(timeout=120)
    finally:
        for proc in (chief, worker):
            if proc.poll() is None:
                proc.kill()
    errors = [line for line in rest.splitlines() if line.startswith("error:")]
    assert chief.returncode == 1, rest[-3000:]
    assert len(errors) == 1, rest[-3000:]
    assert re.match(r"error: worker 1 at 127\.0\.0\.1:\d+ stopped answering", errors[0])
    resume = re.search(r"training resumes from model\.ckpt-(\d+) in ", errors[0])
    step = int(resume.group(1))
    assert step >= 40 and os.path.exists(os.path.join(out, "model.ckpt-%d.index" % step))
    # The same job again (a few more steps): both workers restore the last checkpoint.
    logs = run_workers("run_pretraining.py", flags(dict(values, num_train_steps=step + 10)))
    for log in logs:
        assert "Restoring parameters from %s" % os.path.join(out, "model.ckpt-%d" % step) \
            in log
    assert tf.train.load_variable(tf.train.latest_checkpoint(out), "global_step") == step + 10


def test_fp16_on_two_cpu_replicas_keeps_a_loss_scale_in_the_checkpoint(pretraining):
    out = str(pretraining["tmp"] / "fp16")
    _, log = run("run_pretraining.py", flags(dict(pretraining["flags"], output_dir=out,
                                                  num_cpu_replicas=2, use_fp16=True)),
                 env={distribution.FP16_ON_CPU_VARIABLE: "1"})
    assert re.search(r"step %d of \d+ \S+: .*loss_scale = 3\.277e\+04" % STEPS, log)
    checkpoint = tf.train.latest_checkpoint(out)
    names = dict(tf.train.list_variables(checkpoint))
    assert tf.train.load_variable(checkpoint, "loss_scale") == 2.0 ** 15
    assert tf.train.load_variable(checkpoint, "loss_scale_good_steps") == STEPS
    # Beside the loss scale, the same variables as float32 training on one device.
    expected = dict(tf.train.list_variables(tf.train.latest_checkpoint(
        pretraining["one_device"])))
    assert {k: v for k, v in names.items() if not k.startswith("loss_scale")} == expected
    for name in names:
        assert np.all(np.isfinite(tf.train.load_variable(checkpoint, name))), name


# ---------------------------------------------------------------------------------------
# Fine-tuning


def test_classifier_on_two_cpu_replicas_matches_one_device(tmp_path, data_dir):
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps({
        "hidden_act": "gelu", "hidden_size": 32, "initializer_range": 0.02,
        "intermediate_size": 64, "max_position_embeddings": 64, "num_attention_heads": 2,
        "num_hidden_layers": 2, "type_vocab_size": 2, "vocab_size": 20000, **NO_DROPOUT}))
    data = tmp_path / "data"
    data.mkdir()
    with open(os.path.join(data_dir, "nsmc", "train.tsv"), encoding="utf-8") as handle:
        (data / "train.tsv").write_text("".join(next(handle) for _ in range(65)),
                                        encoding="utf-8")
    bert_config = load_bert_config(str(config), 64)
    init = save_initial_checkpoint(
        str(tmp_path / "init" / "model.ckpt"),
        lambda: classifier_model.build_inference_graph(bert_config, 2))
    values = {"bert_config_file": str(config),
              "vocab_file": os.path.join(ROOT, "vocab", "vocab_20000.txt"),
              "do_lower_case": False, "max_seq_length": 64, "train_batch_size": 16,
              "learning_rate": 1e-3, "num_train_epochs": 1, "task_name": "nsmc",
              "data_dir": str(data), "do_train": True, "init_checkpoint": init}
    one, two = str(tmp_path / "one_device"), str(tmp_path / "two_replicas")
    run("run_classifier.py", flags(dict(values, output_dir=one)))
    _, log = run("run_classifier.py", flags(dict(values, output_dir=two,
                                                 num_cpu_replicas=2)))
    assert "mirrored, 2 replica(s) in sync" in log
    assert assert_same_variables(one, two) == 4  # 64 examples / 16


# ---------------------------------------------------------------------------------------
# Bad input


def one_line_failure(script, args, env=None):
    code, log = run(script, args, env=env, expect_ok=False, timeout=120)
    assert code == 1, log[-3000:]
    lines = [line for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in log, log[-3000:]
    return errors[0]


@pytest.mark.parametrize("script, extra, env, words", [
    ("run_pretraining.py", {"num_gpus": 8}, None, ["--num_gpus=8"]),
    ("run_classifier.py", {"distribution": "multi_worker"},
     {"TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2222"]},
                               "task": {"type": "worker", "index": 1}})},
     ["TF_CONFIG names 127.0.0.1:2222 twice"]),
    ("run_pretraining.py", {"use_tpu": True, "tpu_name": "local"}, None,
     ["--tpu_name=local", "no TPU"]),
])
def test_bad_device_flags_are_one_line_before_any_work(pretraining, script, extra, env,
                                                       words):
    """The other mistakes (fp16 without a GPU, a batch the replicas do not divide, ...)
    go through the same checks: tests/test_distribution.py."""
    if distribution.gpu_count() >= 8 and "num_gpus" in extra:
        pytest.skip("this machine has 8 GPUs")
    refused = str(pretraining["tmp"] / "refused")
    values = dict(pretraining["flags"], output_dir=refused, **extra)
    if script == "run_classifier.py":
        values = {"task_name": "nsmc", "data_dir": str(pretraining["tmp"]), "do_train": True,
                  "vocab_file": os.path.join(ROOT, "vocab", "vocab_20000.txt"),
                  "bert_config_file": values["bert_config_file"], "output_dir": refused,
                  **extra}
    message = one_line_failure(script, flags(values), env=env)
    for word in words:
        assert word in message, message
    assert not os.path.exists(refused)  # refused before any work
