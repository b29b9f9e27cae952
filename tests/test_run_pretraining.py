"""run_pretraining.py on the CPU with a tiny model, and the TPU/CPU launch scripts.

The data are small random TFRecords written here, in the layout of
create_pretraining_data.py. Training runs as a subprocess, as a user runs it.
"""

import glob
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
from krbert import cli
from krbert.pretraining import records as pretraining_records
from krbert.tf_compat import tf
from tiny_models import flags_for, tiny_config, write_records
from tiny_models import run_pretraining as run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
def progress(log):
    """{step: {name: value}} from the 'step N of T (p%): name = value, ...' progress
    lines."""
    steps = {}
    for match in re.finditer(r"step (\d+) of [\d,]+ \([\d.]+%\): (learning_rate = .*)", log):
        steps[int(match.group(1))] = {k: float(v) for k, v in
                                      re.findall(r"(\w+) = ([-+.\deE]+|nan|inf)", match.group(2))}
    return steps


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """80 steps on 32 repeated records, then an evaluation: (output dir, log)."""
    tmp = tmp_path_factory.mktemp("pretrain")
    data = write_records(tmp / "train.tfrecord", 32)
    out = str(tmp / "out")
    code, log = run(flags_for(tiny_config(tmp), data, out, 80, do_train=True, do_eval=True))
    assert code == 0, log[-3000:]
    return out, log


def test_training_logs_finite_losses_and_learning_rate(trained):
    _, log = trained
    steps = progress(log)
    assert sorted(steps)[:3] == [1, 11, 21], sorted(steps)
    for values in steps.values():
        for name in ("loss", "masked_lm_loss", "next_sentence_loss", "learning_rate"):
            assert np.isfinite(values[name]), values
    assert steps[1]["learning_rate"] == pytest.approx(0.0, abs=1e-9)  # warm-up from 0
    assert steps[11]["learning_rate"] > 0


def test_masked_lm_loss_falls_on_a_repeated_small_dataset(trained):
    steps = progress(trained[1])
    first, last = steps[min(steps)], steps[max(steps)]
    assert first["masked_lm_loss"] > 4.0  # about ln(100) at random initialisation
    assert last["masked_lm_loss"] < 0.7 * first["masked_lm_loss"], (first, last)


def test_training_masked_lm_accuracy_is_logged_and_rises(trained):
    steps = progress(trained[1])
    first, last = steps[min(steps)], steps[max(steps)]
    assert 0.0 <= first["masked_lm_accuracy"] < 0.1, first  # 100 ids at random init
    assert last["masked_lm_accuracy"] > first["masked_lm_accuracy"] + 0.2, (first, last)


def test_batch_masked_lm_accuracy_counts_only_weighted_predictions():
    # 2 examples x 2 predictions over a vocab of 3; the last prediction is padding.
    log_probs = np.log([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.9, 0.05, 0.05]])
    ids = [[0, 2], [2, 1]]
    weights = [[1.0, 1.0], [1.0, 0.0]]
    with tf.Graph().as_default(), tf.Session() as sess:
        accuracy = sess.run(run_pretraining.batch_masked_lm_accuracy(
            tf.constant(log_probs, tf.float32), tf.constant(ids, tf.int32),
            tf.constant(weights, tf.float32)))
    assert accuracy == pytest.approx(2.0 / 3.0)  # right, wrong, right; the padded one ignored


def test_eval_writes_all_results(trained):
    out, _ = trained
    with open(os.path.join(out, "eval_results.txt")) as f:
        results = dict(line.strip().split(" = ") for line in f if line.strip())
    assert set(results) == {"masked_lm_accuracy", "masked_lm_loss", "next_sentence_accuracy",
                            "next_sentence_loss", "loss", "global_step"}
    assert int(results["global_step"]) == 80
    assert 0.0 <= float(results["masked_lm_accuracy"]) <= 1.0
    assert np.isfinite(float(results["loss"]))


def test_tensorboard_gets_loss_and_learning_rate(trained):
    out, _ = trained
    tags = set()
    for path in glob.glob(os.path.join(out, "events.out.tfevents.*")):
        for event in tf.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    assert {"loss", "learning_rate", "masked_lm_loss", "masked_lm_accuracy",
            "next_sentence_loss"} <= tags, tags


def test_tpu_host_call_writes_the_summaries(tmp_path):
    with tf.Graph().as_default():
        global_step = tf.train.get_or_create_global_step()
        loss = 2.5 + tf.cast(global_step, tf.float32)
        host_call_fn, tensors = run_pretraining.summary_host_call(
            str(tmp_path), 10, {"loss": loss, "learning_rate": tf.constant(1e-4)},
            every_n_steps=2)
        summary_ops = host_call_fn(*tensors)
        increment = global_step.assign_add(1)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(tf.get_collection("_SUMMARY_WRITER_V2"))  # what TPUEstimator runs
            for _ in range(5):
                sess.run(summary_ops)
                sess.run(increment)
            sess.run(tf.compat.v2.summary.flush())
    values = {}
    for path in glob.glob(str(tmp_path / "events.out.tfevents.*")):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                values[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    assert values == {("loss", 0): 2.5, ("loss", 2): 4.5, ("loss", 4): 6.5,
                      ("learning_rate", 0): pytest.approx(1e-4),
                      ("learning_rate", 2): pytest.approx(1e-4),
                      ("learning_rate", 4): pytest.approx(1e-4)}


@pytest.mark.parametrize("case, message", [
    ("seq", "input_ids has length 16 but --max_seq_length=24"),
    ("preds", "masked_lm_positions has length 3 but --max_predictions_per_seq=5"),
    ("glob", "matches no file"),
    ("vocab", "outside [0, 100) (vocab_size"),
    ("positions", "--max_seq_length=64 exceeds max_position_embeddings=32"),
    ("rate", "--learning_rate=nan: must be a finite number above 0"),
    ("cut", "d.tfrecord: damaged after byte "),
    ("cut in a header", "d.tfrecord: cut short: its whole records end at byte "),
    ("second file", "e.tfrecord: input_ids has length 24 but --max_seq_length=16"),
    ("folder", "is a folder, not a file; pass the files in it"),
])
def test_bad_input_fails_in_one_line_before_building_the_graph(tmp_path, case, message):
    config = tiny_config(tmp_path)
    data = write_records(tmp_path / "d.tfrecord", 20)
    extra = {"do_train": True}
    if case == "seq":
        extra["max_seq_length"] = 24
    elif case == "preds":
        extra["max_predictions_per_seq"] = 5
    elif case == "glob":
        data = "%s,%s" % (data, tmp_path / "missing-*.tfrecord")
    elif case == "vocab":
        write_records(tmp_path / "d.tfrecord", 20, max_id=150)
    elif case == "positions":
        extra["max_seq_length"] = 64
    elif case == "rate":
        extra["learning_rate"] = "nan"
    elif case in ("cut", "cut in a header"):
        size = os.path.getsize(data)
        last = len(list(tf.io.tf_record_iterator(data))[-1]) + 16
        os.truncate(data, size - 100 if case == "cut" else size - last + 6)
    elif case == "second file":
        data = "%s,%s" % (data, write_records(tmp_path / "e.tfrecord", 20, seq=24))
    elif case == "folder":
        data = str(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "run_pretraining.py")] +
        flags_for(config, data, str(out), 10, **extra),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
        timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert not out.exists()  # failed before anything was written


def latest_step(out):
    path = tf.train.latest_checkpoint(out)
    return int(path.rsplit("-", 1)[1]) if path else None


def test_resumes_after_sigkill_and_stops_at_num_train_steps(tmp_path, kill_after_checkpoint):
    data = write_records(tmp_path / "d.tfrecord", 32)
    out = str(tmp_path / "out")
    args = [sys.executable, os.path.join(ROOT, "run_pretraining.py")] + flags_for(
        tiny_config(tmp_path), data, out, 300, do_train=True)
    killed_at = kill_after_checkpoint(args, out, 10)
    assert 10 <= killed_at < 300

    code, log = run(args[2:])
    assert code == 0, log[-3000:]
    assert "Restoring parameters from %s/model.ckpt-%d" % (out, killed_at) in log
    assert min(progress(log)) == killed_at + 1  # the rerun's first step
    assert latest_step(out) == 300
    assert tf.train.load_variable(out, "global_step") == 300


def run_script(name, env):
    return subprocess.run(["bash", os.path.join(ROOT, "scripts", name)], cwd=ROOT,
                          env=dict(os.environ, **env), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60)


TPU_ENV = {"BUCKET": "gs://krbert-bucket", "TPU_NAME": "krbert-tpu",
           "TPU_ZONE": "europe-west4-a", "GCP_PROJECT": "krbert-project", "DRY_RUN": "1"}


def tpu_vm_command(stdout):
    """The run_pretraining.py command a dry run shows for the TPU VM."""
    lines = stdout.strip().splitlines()
    return [line for line in lines if "run_pretraining.py" in line and
            "gcloud" not in line][-1]


def test_tpu_script_dry_run_creates_a_tpu_vm_and_prints_the_published_run():
    proc = run_script("pretrain_tpu.sh", TPU_ENV)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    create = [line for line in lines if "tpus tpu-vm create" in line]
    assert len(create) == 1
    for flag in ("krbert-tpu", "--accelerator-type=v3-8", "--version=tpu-vm-tf-2.15.1-se",
                 "--zone=europe-west4-a", "--project=krbert-project"):
        assert flag in create[0].split(), (flag, create[0])
    assert any("tpus tpu-vm scp" in line for line in lines)
    ssh = [line for line in lines if "tpus tpu-vm ssh" in line and "--command=" in line]
    assert ssh and "TPU_VM=1\\ TF=2\\ scripts/setup.sh" in ssh[0], ssh
    command = tpu_vm_command(proc.stdout)
    for flag in ("--num_train_steps=2000000", "--train_batch_size=64",
                 "--learning_rate=1e-4", "--max_seq_length=128", "--num_tpu_cores=8",
                 "--num_warmup_steps=10000", "--max_predictions_per_seq=20",
                 "--use_tpu=true", "--tpu_name=local", "--tpu_zone=europe-west4-a",
                 "--gcp_project=krbert-project", "--do_train=true",
                 "--bert_config_file=vocab/bert_config_medium.json"):
        assert flag in command.split(), (flag, command)
    assert re.search(r"--input_file=gs://krbert-bucket/\S+", command)
    assert "--output_dir=gs://krbert-bucket/" in command


def test_tpu_script_drives_a_pod_slice_from_worker_0_by_its_name():
    proc = run_script("pretrain_tpu.sh", dict(TPU_ENV, ACCELERATOR="v3-32"))
    assert proc.returncode == 0, proc.stderr
    assert "--version=tpu-vm-tf-2.15.1-pod-se" in proc.stdout.split()
    command = tpu_vm_command(proc.stdout).split()
    assert "--tpu_name=krbert-tpu" in command and "--num_tpu_cores=32" in command
    refused = run_script("pretrain_tpu.sh", dict(TPU_ENV, ACCELERATOR="v5p-8"))
    assert refused.returncode != 0 and "90807" in refused.stderr


def test_tpu_script_on_the_tpu_vm_sets_up_and_runs_there():
    proc = run_script("pretrain_tpu.sh", dict(TPU_ENV, ON_TPU_VM="1"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "TPU_VM=1 TF=2 scripts/setup.sh"
    assert "gcloud" not in proc.stdout
    assert "--tpu_name=local" in tpu_vm_command(proc.stdout).split()


def test_setup_refuses_a_tpu_vm_setup_without_tensorflow_2_15_in_one_line(tmp_path):
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "setup.sh")], cwd=ROOT,
                          env=dict(os.environ, TPU_VM="1", TF="2",
                                   VENV_TPU=str(tmp_path / "venv"),
                                   PATH="%s:%s" % (tmp_path, os.environ["PATH"])),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    if proc.returncode == 0:
        pytest.skip("this machine's python3 has TensorFlow 2.15: a TPU VM image?")
    assert proc.stderr.strip().splitlines()[-1].startswith("setup.sh: TPU_VM=1")
    assert "tpu-vm-tf-2.15.1-se" in proc.stderr
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize("missing", ["BUCKET", "TPU_NAME"])
def test_tpu_script_fails_clearly_without_its_settings(missing):
    env = dict(TPU_ENV)
    env[missing] = ""
    proc = run_script("pretrain_tpu.sh", env)
    assert proc.returncode != 0
    assert proc.stderr.startswith("error: %s is not set" % missing), proc.stderr
    assert "run_pretraining.py" not in proc.stdout


def test_cpu_script_needs_input():
    proc = run_script("pretrain_cpu.sh", {"INPUT": ""})
    assert proc.returncode != 0
    assert proc.stderr.startswith("error: INPUT is not set"), proc.stderr


def test_eval_results_survive_a_full_disk_whole(tmp_path):
    """Writes beyond 40 bytes fail (EFBIG, as on a full disk): the previous results stay."""
    import resource
    path = run_pretraining.write_eval_results({"loss": 1.5, "global_step": 10}, str(tmp_path))
    before = open(path).read()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (40, hard))
    try:
        with pytest.raises(cli.InputError) as error:
            run_pretraining.write_eval_results(
                {"loss": 1.25, "global_step": 20, "masked_lm_accuracy": 0.5,
                 "masked_lm_loss": 2.0, "next_sentence_accuracy": 0.75}, str(tmp_path))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert str(error.value).startswith("%s: could not be written (" % path)
    assert open(path).read() == before
    assert os.listdir(str(tmp_path)) == ["eval_results.txt"]


def test_eval_with_no_checkpoint_and_no_training_is_refused(tmp_path):
    data = write_records(tmp_path / "d.tfrecord", 20)
    out = tmp_path / "out"
    code, log = run(flags_for(tiny_config(tmp_path), data, str(out), 10, do_eval=True))
    assert code == 1 and "Traceback" not in log
    assert log.strip().splitlines()[-1] == (
        "error: --do_eval without --do_train: --output_dir=%s holds no checkpoint, so there is "
        "no trained model to score; pass --init_checkpoint=..., or the --output_dir of a trained "
        "run" % out)


def test_the_sidecar_of_create_pretraining_data_vouches_for_a_file_cheaply(tmp_path):
    from krbert.pretraining import pipeline
    golden = os.path.join(ROOT, "tests", "fixtures", "pretraining_golden")
    settings = {"do_lower_case": False, "do_whole_word_mask": False, "max_seq_length": 32,
                "max_predictions_per_seq": 5, "random_seed": 1, "dupe_factor": 1,
                "masked_lm_prob": 0.15, "short_seq_prob": 0.1, "tokenizer": "wordpiece",
                "subchar": False}
    output = str(tmp_path / "c.tfrecord")
    pipeline.run(os.path.join(golden, "corpus.txt"), output,
                 os.path.join(golden, "vocab.txt"), settings, num_workers=1,
                 show_progress=False, in_process=True)
    assert os.path.exists(output + ".json")
    assert pretraining_records.check_file_is_whole(output, 32, 5) is False  # not read through
    with pytest.raises(cli.InputError) as error:
        pretraining_records.check_file_is_whole(output, 24, 5)
    assert str(error.value) == (
        "%s was made with --max_seq_length=32 (%s.json) but --max_seq_length=24; pass "
        "--max_seq_length=32 or regenerate the data with --max_seq_length=24" % (output, output))
    size = os.path.getsize(output)
    os.truncate(output, size - 100)
    with pytest.raises(cli.InputError) as error:
        pretraining_records.check_file_is_whole(output, 32, 5)
    assert str(error.value) == (
        "%s has %d bytes but %s.json records %d: it was cut short or changed; regenerate it "
        "with create_pretraining_data.py" % (output, size - 100, output, size))
    os.remove(output + ".json")
    with pytest.raises(cli.InputError, match="damaged after byte"):
        pretraining_records.check_file_is_whole(output, 32, 5)


@pytest.mark.parametrize("script", ["run_pretraining.py", "run_classifier.py"])
def test_unreachable_cloud_storage_fails_at_once_in_one_line(tmp_path, script):
    """gs:// paths through an https proxy that refuses connections (nothing listens on port
    9): one line naming the path, not TensorFlow's minutes of retries and a traceback."""
    bucket = "gs://krbert-test-bucket/out"
    args = ["--output_dir=%s" % bucket, "--do_train", "--bert_config_file=%s" %
            tiny_config(tmp_path)]
    if script == "run_pretraining.py":
        args.append("--input_file=%s" % write_records(tmp_path / "d.tfrecord", 4))
    else:
        args += ["--task_name=nsmc", "--data_dir=%s" % tmp_path,
                 "--vocab_file=%s" % os.path.join(ROOT, "vocab", "vocab_20000.txt")]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, script)] + args, cwd=ROOT,
                          env=dict(os.environ, https_proxy="http://127.0.0.1:9"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: %s: Cloud Storage cannot be reached through the https proxy (127.0.0.1:9: "
        "Connection refused); check the network, or use local paths" % bucket)


# ---------------------------------------------------------------------------------------
# Resuming only the same run; one run per --output_dir.

def last_error(log):
    """The log's last line, which must be its only 'error:' line."""
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and log.strip().splitlines()[-1] == errors[0], log[-3000:]
    return errors[0]


def test_a_rerun_with_other_settings_is_refused_and_the_same_settings_resume(tmp_path):
    data = write_records(tmp_path / "d.tfrecord", 32)
    config = tiny_config(tmp_path)
    out = str(tmp_path / "out")
    code, log = run(flags_for(config, data, out, 10, do_train=True))
    assert code == 0, log[-3000:]
    assert latest_step(out) == 10
    with open(os.path.join(out, "training_settings.json")) as handle:
        recorded = json.load(handle)
    assert recorded["input_files"]["d.tfrecord"]["bytes"] == os.path.getsize(data)
    assert recorded["learning_rate"] == 2e-3 and recorded["bert_config"]["hidden_size"] == 32

    refused = "error: --output_dir=%s holds a model trained with other settings (" % out
    other = tmp_path / "other"
    other.mkdir()
    cases = [
        ({"learning_rate": 3e-3}, "learning_rate was 0.002, now 0.003)"),
        ({"input_file": write_records(other / "e.tfrecord", 32)},
         "input_files.d.tfrecord was {"),
        ({"bert_config_file": tiny_config(other, intermediate_size=48)},
         "bert_config.intermediate_size was 64, now 48)"),
        ({"max_predictions_per_seq": 4, "input_file": write_records(
            other / "p.tfrecord", 32, preds=4)}, "input_files.d.tfrecord was {"),
    ]
    for extra, difference in cases:
        code, log = run(flags_for(config, data, out, 20, do_train=True, **extra))
        assert code == 1 and "Traceback" not in log, log[-3000:]
        assert last_error(log).startswith(refused) and difference in last_error(log), \
            last_error(log)
    os.rename(data, data + ".kept")
    write_records(data, 32, seed=1)  # regenerated: same name, same size, other records
    code, log = run(flags_for(config, data, out, 20, do_train=True))
    assert code == 1 and "input_files.d.tfrecord.sha256 was " in last_error(log), log[-3000:]
    code, log = run(flags_for(config, data, out, 10, do_eval=True, bert_config_file=tiny_config(
        other, intermediate_size=48)))
    assert code == 1 and last_error(log).startswith(refused + "bert_config.intermediate_size "
                                                              "was 64, now 48); pass the flags")
    assert latest_step(out) == 10

    os.replace(data + ".kept", data)  # the same records again: the run resumes
    code, log = run(flags_for(config, data, out, 20, do_train=True))
    assert code == 0, log[-3000:]
    assert "Restoring parameters from %s/model.ckpt-10" % out in log
    assert min(progress(log)) == 11 and latest_step(out) == 20

    code, log = run(flags_for(config, data, out, 15, do_train=True))
    assert code == 0, log[-3000:]
    assert ("--output_dir=%s already holds step 20, not below --num_train_steps=15: nothing "
            "to train; raise --num_train_steps to train on" % out) in log
    assert latest_step(out) == 20


def in_use_markers(folder):
    return [name for name in os.listdir(folder) if name.startswith("in_use.tmp-")] \
        if os.path.isdir(folder) else []


def wait_for_marker(folder, process, timeout=120):
    """Waits until ``process`` marks ``folder`` in use, then stops it (SIGSTOP): it keeps
    the folder while another run is tried."""
    deadline = time.time() + timeout
    while not in_use_markers(folder):
        assert process.poll() is None and time.time() < deadline, "no in_use marker"
        time.sleep(0.05)
    process.send_signal(signal.SIGSTOP)


def test_a_second_run_into_a_folder_in_use_stops_and_a_dead_runs_marker_does_not_block(
        tmp_path):
    data = write_records(tmp_path / "d.tfrecord", 32)
    out = str(tmp_path / "out")
    args = flags_for(tiny_config(tmp_path), data, out, 300, do_train=True)
    first = subprocess.Popen([sys.executable, os.path.join(ROOT, "run_pretraining.py")] + args,
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_marker(out, first)
        marker = in_use_markers(out)[0]
        code, log = run(args)
        assert code == 1 and "Traceback" not in log, log[-3000:]
        assert last_error(log) == (
            "error: --output_dir=%s is in use by another run (process %d on %s, marker %s); "
            "wait for it to finish or choose another --output_dir"
            % (out, first.pid, marker.split(".tmp-")[1].rsplit(".", 1)[0], marker))
        assert in_use_markers(out) == [marker]
    finally:
        first.kill()  # SIGKILL: its marker stays behind
        first.wait()
    assert in_use_markers(out) == [marker]
    code, log = run(args + ["--num_train_steps=10"])
    assert code == 0, log[-3000:]
    assert latest_step(out) == 10 and in_use_markers(out) == []
