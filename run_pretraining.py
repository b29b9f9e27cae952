r"""Pretrains BERT with the masked language model and next sentence prediction losses.

The same TPUEstimator job runs on a Cloud TPU (``--use_tpu=true``, the KR-BERT-MEDIUM
run: scripts/pretrain_tpu.sh; ``--tpu_name=local`` on a TPU VM) and on the CPU or one GPU
(``--use_tpu=false``, scripts/pretrain_cpu.sh). Several GPUs, CPU replicas or machines
train through tf.distribute (``--distribution``, ``--num_gpus``, ``--num_cpu_replicas``;
krbert/estimator/distribution.py) with --train_batch_size the global batch;
``--use_fp16`` computes in float16 on GPUs.
Input: TFRecords written by create_pretraining_data.py with the same --max_seq_length
and --max_predictions_per_seq; every file is checked whole (against its .json sidecar,
or read through) before training. Rerunning the same command resumes from the last
checkpoint in --output_dir and stops at --num_train_steps; --output_dir/training_settings.json
records the config, the input files (name, size, content) and the training flags, and a
rerun with others is refused in one line. One run at a time uses an --output_dir.

    python run_pretraining.py --bert_config_file=vocab/bert_config_tiny.json \
        --input_file='/tmp/pretrain/*.tfrecord' --output_dir=/tmp/pretrain_out \
        --do_train --do_eval --num_train_steps=100 --num_warmup_steps=10

Progress: every --log_every_n_steps the log shows the step, loss, masked-LM and
next-sentence losses, learning rate and examples/s (CPU; on TPU the estimator logs loss
and steps/s once per --iterations_per_loop). TensorBoard (--output_dir) gets loss,
masked_lm_loss, next_sentence_loss and learning_rate: on CPU through tf.summary every
--save_summary_steps, on TPU through a host_call (written by the host, same interval).

Shapes in docstrings: B batch size, S max_seq_length, P max_predictions_per_seq,
V vocab_size.
"""

import copy
import json
import os

from absl import flags

import modeling
import optimization
from krbert import cli
from krbert.bert_config import load_bert_config
from krbert.checkpoints import restore
from krbert.estimator import distribution as distribution_lib
from krbert.estimator import progress, run_folder, runtime
from krbert.files import atomic, gcs
from krbert.files import paths as file_paths
from krbert.pretraining import heads
from krbert.pretraining.input_pipeline import (  # noqa: F401 (tests use them here)
    UPDATE_WEIGHT, input_fn_builder, input_host, update_totals)
from krbert.pretraining import records as pretraining_records
from krbert.tf_compat import IS_TF2, tf, tpu_estimator

flags.DEFINE_string(
    "bert_config_file", None,
    "The config json file of the BERT model to pretrain; it sets the architecture "
    "(e.g. vocab/bert_config_medium.json).")
flags.DEFINE_string(
    "input_file", None,
    "TFRecord files from create_pretraining_data.py: comma-separated globs "
    "(local paths or gs://).")
flags.DEFINE_string(
    "output_dir", None,
    "Where checkpoints, summaries and eval_results.txt are written (local or gs://).")
flags.DEFINE_string(
    "init_checkpoint", None,
    "Initial checkpoint (e.g. a pretrained BERT) to warm-start the variables it holds: a new "
    "run from step 0, fresh optimizer and warm-up; parts it lacks (heads) start afresh. "
    "Unused when --output_dir holds a checkpoint: the run resumes that.")
flags.DEFINE_integer(
    "max_seq_length", 128,
    "Length of every input sequence; must equal the one the data was made with.")
flags.DEFINE_integer(
    "max_predictions_per_seq", 20,
    "Masked LM predictions per sequence; must equal the one the data was made with.")
flags.DEFINE_bool("do_train", False, "Whether to run training.")
flags.DEFINE_bool("do_eval", False, "Whether to run evaluation (on --eval_input_file).")
flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for Adam.")
flags.DEFINE_integer("num_train_steps", 100000, "Number of training steps.")
flags.DEFINE_integer("num_warmup_steps", 10000, "Number of warmup steps.")
flags.DEFINE_integer("max_eval_steps", 100, "Maximum number of eval steps.")
runtime.define_tpu_flags(flags)
flags.adopt_module_key_flags(runtime)  # list the TPU flags in --help too
distribution_lib.define_distribution_flags(flags)
flags.adopt_module_key_flags(distribution_lib)

# Beyond the original flags: CPU speed, progress and reproducibility.
flags.DEFINE_string(
    "eval_input_file", None,
    "TFRecord globs to evaluate on; defaults to --input_file (as the original).")
flags.DEFINE_bool(
    "use_bfloat16", False,
    "Compute the encoder in bfloat16 (variables stay float32). Fast on TPUs and on "
    "CPUs with AVX512-BF16/AMX under TensorFlow 2; changes the numerics slightly.")
flags.DEFINE_bool(
    "xla_jit", False, "CPU/GPU: compile the graph with XLA JIT (auto-clustering).")
flags.DEFINE_bool(
    "use_one_hot_embeddings", None,
    "Look up word embeddings with a one-hot matmul; defaults to --use_tpu (on the "
    "CPU tf.gather is much faster).")
flags.DEFINE_integer(
    "num_cpu_threads", 4,
    "Parallel file reads and record parsing in the input pipeline.")
flags.DEFINE_integer(
    "intra_op_threads", 0, "CPU: threads inside one op (0: TensorFlow picks).")
flags.DEFINE_integer(
    "inter_op_threads", 0, "CPU: ops run in parallel (0: TensorFlow picks).")
flags.DEFINE_integer(
    "shuffle_buffer", 100,
    "Training examples shuffled together after the parallel file reads.")
flags.DEFINE_integer(
    "log_every_n_steps", 100,
    "CPU: log step, losses, learning rate and examples/s every this many steps.")
flags.DEFINE_integer(
    "save_summary_steps", 100, "Write TensorBoard summaries every this many steps.")
flags.DEFINE_integer("keep_checkpoint_max", 5, "How many recent checkpoints to keep.")
flags.DEFINE_integer(
    "seed", None, "Random seed of initialisation, dropout and shuffling (None: random).")
flags.DEFINE_string(
    "optimizer", "adamw",
    "adamw: Adam with decoupled weight decay, as the original; lamb: LAMB (layer-wise "
    "trust ratio, for large batches; same weight decay and exclusions).")
flags.DEFINE_integer(
    "gradient_accumulation_steps", 1,
    "CPU/GPUs: make each update from this many micro-batches of --train_batch_size / K "
    "(one update equals one batch of --train_batch_size); the global step counts updates.")
flags.DEFINE_integer(
    "check_records", 1000,
    "Before building the graph, check that the ids of the first this many records "
    "fit the vocabulary (0: skip).")


# ----------------------------------------------------------------------------------
# Model.
# ----------------------------------------------------------------------------------

def metric_fn(masked_lm_example_loss, masked_lm_log_probs, masked_lm_ids,
              masked_lm_weights, next_sentence_example_loss, next_sentence_log_probs,
              next_sentence_labels):
    """Masked-LM accuracy and mean loss, NSP accuracy and mean loss (tf.metrics pairs).

    Shapes: masked_lm_example_loss [B*P], masked_lm_log_probs [B*P, V], masked_lm_ids
    and masked_lm_weights [B, P]; next_sentence_example_loss [B],
    next_sentence_log_probs [B, 2], next_sentence_labels [B, 1].
    """
    masked_lm_predictions = tf.argmax(masked_lm_log_probs, axis=-1, output_type=tf.int32)
    masked_lm_ids = tf.reshape(masked_lm_ids, [-1])
    masked_lm_weights = tf.reshape(masked_lm_weights, [-1])
    next_sentence_predictions = tf.argmax(next_sentence_log_probs, axis=-1,
                                          output_type=tf.int32)
    return {
        "masked_lm_accuracy": tf.metrics.accuracy(
            labels=masked_lm_ids, predictions=masked_lm_predictions,
            weights=masked_lm_weights),
        "masked_lm_loss": tf.metrics.mean(
            values=tf.reshape(masked_lm_example_loss, [-1]), weights=masked_lm_weights),
        "next_sentence_accuracy": tf.metrics.accuracy(
            labels=tf.reshape(next_sentence_labels, [-1]),
            predictions=next_sentence_predictions),
        "next_sentence_loss": tf.metrics.mean(values=next_sentence_example_loss),
    }


def batch_masked_lm_accuracy(masked_lm_log_probs, masked_lm_ids, masked_lm_weights):
    """Masked-LM accuracy on one training batch (a scalar; the training curve); under a
    tf.distribute strategy, on the global batch (every replica's predictions).

    Shapes: masked_lm_log_probs [B*P, V]; masked_lm_ids and masked_lm_weights [B, P].
    """
    predictions = tf.argmax(masked_lm_log_probs, axis=-1, output_type=tf.int32)
    correct = tf.cast(tf.equal(predictions, tf.reshape(masked_lm_ids, [-1])), tf.float32)
    weights = tf.reshape(masked_lm_weights, [-1])
    hits, count = optimization.replica_sum((tf.reduce_sum(correct * weights),
                                            tf.reduce_sum(weights)))
    return hits / tf.maximum(count, 1.0)


def summary_host_call(output_dir, iterations_per_loop, scalars, every_n_steps=100):
    """TPU summaries: a host_call writing each float32 scalar of ``scalars``.

    The scalars travel from the TPU as [1] tensors with the global step, every step;
    the host writes them every ``every_n_steps`` steps with the v2 summary API
    (flushed once per loop).
    """
    names = sorted(scalars)
    tensors = [tf.reshape(tf.train.get_or_create_global_step(), [1])]
    tensors += [tf.reshape(tf.cast(scalars[name], tf.float32), [1]) for name in names]

    def host_call_fn(global_step, *values):
        summary = tf.compat.v2.summary
        step = global_step[0]
        with summary.create_file_writer(output_dir, max_queue=iterations_per_loop).as_default():
            with summary.record_if(tf.equal(step % every_n_steps, 0)):
                for name, value in zip(names, values):
                    summary.scalar(name, value[0], step=step)
                return tf.summary.all_v2_summary_ops()

    return host_call_fn, tensors


def training_scalars(scalars, accumulation_steps=1):
    """The scalars the training logs and summaries show, for the global batch: under a
    tf.distribute strategy the replicas' shares of the losses are summed (one
    all-reduce); with gradient accumulation the micro-batch's share times K (the
    update's losses as this micro-batch estimates them); as they are otherwise."""
    shares = {name: value for name, value in scalars.items() if name.endswith("loss")}
    totals = optimization.replica_sum(shares)
    if accumulation_steps > 1:
        totals = {name: value * float(accumulation_steps) for name, value in totals.items()}
    return dict(scalars, **totals)


class TrainingOptions(object):
    """How the model_fn trains: the schedule, the optimizer and where progress goes.

    Attributes are the run_pretraining.py flags of the same names: learning_rate,
    num_train_steps, num_warmup_steps, optimizer, gradient_accumulation_steps,
    train_batch_size (the global batch of an update), log_every_n_steps,
    save_summary_steps, iterations_per_loop; and output_dir.
    """

    def __init__(self, learning_rate, num_train_steps, num_warmup_steps, optimizer="adamw",
                 gradient_accumulation_steps=1, train_batch_size=None, log_every_n_steps=100,
                 save_summary_steps=100, iterations_per_loop=1000, output_dir=None):
        self.learning_rate = learning_rate
        self.num_train_steps = num_train_steps
        self.num_warmup_steps = num_warmup_steps
        self.optimizer = optimizer
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.train_batch_size = train_batch_size
        self.log_every_n_steps = log_every_n_steps
        self.save_summary_steps = save_summary_steps
        self.iterations_per_loop = iterations_per_loop
        self.output_dir = output_dir

    @classmethod
    def from_flags(cls, FLAGS):  # pylint: disable=invalid-name
        return cls(**{name: FLAGS[name].value for name in (
            "learning_rate", "num_train_steps", "num_warmup_steps", "optimizer",
            "gradient_accumulation_steps", "train_batch_size", "log_every_n_steps",
            "save_summary_steps", "iterations_per_loop", "output_dir")})


def pretraining_losses(bert_config, features, is_training, use_one_hot_embeddings,
                       compute_dtype, totals=(None, None)):
    """BERT and its two heads on ``features``: a dict of the total loss (scalar) and,
    per head, its loss, per-example loss and log-probabilities. ``totals``: see
    update_totals."""
    model = modeling.BertModel(
        config=bert_config, is_training=is_training,
        input_ids=features["input_ids"], input_mask=features["input_mask"],
        token_type_ids=features["segment_ids"],
        use_one_hot_embeddings=use_one_hot_embeddings, compute_dtype=compute_dtype)
    weight_total, example_total = totals
    (masked_lm_loss, masked_lm_example_loss,
     masked_lm_log_probs) = heads.get_masked_lm_output(
         bert_config, model.get_sequence_output(), model.get_embedding_table(),
         features["masked_lm_positions"], features["masked_lm_ids"],
         features["masked_lm_weights"], compute_dtype=compute_dtype,
         weight_total=weight_total)
    (next_sentence_loss, next_sentence_example_loss,
     next_sentence_log_probs) = heads.get_next_sentence_output(
         bert_config, model.get_pooled_output(), features["next_sentence_labels"],
         example_total=example_total)
    return {"total_loss": tf.identity(masked_lm_loss + next_sentence_loss, name="total_loss"),
            "masked_lm_loss": masked_lm_loss,
            "masked_lm_example_loss": masked_lm_example_loss,
            "masked_lm_log_probs": masked_lm_log_probs,
            "next_sentence_loss": next_sentence_loss,
            "next_sentence_example_loss": next_sentence_example_loss,
            "next_sentence_log_probs": next_sentence_log_probs}


def train_spec(losses, features, options, use_tpu, compute_dtype, scaffold_fn):
    """The TRAIN TPUEstimatorSpec: the optimizer (with a DynamicLossScale in float16,
    logged as loss_scale), the logged scalars, summaries and the progress log."""
    loss_scale = None
    if compute_dtype == tf.float16:
        loss_scale = optimization.DynamicLossScale()
    train_op = optimization.create_optimizer(
        losses["total_loss"], options.learning_rate, options.num_train_steps,
        options.num_warmup_steps, use_tpu, loss_scale=loss_scale,
        optimizer=options.optimizer,
        accumulation_steps=options.gradient_accumulation_steps)
    scalars = training_scalars({
        "masked_lm_accuracy": batch_masked_lm_accuracy(
            losses["masked_lm_log_probs"], features["masked_lm_ids"],
            features["masked_lm_weights"]),
        "masked_lm_loss": losses["masked_lm_loss"],
        "next_sentence_loss": losses["next_sentence_loss"],
        "loss": losses["total_loss"],
        "learning_rate": optimization.learning_rate_schedule(
            options.learning_rate, options.num_train_steps, options.num_warmup_steps),
    }, options.gradient_accumulation_steps)
    if loss_scale is not None:
        scalars["loss_scale"] = loss_scale.value()
    if optimization.replica_context() is not None:
        # Every worker runs the all-reduces of these scalars every step, in step with
        # the others (fetched only now and then, they would wait forever).
        train_op = tf.group(train_op, *scalars.values())
    host_call, hooks = None, []
    first = optimization.is_first_replica()
    if use_tpu:
        host_call = summary_host_call(options.output_dir, options.iterations_per_loop,
                                      scalars, options.save_summary_steps)
    elif first:
        add_scalar_summaries(scalars)
    # Every replica returns as many hooks (the strategy regroups them); one logs.
    hooks.append(progress.ProgressHook(
        {} if use_tpu else scalars, options.num_train_steps, options.log_every_n_steps,
        options.train_batch_size, options.output_dir) if first else tf.train.SessionRunHook())
    return tpu_estimator.TPUEstimatorSpec(
        mode=tf.estimator.ModeKeys.TRAIN, loss=losses["total_loss"], train_op=train_op,
        host_call=host_call, training_hooks=hooks, scaffold_fn=scaffold_fn)


def add_scalar_summaries(scalars):
    """CPU/GPUs: a TensorBoard summary of every scalar but the loss (the estimator writes
    it)."""
    for name, value in sorted(scalars.items()):
        if name != "loss":
            # ScalarSummary keeps the tag exact (tf.summary.scalar would make it
            # 'learning_rate_1', the schedule's op being 'learning_rate').
            tf.add_to_collection(tf.GraphKeys.SUMMARIES,
                                 tf.raw_ops.ScalarSummary(tags=name, values=value))


def eval_spec(losses, features, scaffold_fn):
    """The EVAL TPUEstimatorSpec: metric_fn on the heads' outputs."""
    eval_metrics = (metric_fn, [
        losses["masked_lm_example_loss"], losses["masked_lm_log_probs"],
        features["masked_lm_ids"], features["masked_lm_weights"],
        losses["next_sentence_example_loss"], losses["next_sentence_log_probs"],
        features["next_sentence_labels"]])
    return tpu_estimator.TPUEstimatorSpec(
        mode=tf.estimator.ModeKeys.EVAL, loss=losses["total_loss"],
        eval_metrics=eval_metrics, scaffold_fn=scaffold_fn)


def model_fn_builder(bert_config, init_checkpoint, learning_rate, num_train_steps,
                     num_warmup_steps, use_tpu, use_one_hot_embeddings,
                     compute_dtype=tf.float32, options=None):
    """The TPUEstimator model_fn: BERT, the masked-LM and NSP heads, the optimizer with
    warm-up (``options``: a TrainingOptions; the arguments before it win over its
    schedule).

    Under a tf.distribute strategy (StrategyEstimator) the same function runs once per
    replica: the losses are the replica's shares, the logged and summarised values those
    of the global batch, written by the first replica.
    """
    options = copy.copy(options) if options else TrainingOptions(
        learning_rate, num_train_steps, num_warmup_steps)
    options.learning_rate, options.num_train_steps = learning_rate, num_train_steps
    options.num_warmup_steps = num_warmup_steps

    def model_fn(features, labels, mode, params):  # pylint: disable=unused-argument
        for name in sorted(features):
            tf.logging.info("  feature %s: %s", name, features[name].shape)
        is_training = mode == tf.estimator.ModeKeys.TRAIN
        totals = (None, None)
        if is_training:
            totals = update_totals(features, options.gradient_accumulation_steps,
                                   options.train_batch_size)
        losses = pretraining_losses(bert_config, features, is_training,
                                    use_one_hot_embeddings, compute_dtype, totals)
        scaffold_fn = restore.warm_start(init_checkpoint, use_tpu)
        if mode == tf.estimator.ModeKeys.TRAIN:
            return train_spec(losses, features, options, use_tpu, compute_dtype, scaffold_fn)
        if mode == tf.estimator.ModeKeys.EVAL:
            return eval_spec(losses, features, scaffold_fn)
        raise ValueError("Only TRAIN and EVAL modes are supported: %s" % mode)

    return model_fn


# ----------------------------------------------------------------------------------
# Main.
# ----------------------------------------------------------------------------------

def enable_cpu_xla():
    """Lets the session's global_jit_level apply to the CPU too (by default it only
    applies to GPUs). TensorFlow reads TF_XLA_FLAGS when the first session starts."""
    flags_now = os.environ.get("TF_XLA_FLAGS", "")
    if "--tf_xla_cpu_global_jit" not in flags_now:
        os.environ["TF_XLA_FLAGS"] = (flags_now + " --tf_xla_cpu_global_jit").strip()


def write_eval_results(result, output_dir):
    """Writes 'key = value' lines (sorted) to output_dir/eval_results.txt; returns the path."""
    path = os.path.join(output_dir, "eval_results.txt")
    with atomic.atomic_write(path) as writer:
        tf.logging.info("***** Eval results *****")
        for key in sorted(result):
            tf.logging.info("  %s = %s", key, result[key])
            writer.write("%s = %s\n" % (key, result[key]))
    return path


TRAINING_FLAGS = ("init_checkpoint", "max_seq_length", "max_predictions_per_seq",
                  "learning_rate", "num_warmup_steps", "train_batch_size", "use_bfloat16", "seed")
"""Flags a resumed run must share with the run that made the checkpoint (--num_train_steps
may grow: training then goes on)."""


def input_names(files):
    """{name: path} of the input files, each named by its path below their common folder."""
    common = os.path.commonprefix(files)
    common = common[:common.rfind("/") + 1]
    return {path[len(common):]: path for path in files}


def training_settings(FLAGS, bert_config, train_files):
    """What the pretrained model depends on, as plain JSON values: the config, the training
    flags and each input file's name, size and content (pretraining_records.fingerprint)."""
    settings = {"bert_config": bert_config.to_dict(),
                "input_files": {name: pretraining_records.fingerprint(path)
                                for name, path in input_names(train_files).items()}}
    for name in TRAINING_FLAGS:
        settings[name] = FLAGS[name].value
    return json.loads(json.dumps(settings))


def check_resume_variables(FLAGS, checkpoint):  # pylint: disable=invalid-name
    """Refuses (InputError) to resume ``checkpoint`` in another precision (float16 keeps a
    loss scale, float32 and bfloat16 none), or with gradient accumulation when it holds no
    accumulators: the restore would fail deep inside TensorFlow."""
    names = set(name for name, _ in tf.train.list_variables(checkpoint))
    new_run = ("or start a new --output_dir with --init_checkpoint=%s (a new run from its "
               "weights)" % checkpoint)
    if FLAGS.use_fp16 != ("loss_scale" in names):
        was, resume = ("float16", "with") if "loss_scale" in names else ("float32", "without")
        raise cli.InputError("--output_dir=%s holds a %s run; resume it %s --use_fp16, %s"
                             % (FLAGS.output_dir, was, resume, new_run))
    if FLAGS.gradient_accumulation_steps > 1 and optimization.MICRO_STEP_NAME not in names:
        raise cli.InputError(
            "--output_dir=%s holds a run without gradient accumulation; resume it without "
            "--gradient_accumulation_steps, %s" % (FLAGS.output_dir, new_run))


def check_resume(FLAGS, bert_config, train_files):
    """Refuses (InputError) a run into an --output_dir whose model was trained with other
    settings; warns when its checkpoint is already at or past --num_train_steps."""
    if not FLAGS.do_train:
        run_folder.check_same_model(FLAGS.output_dir, {"bert_config": bert_config.to_dict()})
        return
    run_folder.check_same_run(FLAGS.output_dir,
                              training_settings(FLAGS, bert_config, train_files),
                              unrecorded="record")
    checkpoint = tf.train.latest_checkpoint(FLAGS.output_dir)
    if checkpoint:
        check_resume_variables(FLAGS, checkpoint)
    step = int(tf.train.load_variable(checkpoint, "global_step")) if checkpoint else 0
    if step >= FLAGS.num_train_steps:
        tf.logging.warning("--output_dir=%s already holds step %d, not below "
                           "--num_train_steps=%d: nothing to train; raise --num_train_steps "
                           "to train on", FLAGS.output_dir, step, FLAGS.num_train_steps)


def check_flags(FLAGS):  # pylint: disable=invalid-name
    """Checks the flags before any work (each mistake one InputError line); returns
    (distribution or None, compute dtype). Call before any session: a distribution may
    split the CPU into logical devices."""
    if not FLAGS.do_train and not FLAGS.do_eval:
        raise cli.InputError("nothing to do; pass --do_train and/or --do_eval")
    for name in ("max_seq_length", "max_predictions_per_seq", "train_batch_size",
                 "eval_batch_size", "num_train_steps", "save_checkpoints_steps",
                 "iterations_per_loop", "log_every_n_steps", "gradient_accumulation_steps"):
        if getattr(FLAGS, name) <= 0:
            raise cli.InputError("--%s must be positive (got %d)" % (name, getattr(FLAGS, name)))
    cli.check_positive_number("learning_rate", FLAGS.learning_rate)
    if FLAGS.optimizer not in optimization.OPTIMIZERS:
        raise cli.InputError("--optimizer=%s: use %s" % (
            FLAGS.optimizer, " or ".join(optimization.OPTIMIZERS)))
    accumulation = FLAGS.gradient_accumulation_steps
    if accumulation > 1 and FLAGS.use_tpu:
        raise cli.InputError(
            "--gradient_accumulation_steps=%d is for the CPU and GPUs; on a TPU raise "
            "--train_batch_size instead (a pod slice holds large batches)" % accumulation)
    if FLAGS.train_batch_size % accumulation:
        raise cli.InputError(
            "--train_batch_size=%d is not a multiple of --gradient_accumulation_steps=%d; "
            "each update is that many micro-batches of equal size"
            % (FLAGS.train_batch_size, accumulation))
    micro_batch = FLAGS.train_batch_size // accumulation
    distribution = runtime.check_device_flags(
        FLAGS, {"train_batch_size": FLAGS.train_batch_size} if FLAGS.do_train else {})
    if distribution is not None and micro_batch % distribution.num_replicas:
        raise cli.InputError(
            "--train_batch_size=%d with --gradient_accumulation_steps=%d makes micro-batches "
            "of %d, which the %d replicas do not divide; make --train_batch_size a multiple "
            "of %d" % (FLAGS.train_batch_size, accumulation, micro_batch,
                       distribution.num_replicas, accumulation * distribution.num_replicas))
    compute_dtype = distribution_lib.check_precision(FLAGS)
    gcs.check_gcs_reachable([FLAGS.bert_config_file, FLAGS.input_file,
                             FLAGS.eval_input_file, FLAGS.output_dir,
                             FLAGS.init_checkpoint])
    return distribution, compute_dtype


def check_inputs(FLAGS, bert_config):  # pylint: disable=invalid-name
    """(train files, eval files), each file checked against the flags and the config."""
    train_files = file_paths.glob_input_files(FLAGS.input_file)
    eval_files = train_files
    if FLAGS.eval_input_file:
        eval_files = file_paths.glob_input_files(FLAGS.eval_input_file, "--eval_input_file")
    for files in ([train_files] if eval_files is train_files else [train_files, eval_files]):
        pretraining_records.check_records(
            files, FLAGS.max_seq_length, FLAGS.max_predictions_per_seq, bert_config.vocab_size,
            bert_config.type_vocab_size, limit=FLAGS.check_records)
    return train_files, eval_files


def prepare_runtime(FLAGS, distribution):  # pylint: disable=invalid-name
    """XLA, the bfloat16 warning and the log lines of what runs where."""
    if FLAGS.xla_jit and not FLAGS.use_tpu:
        enable_cpu_xla()
    if FLAGS.use_bfloat16 and not FLAGS.use_tpu and not IS_TF2:
        tf.logging.warning("--use_bfloat16 on the CPU under TensorFlow 1.15 is emulated and "
                           "several times slower; it pays off on TPUs and under TensorFlow 2")
    if distribution is not None:
        tf.logging.info("*** Distribution: %s; global batch %d", distribution.describe(),
                        FLAGS.train_batch_size)
    if FLAGS.gradient_accumulation_steps > 1:
        tf.logging.info("*** Each update: %d micro-batches of %d",
                        FLAGS.gradient_accumulation_steps,
                        FLAGS.train_batch_size // FLAGS.gradient_accumulation_steps)


def build_estimator(FLAGS, bert_config, init_checkpoint, distribution, compute_dtype):  # pylint: disable=invalid-name
    """The estimator of the flags: the model_fn, its RunConfig and devices."""
    run_config = runtime.run_config_from_flags(
        FLAGS, runtime.session_config(FLAGS.xla_jit, FLAGS.intra_op_threads,
                                      FLAGS.inter_op_threads),
        distribution=distribution, keep_checkpoint_max=FLAGS.keep_checkpoint_max,
        tf_random_seed=FLAGS.seed, save_summary_steps=FLAGS.save_summary_steps)
    use_one_hot = FLAGS.use_one_hot_embeddings
    model_fn = model_fn_builder(
        bert_config=bert_config, init_checkpoint=init_checkpoint,
        learning_rate=FLAGS.learning_rate, num_train_steps=FLAGS.num_train_steps,
        num_warmup_steps=FLAGS.num_warmup_steps, use_tpu=FLAGS.use_tpu,
        use_one_hot_embeddings=FLAGS.use_tpu if use_one_hot is None else use_one_hot,
        compute_dtype=compute_dtype, options=TrainingOptions.from_flags(FLAGS))
    return runtime.make_estimator(
        model_fn, run_config, FLAGS.use_tpu, FLAGS.train_batch_size, FLAGS.eval_batch_size,
        distribution=distribution)


def train_and_evaluate(FLAGS, estimator, train_files, eval_files, distribution):  # pylint: disable=invalid-name
    """--do_train, then --do_eval (on the chief) with its eval_results.txt."""

    def input_fn(files, is_training):
        return input_fn_builder(files, FLAGS.max_seq_length, FLAGS.max_predictions_per_seq,
                                is_training, num_cpu_threads=FLAGS.num_cpu_threads,
                                shuffle_buffer=FLAGS.shuffle_buffer, seed=FLAGS.seed,
                                accumulation_steps=FLAGS.gradient_accumulation_steps)

    if FLAGS.do_train:
        tf.logging.info("***** Running training: batch %d, %d steps *****",
                        FLAGS.train_batch_size, FLAGS.num_train_steps)
        estimator.train(input_fn=input_fn(train_files, True),
                        max_steps=FLAGS.num_train_steps)
    if FLAGS.do_eval and distribution is not None and not distribution.is_chief:
        tf.logging.info("Evaluation runs on the chief; this worker is done")
    elif FLAGS.do_eval:
        tf.logging.info("***** Running evaluation: batch %d, %d steps *****",
                        FLAGS.eval_batch_size, FLAGS.max_eval_steps)
        result = estimator.evaluate(input_fn=input_fn(eval_files, False),
                                    steps=FLAGS.max_eval_steps)
        write_eval_results(result, FLAGS.output_dir)


def main(_):
    FLAGS = flags.FLAGS  # pylint: disable=invalid-name
    tf.logging.set_verbosity(tf.logging.INFO)
    tf.get_logger().propagate = False  # absl would print every line a second time
    distribution, compute_dtype = check_flags(FLAGS)
    bert_config = load_bert_config(FLAGS.bert_config_file, FLAGS.max_seq_length)
    init_checkpoint = restore.start_checkpoint(FLAGS.output_dir, FLAGS.init_checkpoint)
    if init_checkpoint:
        restore.checkpoint_shapes(init_checkpoint)  # stops if it is none
    if not FLAGS.do_train:
        restore.require_checkpoint(FLAGS.output_dir, FLAGS.init_checkpoint, "--do_eval")
    train_files, eval_files = check_inputs(FLAGS, bert_config)
    run_folder.ensure_output_dir(FLAGS.output_dir,
                                 chief=distribution is None or distribution.is_chief)
    check_resume(FLAGS, bert_config, train_files)
    prepare_runtime(FLAGS, distribution)
    tf.logging.info("*** Input files: %d (%s ...)", len(train_files), train_files[0])
    estimator = build_estimator(FLAGS, bert_config, init_checkpoint, distribution,
                                compute_dtype)
    train_and_evaluate(FLAGS, estimator, train_files, eval_files, distribution)


if __name__ == "__main__":
    flags.mark_flag_as_required("bert_config_file")
    flags.mark_flag_as_required("input_file")
    flags.mark_flag_as_required("output_dir")
    cli.run(main)
