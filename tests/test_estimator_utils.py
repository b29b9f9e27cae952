"""The shared TPUEstimator plumbing and the TF 1/2 import."""

import os

import pytest

import cli
import estimator_utils
from tf_compat import IS_TF2, TF_VERSION, tf, tpu_estimator


def test_tf_compat_gives_the_v1_api_on_both_versions():
    assert TF_VERSION.startswith("2.15" if IS_TF2 else "1.15")
    assert not tf.executing_eagerly()
    assert hasattr(tf, "placeholder") and hasattr(tf, "Session")
    assert tpu_estimator.TPUEstimator.__name__ == "TPUEstimator"


def test_glob_input_files_expands_comma_separated_globs(tmp_path):
    for name in ("a-1.tfrecord", "a-2.tfrecord", "b.tfrecord"):
        (tmp_path / name).write_bytes(b"")
    pattern = "%s/a-*.tfrecord, %s/b.tfrecord" % (tmp_path, tmp_path)
    files = estimator_utils.glob_input_files(pattern)
    assert [os.path.basename(f) for f in files] == ["a-1.tfrecord", "a-2.tfrecord", "b.tfrecord"]


def test_glob_input_files_names_the_pattern_that_matches_nothing(tmp_path):
    (tmp_path / "a.tfrecord").write_bytes(b"")
    missing = str(tmp_path / "nope-*.tfrecord")
    with pytest.raises(cli.InputError, match="nope-"):
        estimator_utils.glob_input_files("%s/a.tfrecord,%s" % (tmp_path, missing))


def test_session_config_turns_on_xla_only_when_asked():
    assert estimator_utils.session_config().graph_options.optimizer_options.global_jit_level == 0
    jit = estimator_utils.session_config(xla_jit=True)
    assert jit.graph_options.optimizer_options.global_jit_level == tf.OptimizerOptions.ON_1


def test_run_config_is_local_without_a_tpu_name(tmp_path):
    config = estimator_utils.make_run_config(str(tmp_path), use_tpu=False,
                                             iterations_per_loop=7, save_checkpoints_steps=9)
    assert config.model_dir == str(tmp_path)
    assert config.tpu_config.iterations_per_loop == 7
    assert config.save_checkpoints_steps == 9
    assert config.cluster is None


def test_ensure_output_dir_fails_in_one_line_when_it_cannot_create(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text(u"x")
    with pytest.raises(cli.InputError, match="cannot be created"):
        estimator_utils.ensure_output_dir(str(blocker / "sub"))
    estimator_utils.ensure_output_dir(str(tmp_path / "new" / "dir"))
    assert (tmp_path / "new" / "dir").is_dir()
