"""The shared TPUEstimator plumbing and the TF 1/2 import."""

import os
import socket
import subprocess
import time
import types

import pytest

from krbert import cli
from krbert.checkpoints import restore
from krbert.estimator import run_folder, runtime
from krbert.files import atomic, in_use
from krbert.tf_compat import IS_TF2, TF_VERSION, tf, tpu_estimator


def test_tf_compat_gives_the_v1_api_on_both_versions():
    assert TF_VERSION.startswith("2.15" if IS_TF2 else "1.15")
    assert not tf.executing_eagerly()
    assert hasattr(tf, "placeholder") and hasattr(tf, "Session")
    assert tpu_estimator.TPUEstimator.__name__ == "TPUEstimator"




def test_session_config_turns_on_xla_only_when_asked():
    assert runtime.session_config().graph_options.optimizer_options.global_jit_level == 0
    jit = runtime.session_config(xla_jit=True)
    assert jit.graph_options.optimizer_options.global_jit_level == tf.OptimizerOptions.ON_1


def test_run_config_is_local_without_a_tpu_name(tmp_path):
    config = runtime.make_run_config(str(tmp_path), use_tpu=False,
                                     iterations_per_loop=7, save_checkpoints_steps=9)
    assert config.model_dir == str(tmp_path)
    assert config.tpu_config.iterations_per_loop == 7
    assert config.save_checkpoints_steps == 9
    assert config.cluster is None


def test_ensure_output_dir_fails_in_one_line_when_it_cannot_create(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text(u"x")
    with pytest.raises(cli.InputError, match="cannot be created"):
        run_folder.ensure_output_dir(str(blocker / "sub"))
    run_folder.ensure_output_dir(str(tmp_path / "new" / "dir"))
    assert (tmp_path / "new" / "dir").is_dir()


def save_checkpoint(prefix, **shapes):
    with tf.Graph().as_default():
        for name, shape in shapes.items():
            tf.get_variable(name.replace("__", "/"), shape)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return tf.train.Saver().save(sess, prefix)


@pytest.mark.parametrize("case, message", [
    ("missing", "--init_checkpoint=PATH not found; give a checkpoint prefix"),
    ("text file", "--init_checkpoint=PATH is not a TensorFlow checkpoint (Unable to open table"),
    ("empty folder", "--init_checkpoint=PATH is not a TensorFlow checkpoint (Couldn't find"),
    ("index file", "--init_checkpoint=PATH holds no variable; give the prefix, without the "
                   ".index or .data-* suffix"),
])
def test_an_init_checkpoint_that_is_no_checkpoint_is_one_line(tmp_path, case, message):
    path = str(tmp_path / "model.ckpt")
    if case == "text file":
        (tmp_path / "model.ckpt").write_text(u"not a checkpoint")
    elif case == "empty folder":
        path = str(tmp_path)
    elif case == "index file":
        path = save_checkpoint(path, bert__w=[2, 3]) + ".index"
    with pytest.raises(cli.InputError) as error:
        restore.checkpoint_shapes(path)
    assert str(error.value).startswith(message.replace("PATH", path)), str(error.value)


def test_warm_start_names_the_variable_and_both_shapes_when_they_differ(tmp_path):
    prefix = save_checkpoint(str(tmp_path / "model.ckpt"), bert__a=[4], bert__w=[3, 4])
    with tf.Graph().as_default():
        tf.get_variable("bert/a", [4])
        tf.get_variable("bert/w", [3, 5])
        with pytest.raises(cli.InputError) as error:
            restore.warm_start(prefix, use_tpu=False)
    assert str(error.value) == (
        "--init_checkpoint=%s: variable bert/w has shape [3, 4] in the checkpoint but [3, 5] in "
        "this model; use the --bert_config_file the checkpoint was trained with" % prefix)
    with tf.Graph().as_default():  # matching shapes load
        tf.get_variable("bert/a", [4])
        tf.get_variable("bert/w", [3, 4])
        restore.warm_start(prefix, use_tpu=False)


def test_run_config_from_flags_reads_the_tpu_flags_and_takes_further_settings(tmp_path):
    FLAGS = types.SimpleNamespace(
        output_dir=str(tmp_path), use_tpu=False, tpu_name=None, tpu_zone=None,
        gcp_project=None, master=None, num_tpu_cores=8, iterations_per_loop=5,
        save_checkpoints_steps=7, log_every_n_steps=3)
    config = runtime.run_config_from_flags(FLAGS, runtime.session_config(),
                                           keep_checkpoint_max=2, tf_random_seed=11)
    assert config.model_dir == str(tmp_path) and config.cluster is None
    assert config.save_checkpoints_steps == 7 and config.tpu_config.iterations_per_loop == 5
    assert config.log_step_count_steps == 15  # on the CPU one session run is one step
    assert config.keep_checkpoint_max == 2 and config.tf_random_seed == 11
    FLAGS.use_tpu = True
    assert runtime.run_config_from_flags(FLAGS, None).log_step_count_steps == 3


def test_ensure_output_dir_refuses_a_folder_a_live_run_uses_and_clears_what_dead_runs_left(
        tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    tf1_write = out / ("model.ckpt-20_temp_%s" % ("0123456789abcdef" * 2))
    tf2_write = out / "model.ckpt-30_temp"
    for folder in (tf1_write, tf2_write):
        folder.mkdir()
        (folder / "part-00000-of-00001.index").write_bytes(b"x")
    host = socket.gethostname().split(".")[0]

    def temporary(name, pid):
        return out / ("%s%s%s.%d" % (name, atomic.TMP_MARK, host, pid))

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = temporary("eval_results.txt", dead.pid)
    stale.write_text(u"half")
    dead_marker = temporary(run_folder.IN_USE, dead.pid)  # a run killed while it held out/
    dead_marker.write_text(u"")
    kept = ["model.ckpt-30.index", "model.ckpt-30.data-00000-of-00001", "checkpoint",
            "eval_results.txt"]
    for name in kept:
        (out / name).write_text(u"x")
    before = sorted(os.listdir(str(out)))

    live = subprocess.Popen(["sleep", "60"])
    try:
        temporary(run_folder.IN_USE, live.pid).write_text(u"")  # another live run uses out/
        with pytest.raises(cli.InputError) as error:
            run_folder.ensure_output_dir(str(out))
        assert str(error.value) == (
            "--output_dir=%s is in use by another run (process %d on %s, marker %s); wait for "
            "it to finish or choose another --output_dir"
            % (out, live.pid, host, temporary(run_folder.IN_USE, live.pid).name))
        assert sorted(os.listdir(str(out))) == sorted(
            [name for name in before if name != dead_marker.name] +
            [temporary(run_folder.IN_USE, live.pid).name])  # nothing else touched
    finally:
        live.kill()
        live.wait()
    run_folder.ensure_output_dir(str(out))  # that run is gone: its writes are cleared
    mine = temporary(run_folder.IN_USE, os.getpid()).name
    assert sorted(os.listdir(str(out))) == sorted(kept + [mine])


def test_of_two_runs_claiming_one_folder_the_older_marker_holds_it(tmp_path):
    host = socket.gethostname().split(".")[0]
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        newer = tmp_path / ("in_use%s%s.%d" % (atomic.TMP_MARK, host, sleeper.pid))
        newer.write_text(u"")
        os.utime(str(newer), (time.time() + 60, time.time() + 60))  # claimed after this run
        marker = in_use.claim(str(tmp_path), "--output_dir")  # this run was first: it holds
        assert os.path.exists(marker) and newer.exists()
        os.utime(str(newer), (time.time() - 60, time.time() - 60))  # claimed before it
        with pytest.raises(cli.InputError, match="is in use by another run"):
            in_use.claim(str(tmp_path), "--output_dir")
        assert not os.path.exists(marker) and newer.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_other_workers_of_a_job_share_the_folder_their_chief_holds(tmp_path):
    out = tmp_path / "out"
    writing = out / "model.ckpt-20_temp"  # the chief's checkpoint being written
    writing.mkdir(parents=True)
    host = socket.gethostname().split(".")[0]
    chief = subprocess.Popen(["sleep", "60"])
    try:
        marker = out / ("in_use%s%s.%d" % (atomic.TMP_MARK, host, chief.pid))
        marker.write_text(u"")
        run_folder.ensure_output_dir(str(out), chief=False)  # a worker of the same job
        assert sorted(os.listdir(str(out))) == sorted([marker.name, writing.name])
        with pytest.raises(cli.InputError, match="is in use by another run"):
            run_folder.ensure_output_dir(str(out))  # another job's chief
    finally:
        chief.kill()
        chief.wait()
