"""The estimator runtime shared by the training scripts: the TPU flags, the session
config, the RunConfig and the estimator.

- One device or a TPU: a TPUEstimator (with ``--use_tpu=false`` it falls back to the CPU
  or a GPU on the same code path). ``--tpu_name=local``, or ``--use_tpu`` on a TPU VM,
  drives the TPU attached to this machine (tpu_vm.py).
- Several devices or machines (distribution.py): a tf.estimator.Estimator whose RunConfig
  has ``train_distribute``, wrapped in StrategyEstimator so that the scripts use it as
  they use the TPUEstimator (same model_fn, input_fn(params) with global batches).
"""

import contextlib
import os

from krbert.estimator import cluster as cluster_lib
from krbert.estimator import distribution as distribution_lib
from krbert.estimator import tpu_vm
from krbert.tf_compat import release_coordinator_server, tf, tpu_estimator


def define_tpu_flags(flags):
    """Defines the original BERT release's TPU and checkpointing flags on ``flags``."""
    flags.DEFINE_bool("use_tpu", False, "Whether to use TPU or GPU/CPU.")
    flags.DEFINE_string(
        "tpu_name", None,
        "The Cloud TPU to use for training. This should be either the name used when "
        "creating the Cloud TPU, or a grpc://ip.address.of.tpu:8470 url.")
    flags.DEFINE_string(
        "tpu_zone", None,
        "[Optional] GCE zone where the Cloud TPU is located in. If not specified, we "
        "will attempt to automatically detect it from metadata.")
    flags.DEFINE_string(
        "gcp_project", None,
        "[Optional] Project name for the Cloud TPU-enabled project. If not specified, "
        "we will attempt to automatically detect it from metadata.")
    flags.DEFINE_string("master", None, "[Optional] TensorFlow master URL.")
    flags.DEFINE_integer(
        "num_tpu_cores", 8,
        "Only used if `use_tpu` is True. Total number of TPU cores to use.")
    flags.DEFINE_integer("save_checkpoints_steps", 1000,
                         "How often to save the model checkpoint.")
    flags.DEFINE_integer("iterations_per_loop", 1000,
                         "How many steps to make in each estimator call.")


def check_device_flags(FLAGS, batch_sizes):
    """Checks the TPU and tf.distribute flags before any work (each mistake one line);
    returns the Distribution (distribution.from_flags) or None.

    Call early in main(), before any session: a distribution may split the CPU into
    logical devices or hide GPUs; --use_tpu fails here at once with no TPU to drive
    (--tpu_name=local or no --tpu_name off a TPU VM) or a named TPU that cannot be
    looked up.
    """
    distribution = distribution_lib.from_flags(FLAGS, batch_sizes)
    if distribution is not None and distribution.cluster is not None:
        # How long train() waits for the other tasks to join (cluster_lib.PeerWatch).
        distribution.start_timeout = cluster_lib.start_timeout_from_flags(FLAGS)
    check_tpu_flags(FLAGS)
    return distribution


def check_tpu_flags(FLAGS):
    """With --use_tpu, InputError (one line) unless there is a TPU to drive: none named
    off a TPU VM (or --tpu_name=local there), or a named TPU that cannot be looked up.

    For the scripts without tf.distribute flags (extract_features.py); call it early in
    main(), before any work.
    """
    if FLAGS.use_tpu:
        tpu_name = tpu_vm.require_tpu(FLAGS.tpu_name, FLAGS.master)
        if tpu_name and tpu_name != tpu_vm.LOCAL:
            # A named Cloud TPU is looked up now, not after the input is read.
            tpu_vm.cluster_resolver(tpu_name, FLAGS.tpu_zone, FLAGS.gcp_project)


def session_config(xla_jit=False, intra_op_threads=0, inter_op_threads=0):
    """A ConfigProto for CPU runs: thread pools and, optionally, XLA JIT compilation."""
    config = tf.ConfigProto(allow_soft_placement=True,
                            intra_op_parallelism_threads=intra_op_threads,
                            inter_op_parallelism_threads=inter_op_threads)
    if xla_jit:
        config.graph_options.optimizer_options.global_jit_level = (
            tf.OptimizerOptions.ON_1)
    return config


def make_run_config(output_dir, use_tpu, tpu_name=None, tpu_zone=None, gcp_project=None,
                    master=None, num_tpu_cores=8, iterations_per_loop=1000,
                    save_checkpoints_steps=1000, keep_checkpoint_max=5, config_proto=None,
                    log_step_count_steps=100):
    """The TPU RunConfig: a Cloud TPU when ``use_tpu`` and ``tpu_name``, the TPU of this
    TPU VM with ``tpu_name="local"`` (or none on a TPU VM), else local."""
    cluster = None
    if use_tpu:
        tpu_name = tpu_vm.resolve_tpu_name(tpu_name, master)
    if use_tpu and tpu_name:
        cluster = tpu_vm.cluster_resolver(tpu_name, tpu_zone, gcp_project)
    return tpu_estimator.RunConfig(
        cluster=cluster,
        master=master,
        model_dir=output_dir,
        save_checkpoints_steps=save_checkpoints_steps,
        keep_checkpoint_max=keep_checkpoint_max,
        session_config=config_proto,
        log_step_count_steps=log_step_count_steps,
        tpu_config=tpu_estimator.TPUConfig(
            iterations_per_loop=iterations_per_loop,
            num_shards=num_tpu_cores,
            per_host_input_for_training=tpu_estimator.InputPipelineConfig.PER_HOST_V2))


def run_config_from_flags(FLAGS, config_proto, distribution=None, **options):
    """The RunConfig of the flags: --output_dir, --log_every_n_steps and the TPU flags;
    with a ``distribution`` (distribution.from_flags) the Estimator's RunConfig with its
    strategy as train_distribute.

    ``options`` are further RunConfig settings (keep_checkpoint_max, tf_random_seed,
    save_summary_steps, ...).
    """
    # The estimator logs steps/s every log_step_count_steps session runs (one step each
    # on the CPU or GPUs, iterations_per_loop on the TPU); the scripts' own progress
    # lines come every --log_every_n_steps.
    log_step_count_steps = FLAGS.log_every_n_steps * (
        1 if FLAGS.use_tpu else FLAGS.iterations_per_loop)
    if distribution is not None:
        return strategy_run_config(FLAGS.output_dir, distribution, config_proto,
                                   save_checkpoints_steps=FLAGS.save_checkpoints_steps,
                                   log_step_count_steps=log_step_count_steps, **options)
    run_config = make_run_config(
        FLAGS.output_dir, FLAGS.use_tpu, tpu_name=FLAGS.tpu_name, tpu_zone=FLAGS.tpu_zone,
        gcp_project=FLAGS.gcp_project, master=FLAGS.master,
        num_tpu_cores=FLAGS.num_tpu_cores, iterations_per_loop=FLAGS.iterations_per_loop,
        save_checkpoints_steps=FLAGS.save_checkpoints_steps, config_proto=config_proto,
        log_step_count_steps=log_step_count_steps)
    return run_config.replace(**options) if options else run_config


@contextlib.contextmanager
def _without_tf_config():
    """TF_CONFIG hidden from a RunConfig made inside (it reads the cluster from it)."""
    saved = os.environ.pop("TF_CONFIG", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["TF_CONFIG"] = saved


def strategy_run_config(output_dir, distribution, config_proto, save_checkpoints_steps=1000,
                        log_step_count_steps=100, train=True, **options):
    """A tf.estimator.RunConfig: with ``train``, training under the distribution's
    strategy (only the chief saves checkpoints and summaries); else one device, for
    evaluation and prediction (no cluster)."""
    settings = dict(model_dir=output_dir, session_config=config_proto,
                    save_checkpoints_steps=save_checkpoints_steps,
                    log_step_count_steps=log_step_count_steps, **options)
    if not train:
        with _without_tf_config():
            return tf.estimator.RunConfig(**settings)
    if not distribution.is_chief:
        # Left to themselves, the other workers would write summaries and checkpoints to
        # tmp_worker_N/ folders inside the chief's output folder.
        settings.update(save_checkpoints_steps=None, save_checkpoints_secs=None,
                        save_summary_steps=0, log_step_count_steps=None)
    return tf.estimator.RunConfig(train_distribute=distribution.strategy(), **settings)


def make_estimator(model_fn, run_config, use_tpu, train_batch_size, eval_batch_size=8,
                   predict_batch_size=8, distribution=None):
    """A TPUEstimator (with ``use_tpu=False`` it runs on the CPU or a GPU), or with a
    ``distribution`` a StrategyEstimator used the same way."""
    if distribution is not None:
        return StrategyEstimator(model_fn, run_config, distribution, train_batch_size,
                                 eval_batch_size, predict_batch_size)
    return tpu_estimator.TPUEstimator(
        use_tpu=use_tpu,
        model_fn=model_fn,
        config=run_config,
        train_batch_size=train_batch_size,
        eval_batch_size=eval_batch_size,
        predict_batch_size=predict_batch_size)


def _as_estimator_model_fn(model_fn):
    """The TPUEstimator ``model_fn`` as an Estimator's: its TPUEstimatorSpec converted
    (scaffold_fn called, host_call and eval_metrics run on the host)."""

    def estimator_model_fn(features, labels, mode, params):
        return model_fn(features, labels, mode, params).as_estimator_spec()

    return estimator_model_fn


class StrategyEstimator(object):
    """tf.estimator.Estimator training under a tf.distribute strategy, used like the
    TPUEstimator: train/evaluate/predict take an ``input_fn(params)`` of batches of
    ``params["batch_size"]``, the global batch of that mode.

    Training gives every machine its own share of the input and of each global batch
    (distribution.pipeline_params), every replica its slice of that
    (distribution.split_for_replicas); with multi_worker it goes through
    tf.estimator.train_and_evaluate (the only way the Estimator trains on a cluster),
    with a PeerWatch that stops this task when another one never joins or dies. Evaluation and
    prediction run on one device of this machine, without the cluster.
    """

    def __init__(self, model_fn, run_config, distribution, train_batch_size,
                 eval_batch_size, predict_batch_size):
        self.distribution = distribution
        self.model_dir = run_config.model_dir
        self._batch_sizes = {tf.estimator.ModeKeys.TRAIN: train_batch_size,
                             tf.estimator.ModeKeys.EVAL: eval_batch_size,
                             tf.estimator.ModeKeys.PREDICT: predict_batch_size}
        model_fn = _as_estimator_model_fn(model_fn)
        self._trainer = tf.estimator.Estimator(model_fn=model_fn, config=run_config)
        local_config = strategy_run_config(
            run_config.model_dir, distribution, run_config.session_config,
            save_checkpoints_steps=run_config.save_checkpoints_steps or 1000,
            log_step_count_steps=run_config.log_step_count_steps, train=False,
            tf_random_seed=run_config.tf_random_seed,
            keep_checkpoint_max=run_config.keep_checkpoint_max)
        self._local = tf.estimator.Estimator(model_fn=model_fn, config=local_config)

    def _input_fn(self, input_fn, mode):
        batch_size = self._batch_sizes[mode]

        def estimator_input_fn(params, input_context=None):
            dataset = input_fn(distribution_lib.pipeline_params(params, batch_size,
                                                                input_context))
            return distribution_lib.split_for_replicas(dataset, input_context)

        return estimator_input_fn

    def train(self, input_fn, max_steps):
        """Trains to ``max_steps`` (resuming from the last checkpoint in model_dir)."""
        train_input_fn = self._input_fn(input_fn, tf.estimator.ModeKeys.TRAIN)
        cluster = self.distribution.cluster
        if cluster is None:
            self._trainer.train(input_fn=train_input_fn, max_steps=max_steps)
            return self
        timeout = self.distribution.worker_timeout
        watch = cluster_lib.PeerWatch(
            cluster, self.model_dir, grace=timeout, interval=min(5.0, timeout / 3.0),
            start_timeout=getattr(self.distribution, "start_timeout",
                                  cluster_lib.START_TIMEOUT_SECS))
        watch.start()
        tf.estimator.train_and_evaluate(
            self._trainer,
            tf.estimator.TrainSpec(train_input_fn, max_steps=max_steps, hooks=[watch]),
            # Required by the API; evaluated only by an "evaluator" task, which the cluster
            # check refuses.
            tf.estimator.EvalSpec(train_input_fn, steps=1))
        release_coordinator_server()
        return self

    def evaluate(self, input_fn, steps=None, checkpoint_path=None):
        return self._local.evaluate(self._input_fn(input_fn, tf.estimator.ModeKeys.EVAL),
                                    steps=steps, checkpoint_path=checkpoint_path)

    def predict(self, input_fn, yield_single_examples=True, checkpoint_path=None):
        return self._local.predict(self._input_fn(input_fn, tf.estimator.ModeKeys.PREDICT),
                                   yield_single_examples=yield_single_examples,
                                   checkpoint_path=checkpoint_path)
