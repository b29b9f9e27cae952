"""TPUEstimator plumbing shared by run_pretraining.py and run_classifier.py.

What both training scripts need, kept here so that each exists once: the TPU flags, the
RunConfig for Cloud TPU or local CPU, the estimator, TFRecord decoding, warm-starting from a
checkpoint and the output folder check (input-file globbing comes from file_utils). The same
code path serves both: with ``--use_tpu=false`` TPUEstimator falls back to the CPU.
"""

import atexit
import os
import re

import cli
import file_utils
import modeling
from tf_compat import TPUClusterResolver, tf, tpu_estimator

IN_USE = "in_use"  # the marker of a run using an output folder: in_use.tmp-HOST.PID
# The folder a sharded checkpoint write fills before renaming: TF 1.15 adds a random hex.
_CHECKPOINT_TEMPORARY = re.compile(r"\.ckpt-\d+_temp(_[0-9a-f]+)?/?$")


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


def decode_record(record, name_to_features):
    """Parses one serialized tf.train.Example; int64 features become int32 (TPU-friendly)."""
    example = tf.parse_single_example(record, name_to_features)
    for name in list(example.keys()):
        if example[name].dtype == tf.int64:
            example[name] = tf.cast(example[name], tf.int32)
    return example


def checkpoint_shapes(init_checkpoint):
    """{variable name: shape list} of a checkpoint (a prefix, or a folder with a checkpoint).

    Raises InputError naming --init_checkpoint when it is missing, not a TensorFlow
    checkpoint, or holds no variable.
    """
    hint = "give a checkpoint prefix such as models/krbert_medium/bert_model.ckpt"
    if init_checkpoint.endswith(".index") or ".data-" in init_checkpoint:
        hint = "give the prefix, without the .index or .data-* suffix"
    try:
        variables = tf.train.list_variables(init_checkpoint)
    except tf.errors.NotFoundError:
        raise cli.InputError("--init_checkpoint=%s not found; %s" % (init_checkpoint, hint))
    except (tf.errors.OpError, ValueError) as e:
        reason = file_utils.error_reason(e).split("\n")[0]
        raise cli.InputError("--init_checkpoint=%s is not a TensorFlow checkpoint (%s); %s"
                             % (init_checkpoint, reason, hint))
    if not variables:
        raise cli.InputError("--init_checkpoint=%s holds no variable; %s" % (init_checkpoint,
                                                                           hint))
    return dict(variables)


def check_shapes_match(tvars, init_checkpoint, shapes):
    """Raises InputError naming the first graph variable whose checkpoint shape differs."""
    for var in tvars:
        name = var.op.name
        if name in shapes and list(shapes[name]) != var.shape.as_list():
            raise cli.InputError(
                "--init_checkpoint=%s: variable %s has shape %s in the checkpoint but %s in "
                "this model; use the --bert_config_file the checkpoint was trained with"
                % (init_checkpoint, name, list(shapes[name]), var.shape.as_list()))


def warm_start(init_checkpoint, use_tpu):
    """Maps the trainable variables found in ``init_checkpoint`` onto the current graph.

    Returns the ``scaffold_fn`` TPUEstimatorSpec expects (None on CPU, where the
    initialisation happens at once) and logs every variable, marking the loaded ones.
    """
    tvars = tf.trainable_variables()
    loaded = {}
    scaffold_fn = None
    if init_checkpoint:
        check_shapes_match(tvars, init_checkpoint, checkpoint_shapes(init_checkpoint))
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
    """Creates ``path`` (gs:// too), marks it in use and clears what dead runs left there.

    Raises InputError saying it cannot be written. While this process runs, the folder
    holds the marker ``in_use.tmp-HOST.PID``. Temporary files of dead runs (see
    file_utils) go; so do the ``model.ckpt-N_temp*`` folders a checkpoint write killed
    midway leaves, unless another live run on this host marks the folder in use.
    """
    try:
        tf.io.gfile.makedirs(path)
    except (tf.errors.OpError, OSError) as e:
        raise cli.InputError("--output_dir=%s cannot be created (%s); choose a writable "
                             "folder" % (path, file_utils.error_reason(e)))
    if not path.startswith("gs://") and not os.access(path, os.W_OK):
        raise cli.InputError("--output_dir=%s is not writable; choose a writable folder" % path)
    for removed in file_utils.remove_stale_temporaries(path):
        tf.logging.info("Removed %s, left by a run that died", removed)
    marker = file_utils.temporary_name(os.path.join(path, IN_USE))
    others = [name for name in tf.io.gfile.listdir(path) if name != os.path.basename(marker)
              and name.startswith(IN_USE + file_utils.TMP_MARK)]
    if others:
        tf.logging.warning("%s is in use by another run too (%s)", path, ", ".join(others))
    else:
        remove_checkpoint_temporaries(path)
    with tf.io.gfile.GFile(marker, "w") as writer:
        writer.write("%d\n" % os.getpid())
    atexit.register(file_utils.discard, marker)


def remove_checkpoint_temporaries(path):
    """Removes the ``*.ckpt-N_temp*`` folders in ``path`` (a sharded checkpoint write
    that was killed); returns their paths."""
    removed = []
    for name in tf.io.gfile.listdir(path):
        folder = os.path.join(path, name.rstrip("/"))
        if _CHECKPOINT_TEMPORARY.search(name) and tf.io.gfile.isdir(folder):
            tf.io.gfile.rmtree(folder)
            tf.logging.info("Removed %s, a checkpoint write that did not finish", folder)
            removed.append(folder)
    return removed


def require_checkpoint(output_dir, init_checkpoint, what):
    """Raises InputError unless there is a model to score: a checkpoint in ``output_dir``
    or an ``init_checkpoint``."""
    if init_checkpoint or tf.train.latest_checkpoint(output_dir):
        return
    raise cli.InputError(
        "%s without --do_train: --output_dir=%s holds no checkpoint, so there is no trained "
        "model to score; pass --init_checkpoint=..., or the --output_dir of a trained run"
        % (what, output_dir))
