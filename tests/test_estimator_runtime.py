"""krbert.estimator.runtime: the session config and the RunConfig from the TPU flags."""

import types

from krbert.estimator import runtime
from krbert.tf_compat import tf


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
