"""The TPUEstimator runtime shared by the training scripts: the TPU flags, the session
config, the RunConfig for Cloud TPU or the local CPU, and the estimator. With
``--use_tpu=false`` TPUEstimator falls back to the CPU on the same code path.
"""


from krbert.tf_compat import TPUClusterResolver, tf, tpu_estimator


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
    """The TPU RunConfig: a Cloud TPU when ``use_tpu`` and ``tpu_name``, else local."""
    cluster = None
    if use_tpu and tpu_name:
        cluster = TPUClusterResolver(tpu_name, zone=tpu_zone, project=gcp_project)
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


def run_config_from_flags(FLAGS, config_proto, **options):
    """The RunConfig of the flags: --output_dir, --log_every_n_steps and the TPU flags.

    ``options`` are further RunConfig settings (keep_checkpoint_max, tf_random_seed,
    save_summary_steps, ...).
    """
    run_config = make_run_config(
        FLAGS.output_dir, FLAGS.use_tpu, tpu_name=FLAGS.tpu_name, tpu_zone=FLAGS.tpu_zone,
        gcp_project=FLAGS.gcp_project, master=FLAGS.master,
        num_tpu_cores=FLAGS.num_tpu_cores, iterations_per_loop=FLAGS.iterations_per_loop,
        save_checkpoints_steps=FLAGS.save_checkpoints_steps, config_proto=config_proto,
        # TPUEstimator logs steps/s every ceil(log_step_count_steps / iterations_per_loop)
        # session runs: one run is one step on the CPU, iterations_per_loop on the TPU.
        log_step_count_steps=FLAGS.log_every_n_steps * (
            1 if FLAGS.use_tpu else FLAGS.iterations_per_loop))
    return run_config.replace(**options) if options else run_config


def make_estimator(model_fn, run_config, use_tpu, train_batch_size, eval_batch_size=8,
                   predict_batch_size=8):
    """A TPUEstimator; with ``use_tpu=False`` it runs on the CPU (or GPU)."""
    return tpu_estimator.TPUEstimator(
        use_tpu=use_tpu,
        model_fn=model_fn,
        config=run_config,
        train_batch_size=train_batch_size,
        eval_batch_size=eval_batch_size,
        predict_batch_size=predict_batch_size)
