"""The training log line (krbert/estimator/progress.py) and run_pretraining.py's flag checks
for large batches, in-process."""

import types

import pytest

import run_pretraining
from krbert import cli
from krbert.estimator import progress
from krbert.tf_compat import tf


def test_the_line_has_the_step_of_the_total_the_share_done_and_an_eta():
    line = progress.progress_line(51, 2000000, {"loss": 7.3125, "learning_rate": 1e-4},
                                  seconds_per_step=0.5, examples_per_step=256)
    # 1,999,949 steps left at 0.5 s: 999,974.5 s = 11 days 13:46:14 (rounded).
    assert line == ("step 51 of 2,000,000 (0.0%): learning_rate = 0.0001, loss = 7.312, "
                    "examples/s = 512.0, ETA 11d 13:46:14")
    assert progress.progress_line(5, 10, {}) == "step 5 of 10 (50.0%): "


def test_the_average_step_time_moves_slowly():
    average = progress.MovingAverage(0.9)
    assert average.add(1.0) == 1.0
    assert average.add(2.0) == pytest.approx(1.1)


def test_the_hook_logs_updates_not_runs_and_writes_steps_per_sec(tmp_path, caplog):
    """Two runs per update (as with gradient accumulation): one line per logged update."""
    with tf.Graph().as_default():
        global_step = tf.train.get_or_create_global_step()
        runs = tf.get_variable("runs", initializer=0, use_resource=True)
        count = runs.assign_add(1)
        with tf.control_dependencies([count]):
            train_op = global_step.assign_add(tf.cast(tf.equal(count % 2, 0), tf.int64))
        hook = progress.ProgressHook({"loss": tf.constant(2.5)}, 10, 2, 4, str(tmp_path))
        lines = []
        original = tf.logging.info
        tf.logging.info = lambda message, *args: lines.append(message % args if args else
                                                              message)
        try:
            with tf.train.MonitoredSession(hooks=[hook]) as sess:
                for _ in range(10):
                    sess.run(train_op)
        finally:
            tf.logging.info = original
        tf.summary.FileWriterCache.get(str(tmp_path)).flush()
    assert [line.split(":")[0] for line in lines] == [
        "step 1 of 10 (10.0%)", "step 3 of 10 (30.0%)", "step 5 of 10 (50.0%)"]
    assert "ETA" not in lines[0] and "ETA" in lines[-1] and "loss = 2.5" in lines[-1]
    tags = set()
    for path in tmp_path.iterdir():
        for event in tf.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    assert tags == {"steps_per_sec"}


def flag_values(**values):
    """The flags check_flags reads, at run_pretraining.py's defaults, with ``values``."""
    defaults = {name: run_pretraining.flags.FLAGS[name].default
                for name in run_pretraining.flags.FLAGS if name in (
                    "max_seq_length", "max_predictions_per_seq", "train_batch_size",
                    "eval_batch_size", "num_train_steps", "save_checkpoints_steps",
                    "iterations_per_loop", "log_every_n_steps", "gradient_accumulation_steps",
                    "learning_rate", "optimizer", "use_tpu", "distribution", "num_gpus",
                    "num_cpu_replicas", "use_fp16", "use_bfloat16", "bert_config_file",
                    "input_file", "eval_input_file", "output_dir", "init_checkpoint",
                    "tpu_name", "master")}
    defaults.update(do_train=True, do_eval=False)
    defaults.update(values)
    return types.SimpleNamespace(**defaults)


@pytest.mark.parametrize("values, words", [
    ({"optimizer": "sgd"}, "--optimizer=sgd: use adamw or lamb"),
    ({"gradient_accumulation_steps": 0}, "--gradient_accumulation_steps must be positive"),
    ({"gradient_accumulation_steps": 3, "train_batch_size": 32},
     "--train_batch_size=32 is not a multiple of --gradient_accumulation_steps=3"),
    ({"gradient_accumulation_steps": 2, "use_tpu": True},
     "--gradient_accumulation_steps=2 is for the CPU and GPUs"),
])
def test_large_batch_flags_are_checked_in_one_line(values, words):
    with pytest.raises(cli.InputError) as refused:
        run_pretraining.check_flags(flag_values(**values))
    assert words in str(refused.value)
    assert "\n" not in str(refused.value)
