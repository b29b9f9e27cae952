"""TPUEstimator plumbing shared by run_pretraining.py and run_classifier.py.

What both training scripts need, kept here so that each exists once: the TPU flags, the
RunConfig for Cloud TPU or local CPU, the estimator, input-file globbing, warm-starting from
a checkpoint and the output folder check. The same code path serves both: with
``--use_tpu=false`` TPUEstimator falls back to the CPU.
"""

import os

import cli
import modeling
from tf_compat import TPUClusterResolver, tf, tpu_estimator


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


def glob_input_files(patterns, what="--input_file"):
    """Expands comma-separated globs (gs:// too) into a sorted file list.

    Raises InputError naming the pattern when one of them matches nothing.
    """
    files = []
    for pattern in [p.strip() for p in patterns.split(",") if p.strip()]:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise cli.InputError("%s: '%s' matches no file; check the path or glob" %
                                 (what, pattern))
        files.extend(matched)
    if not files:
        raise cli.InputError("%s is empty; give one or more files or globs" % what)
    return files


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


def warm_start(init_checkpoint, use_tpu):
    """Maps the trainable variables found in ``init_checkpoint`` onto the current graph.

    Returns the ``scaffold_fn`` TPUEstimatorSpec expects (None on CPU, where the
    initialisation happens at once) and logs every variable, marking the loaded ones.
    """
    tvars = tf.trainable_variables()
    loaded = {}
    scaffold_fn = None
    if init_checkpoint:
        assignment_map, loaded = modeling.get_assignment_map_from_checkpoint(
            tvars, init_checkpoint)
        if use_tpu:
            def tpu_scaffold():
                tf.train.init_from_checkpoint(init_checkpoint, assignment_map)
                return tf.train.Scaffold()

            scaffold_fn = tpu_scaffold
        else:
            tf.train.init_from_checkpoint(init_checkpoint, assignment_map)
        tf.logging.info("Loaded %d of %d trainable variables from %s",
                        len([v for v in tvars if v.name in loaded]), len(tvars),
                        init_checkpoint)
    tf.logging.info("**** Trainable Variables ****")
    for var in tvars:
        tf.logging.info("  name = %s, shape = %s%s", var.name, var.shape,
                        ", *INIT_FROM_CKPT*" if var.name in loaded else "")
    return scaffold_fn


def ensure_output_dir(path):
    """Creates ``path`` (gs:// too) or raises InputError saying it cannot be written."""
    try:
        tf.io.gfile.makedirs(path)
    except (tf.errors.OpError, OSError) as e:
        raise cli.InputError("--output_dir=%s cannot be created (%s); choose a writable "
                             "folder" % (path, getattr(e, "message", e)))
    if not path.startswith("gs://") and not os.access(path, os.W_OK):
        raise cli.InputError("--output_dir=%s is not writable; choose a writable folder" % path)
