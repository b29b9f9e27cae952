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

import json
import os
import time

from absl import flags

import modeling
import optimization
from krbert import cli
from krbert.bert_config import load_bert_config
from krbert.checkpoints import restore
from krbert.estimator import distribution as distribution_lib
from krbert.estimator import run_folder, runtime
from krbert.files import atomic, gcs
from krbert.files import paths as file_paths
from krbert.pretraining import heads
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
flags.DEFINE_integer(
    "check_records", 1000,
    "Before building the graph, check that the ids of the first this many records "
    "fit the vocabulary (0: skip).")


# ----------------------------------------------------------------------------------
# Input pipeline.
# ----------------------------------------------------------------------------------

def interleave_files(files, cycle_length):
    """Reads ``cycle_length`` TFRecord files at once, in whatever order they are ready."""
    if IS_TF2:
        return files.interleave(tf.data.TFRecordDataset, cycle_length=cycle_length,
                                num_parallel_calls=cycle_length, deterministic=False)
    return files.apply(tf.data.experimental.parallel_interleave(
        tf.data.TFRecordDataset, cycle_length=cycle_length, sloppy=True))


def input_host(params):
    """(index, count) of this input pipeline among the TPU hosts that each run one
    (TPUEstimator's per-host input on a pod slice: v3-32 has 4 hosts); (0, 1) on one
    host, the CPU or GPUs."""
    context = params.get("context")
    try:
        _, index, count, _ = context.current_input_fn_deployment()
    except (AttributeError, TypeError, ValueError):
        return 0, 1
    return int(index), int(count)


def input_fn_builder(input_files, max_seq_length, max_predictions_per_seq, is_training,
                     num_cpu_threads=4, shuffle_buffer=100, seed=None):
    """The TPUEstimator input_fn: fixed-shape batches of ``params["batch_size"]``.

    Training reads the files in parallel, shuffles and repeats forever; eval reads
    them in order (repeated, since it runs a fixed number of steps). Records are
    batched first and parsed a batch at a time (one vectorized op per batch). On a pod
    slice every host reads its own share of the training files (of the records, when
    there are fewer files than hosts), so the hosts never feed the same examples.
    """
    spec = pretraining_records.feature_spec(max_seq_length, max_predictions_per_seq)

    def input_fn(params):
        batch_size = params["batch_size"]
        host, hosts = input_host(params)
        if is_training:
            files = tf.data.Dataset.from_tensor_slices(tf.constant(input_files))
            shard_files = hosts > 1 and len(input_files) >= hosts
            if shard_files:
                files = files.shard(hosts, host)
            files = files.repeat().shuffle(len(input_files), seed=seed)
            d = interleave_files(files, min(num_cpu_threads, len(input_files)))
            if hosts > 1 and not shard_files:
                d = d.shard(hosts, host)
            d = d.shuffle(shuffle_buffer, seed=seed)
        else:
            d = tf.data.TFRecordDataset(input_files).repeat()
        d = d.batch(batch_size, drop_remainder=True)
        d = d.map(lambda records: pretraining_records.parse_batch(records, spec),
                  num_parallel_calls=num_cpu_threads)
        return d.prefetch(2)

    return input_fn


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


def progress_hook(tensors, every_n_steps, batch_size):
    """CPU: logs 'step N: loss = ..., ..., examples/s = ...' every ``every_n_steps``."""
    state = {"time": None, "step": None}

    def formatter(values):
        now, step = time.time(), int(values["step"])
        speed = ""
        if state["time"] is not None and step > state["step"]:
            speed = ", examples/s = %.1f" % (
                (step - state["step"]) * batch_size / (now - state["time"]))
        state["time"], state["step"] = now, step
        parts = ["%s = %.4g" % (name, values[name]) for name in sorted(values)
                 if name != "step"]
        return "step %d: %s%s" % (step, ", ".join(parts), speed)

    return tf.train.LoggingTensorHook(tensors, every_n_iter=every_n_steps,
                                      formatter=formatter)


def training_scalars(scalars):
    """The scalars the training logs and summaries show, for the global batch: under a
    tf.distribute strategy the replicas' shares of the losses are summed (one
    all-reduce); as they are otherwise."""
    shares = {name: value for name, value in scalars.items() if name.endswith("loss")}
    totals = optimization.replica_sum(shares)
    return dict(scalars, **totals)


def model_fn_builder(bert_config, init_checkpoint, learning_rate, num_train_steps,
                     num_warmup_steps, use_tpu, use_one_hot_embeddings,
                     compute_dtype=tf.float32, output_dir=None, iterations_per_loop=1000,
                     log_every_n_steps=100, train_batch_size=None, save_summary_steps=100):
    """The TPUEstimator model_fn: BERT, the masked-LM and NSP heads, Adam with warm-up.

    With compute_dtype float16 the optimizer keeps a DynamicLossScale (its scale is
    logged as loss_scale). Under a tf.distribute strategy (StrategyEstimator) the same
    function runs once per replica: the losses are the replica's shares, the logged and
    summarised values those of the global batch, written by the first replica.
    """

    def model_fn(features, labels, mode, params):  # pylint: disable=unused-argument
        for name in sorted(features):
            tf.logging.info("  feature %s: %s", name, features[name].shape)
        is_training = mode == tf.estimator.ModeKeys.TRAIN
        model = modeling.BertModel(
            config=bert_config, is_training=is_training,
            input_ids=features["input_ids"], input_mask=features["input_mask"],
            token_type_ids=features["segment_ids"],
            use_one_hot_embeddings=use_one_hot_embeddings, compute_dtype=compute_dtype)
        (masked_lm_loss, masked_lm_example_loss,
         masked_lm_log_probs) = heads.get_masked_lm_output(
             bert_config, model.get_sequence_output(), model.get_embedding_table(),
             features["masked_lm_positions"], features["masked_lm_ids"],
             features["masked_lm_weights"], compute_dtype=compute_dtype)
        (next_sentence_loss, next_sentence_example_loss,
         next_sentence_log_probs) = heads.get_next_sentence_output(
             bert_config, model.get_pooled_output(), features["next_sentence_labels"])
        total_loss = tf.identity(masked_lm_loss + next_sentence_loss, name="total_loss")
        scaffold_fn = restore.warm_start(init_checkpoint, use_tpu)

        if mode == tf.estimator.ModeKeys.TRAIN:
            loss_scale = None
            if compute_dtype == tf.float16:
                loss_scale = optimization.DynamicLossScale()
            train_op = optimization.create_optimizer(
                total_loss, learning_rate, num_train_steps, num_warmup_steps, use_tpu,
                loss_scale=loss_scale)
            scalars = training_scalars({
                "masked_lm_accuracy": batch_masked_lm_accuracy(
                    masked_lm_log_probs, features["masked_lm_ids"],
                    features["masked_lm_weights"]),
                "masked_lm_loss": masked_lm_loss,
                "next_sentence_loss": next_sentence_loss,
                "loss": total_loss,
                "learning_rate": optimization.learning_rate_schedule(
                    learning_rate, num_train_steps, num_warmup_steps),
            })
            if loss_scale is not None:
                scalars["loss_scale"] = loss_scale.value()
            if optimization.replica_context() is not None:
                # Every worker runs the all-reduces of these scalars every step, in step
                # with the others (fetched only now and then, they would wait forever).
                train_op = tf.group(train_op, *scalars.values())
            host_call, hooks = None, []
            if use_tpu:
                host_call = summary_host_call(output_dir, iterations_per_loop, scalars,
                                              save_summary_steps)
            else:
                if optimization.is_first_replica():
                    for name, value in sorted(scalars.items()):
                        if name == "loss":
                            continue  # the estimator writes it
                        # ScalarSummary keeps the tag exact (tf.summary.scalar would make
                        # it 'learning_rate_1', the schedule's op being 'learning_rate').
                        tf.add_to_collection(
                            tf.GraphKeys.SUMMARIES,
                            tf.raw_ops.ScalarSummary(tags=name, values=value))
                logged = dict(scalars, step=tf.train.get_or_create_global_step() + 1)
                hooks.append(progress_hook(logged, log_every_n_steps, train_batch_size))
            return tpu_estimator.TPUEstimatorSpec(
                mode=mode, loss=total_loss, train_op=train_op, host_call=host_call,
                training_hooks=hooks, scaffold_fn=scaffold_fn)
        if mode == tf.estimator.ModeKeys.EVAL:
            eval_metrics = (metric_fn, [
                masked_lm_example_loss, masked_lm_log_probs, features["masked_lm_ids"],
                features["masked_lm_weights"], next_sentence_example_loss,
                next_sentence_log_probs, features["next_sentence_labels"]])
            return tpu_estimator.TPUEstimatorSpec(
                mode=mode, loss=total_loss, eval_metrics=eval_metrics,
                scaffold_fn=scaffold_fn)
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
    step = int(tf.train.load_variable(checkpoint, "global_step")) if checkpoint else 0
    if step >= FLAGS.num_train_steps:
        tf.logging.warning("--output_dir=%s already holds step %d, not below "
                           "--num_train_steps=%d: nothing to train; raise --num_train_steps "
                           "to train on", FLAGS.output_dir, step, FLAGS.num_train_steps)


def main(_):
    FLAGS = flags.FLAGS  # pylint: disable=invalid-name
    tf.logging.set_verbosity(tf.logging.INFO)
    tf.get_logger().propagate = False  # absl would print every line a second time
    if not FLAGS.do_train and not FLAGS.do_eval:
        raise cli.InputError("nothing to do; pass --do_train and/or --do_eval")
    for name in ("max_seq_length", "max_predictions_per_seq", "train_batch_size",
                 "eval_batch_size", "num_train_steps", "save_checkpoints_steps",
                 "iterations_per_loop", "log_every_n_steps"):
        if getattr(FLAGS, name) <= 0:
            raise cli.InputError("--%s must be positive (got %d)" % (name, getattr(FLAGS, name)))
    cli.check_positive_number("learning_rate", FLAGS.learning_rate)
    distribution = runtime.check_device_flags(
        FLAGS, {"train_batch_size": FLAGS.train_batch_size} if FLAGS.do_train else {})
    compute_dtype = distribution_lib.check_precision(FLAGS)
    gcs.check_gcs_reachable([FLAGS.bert_config_file, FLAGS.input_file,
                             FLAGS.eval_input_file, FLAGS.output_dir,
                             FLAGS.init_checkpoint])

    bert_config = load_bert_config(FLAGS.bert_config_file, FLAGS.max_seq_length)
    init_checkpoint = restore.start_checkpoint(FLAGS.output_dir, FLAGS.init_checkpoint)
    if init_checkpoint:
        restore.checkpoint_shapes(init_checkpoint)  # stops if it is none
    if not FLAGS.do_train:
        restore.require_checkpoint(FLAGS.output_dir, FLAGS.init_checkpoint, "--do_eval")
    train_files = file_paths.glob_input_files(FLAGS.input_file)
    eval_files = train_files
    if FLAGS.eval_input_file:
        eval_files = file_paths.glob_input_files(FLAGS.eval_input_file, "--eval_input_file")
    for files in ([train_files] if eval_files is train_files else [train_files, eval_files]):
        pretraining_records.check_records(
            files, FLAGS.max_seq_length, FLAGS.max_predictions_per_seq, bert_config.vocab_size,
            bert_config.type_vocab_size, limit=FLAGS.check_records)
    run_folder.ensure_output_dir(FLAGS.output_dir,
                                 chief=distribution is None or distribution.is_chief)
    check_resume(FLAGS, bert_config, train_files)
    if FLAGS.xla_jit and not FLAGS.use_tpu:
        enable_cpu_xla()
    if FLAGS.use_bfloat16 and not FLAGS.use_tpu and not IS_TF2:
        tf.logging.warning("--use_bfloat16 on the CPU under TensorFlow 1.15 is emulated and "
                           "several times slower; it pays off on TPUs and under TensorFlow 2")
    tf.logging.info("*** Input files: %d (%s ...)", len(train_files), train_files[0])
    if distribution is not None:
        tf.logging.info("*** Distribution: %s; global batch %d", distribution.describe(),
                        FLAGS.train_batch_size)

    run_config = runtime.run_config_from_flags(
        FLAGS, runtime.session_config(FLAGS.xla_jit, FLAGS.intra_op_threads,
                                      FLAGS.inter_op_threads),
        distribution=distribution, keep_checkpoint_max=FLAGS.keep_checkpoint_max,
        tf_random_seed=FLAGS.seed, save_summary_steps=FLAGS.save_summary_steps)
    use_one_hot = FLAGS.use_one_hot_embeddings
    model_fn = model_fn_builder(
        bert_config=bert_config,
        init_checkpoint=init_checkpoint,
        learning_rate=FLAGS.learning_rate,
        num_train_steps=FLAGS.num_train_steps,
        num_warmup_steps=FLAGS.num_warmup_steps,
        use_tpu=FLAGS.use_tpu,
        use_one_hot_embeddings=FLAGS.use_tpu if use_one_hot is None else use_one_hot,
        compute_dtype=compute_dtype,
        output_dir=FLAGS.output_dir,
        iterations_per_loop=FLAGS.iterations_per_loop,
        log_every_n_steps=FLAGS.log_every_n_steps,
        train_batch_size=FLAGS.train_batch_size,
        save_summary_steps=FLAGS.save_summary_steps)
    estimator = runtime.make_estimator(
        model_fn, run_config, FLAGS.use_tpu, FLAGS.train_batch_size, FLAGS.eval_batch_size,
        distribution=distribution)

    def input_fn(files, is_training):
        return input_fn_builder(files, FLAGS.max_seq_length, FLAGS.max_predictions_per_seq,
                                is_training, num_cpu_threads=FLAGS.num_cpu_threads,
                                shuffle_buffer=FLAGS.shuffle_buffer, seed=FLAGS.seed)

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


if __name__ == "__main__":
    flags.mark_flag_as_required("bert_config_file")
    flags.mark_flag_as_required("input_file")
    flags.mark_flag_as_required("output_dir")
    cli.run(main)
