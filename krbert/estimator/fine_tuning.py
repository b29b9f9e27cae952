"""What every fine-tuning script (run_classifier.py, run_ner.py, run_squad.py) shares:
the original release's model and training flags (define_fine_tuning_flags, read by the
scripts' main() and by the helpers here), the start of a run (start_run: the checks of the
device and precision flags, check_run_flags, and of the checkpoints it needs,
check_checkpoints; the model config; the output folder), the schedule's step counts
(train_steps), the estimator of each batch size (estimator_factory), the checkpoint an
export writes (export_checkpoint) and its folder (export_base), the TPUEstimator model_fn around a
task's forward pass (model_fn), and the training step it ends in (train_spec): AdamW with
warm-up and linear decay (optimization.py), a dynamic loss scale when the model computes in
float16, the global batch's loss under a tf.distribute strategy, and the CPU/GPU log of
step and loss.
"""

import collections
import os

import optimization
import tokenization
from krbert import cli
from krbert.bert_config import load_bert_config
from krbert.checkpoints import restore
from krbert.estimator import distribution as distribution_lib
from krbert.estimator import run_folder, runtime
from krbert.files import gcs
from krbert.tf_compat import tf, tpu_estimator

RunStart = collections.namedtuple("RunStart", ["distribution", "compute_dtype", "bert_config"])
"""What start_run found: the Distribution (None without --distribution_strategy), the
encoder's compute dtype and the BertConfig."""


def define_fine_tuning_flags(flags, max_seq_length, max_seq_length_help):
    """Defines the flags every fine-tuning script takes, under the original's names: the
    model files, --output_dir, --init_checkpoint, casing, --max_seq_length (its default
    and help per task), --do_train, batch sizes, the schedule, --do_export, --seed, and
    the TPU, tf.distribute and tokenizer flags beside them."""
    flags.DEFINE_string("bert_config_file", None,
                        "The config json file of the pre-trained BERT model.")
    flags.DEFINE_string("vocab_file", None,
                        "The vocabulary file the BERT model was trained on.")
    flags.DEFINE_string("output_dir", None,
                        "Where checkpoints, results and predictions are written (local or "
                        "gs://).")
    flags.DEFINE_string("init_checkpoint", None,
                        "Initial checkpoint, usually from a pre-trained BERT model.")
    flags.DEFINE_bool("do_lower_case", True,
                      "Lower-case the input; False for KR-BERT (cased, Hangul syllables).")
    flags.DEFINE_integer("max_seq_length", max_seq_length, max_seq_length_help)
    flags.DEFINE_bool("do_train", False, "Whether to run training.")
    flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
    flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for predict.")
    flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for Adam.")
    flags.DEFINE_float("num_train_epochs", 3.0, "Total number of training epochs to perform.")
    flags.DEFINE_float("warmup_proportion", 0.1,
                       "Proportion of training to perform linear learning rate warmup for.")
    flags.DEFINE_integer("log_every_n_steps", 100, "Training loss is logged this often.")
    flags.DEFINE_bool("do_export", False,
                      "Whether to write the model (the latest checkpoint in --output_dir, "
                      "else --init_checkpoint) as a SavedModel for predict.py.")
    flags.DEFINE_string("export_dir", None,
                        "Base folder of the SavedModel versions (default "
                        "<output_dir>/export).")
    flags.DEFINE_integer("seed", 12345,
                         "Random seed of initialisation, dropout and shuffling.")
    runtime.define_tpu_flags(flags)
    distribution_lib.define_distribution_flags(flags)
    tokenization.define_tokenizer_flags(flags)


def start_run(FLAGS, input_paths, scoring_flags):
    """What a fine-tuning script's main() does after checking its own flags, before reading
    any data: stops early, each mistake in one line, when a gs:// path is unreachable
    (the model files, --output_dir, --init_checkpoint and ``input_paths``), a device or
    precision flag is wrong (check_run_flags) or a checkpoint is missing
    (check_checkpoints with ``scoring_flags``); then loads --bert_config_file and makes
    --output_dir (on the chief). Returns a RunStart."""
    tf.logging.set_verbosity(tf.logging.INFO)
    gcs.check_gcs_reachable([FLAGS.vocab_file, FLAGS.bert_config_file, FLAGS.output_dir,
                             FLAGS.init_checkpoint] + list(input_paths))
    distribution, compute_dtype = check_run_flags(FLAGS)
    check_checkpoints(FLAGS, scoring_flags)
    bert_config = load_bert_config(FLAGS.bert_config_file, FLAGS.max_seq_length)
    run_folder.ensure_output_dir(FLAGS.output_dir,
                                 chief=distribution is None or distribution.is_chief)
    return RunStart(distribution, compute_dtype, bert_config)


def train_steps(FLAGS, examples):
    """(num_train_steps, num_warmup_steps): --num_train_epochs over ``examples`` training
    examples at --train_batch_size (at least one step), --warmup_proportion of them."""
    num_train_steps = max(1, int(examples / FLAGS.train_batch_size * FLAGS.num_train_epochs))
    return num_train_steps, int(num_train_steps * FLAGS.warmup_proportion)


def estimator_factory(FLAGS, model_fn, distribution=None):
    """A function giving the estimator of a given predict batch size: a TPUEstimator, or
    with a distribution a StrategyEstimator; evaluation batches of --eval_batch_size where
    the script has it, else --predict_batch_size."""
    run_config = runtime.run_config_from_flags(
        FLAGS, None if FLAGS.use_tpu else runtime.session_config(),
        distribution=distribution, tf_random_seed=FLAGS.seed)
    eval_batch_size = (FLAGS["eval_batch_size"].value if "eval_batch_size" in FLAGS
                       else FLAGS.predict_batch_size)

    def estimator_for(predict_batch_size):
        return runtime.make_estimator(
            model_fn, run_config, FLAGS.use_tpu, FLAGS.train_batch_size, eval_batch_size,
            predict_batch_size, distribution=distribution)

    return estimator_for


def check_run_flags(FLAGS):
    """Checks the device, distribution and precision flags before any work (each mistake
    one line); returns (the Distribution or None, the compute dtype)."""
    distribution = runtime.check_device_flags(
        FLAGS, {"train_batch_size": FLAGS.train_batch_size} if FLAGS.do_train else {})
    return distribution, distribution_lib.check_precision(FLAGS)


def check_checkpoints(FLAGS, scoring_flags):
    """Stops before any work when a checkpoint the run needs is missing: the one of
    --init_checkpoint; without --do_train, one to score with for the ``scoring_flags`` set
    (e.g. ("--do_eval", "--do_predict")) in --output_dir or --init_checkpoint; and with none
    of them set (a run that only exports), export_checkpoint's."""
    if FLAGS.init_checkpoint:
        restore.checkpoint_shapes(FLAGS.init_checkpoint)  # stops if it is none
    scored = [flag for flag in scoring_flags if FLAGS[flag[2:]].value]
    if not FLAGS.do_train and scored:
        restore.require_checkpoint(FLAGS.output_dir, FLAGS.init_checkpoint, " and ".join(scored))
    elif not FLAGS.do_train:
        export_checkpoint(FLAGS)


def export_checkpoint(FLAGS):
    """The checkpoint --do_export writes: the latest of --output_dir, else --init_checkpoint;
    InputError when there is none."""
    checkpoint = tf.train.latest_checkpoint(FLAGS.output_dir) or FLAGS.init_checkpoint
    if not checkpoint:
        raise cli.InputError("--do_export: no checkpoint in --output_dir=%s and no "
                             "--init_checkpoint; train first (--do_train) or pass one"
                             % FLAGS.output_dir)
    return checkpoint


def export_base(FLAGS):
    """The folder the SavedModel versions go under: --export_dir, else <output_dir>/export."""
    return FLAGS.export_dir or os.path.join(FLAGS.output_dir, "export")


def model_fn(forward, init_checkpoint, use_tpu, learning_rate, num_train_steps,
             num_warmup_steps, compute_dtype, log_every_n_steps):
    """The TPUEstimator model_fn of a fine-tuning script.

    ``forward(features, is_training)`` builds the task's model and returns (the scalar loss
    of this replica's batch, or None outside training; the dict of prediction tensors). A
    TRAIN call trains on the loss (train_spec, from ``init_checkpoint`` when given), a
    PREDICT call returns the predictions; other modes are refused.
    """

    def estimator_model_fn(features, labels, mode, params):  # pylint: disable=unused-argument
        is_training = mode == tf.estimator.ModeKeys.TRAIN
        loss, predictions = forward(features, is_training)
        scaffold_fn = restore.warm_start(init_checkpoint, use_tpu)
        if is_training:
            return train_spec(loss, scaffold_fn, learning_rate, num_train_steps,
                              num_warmup_steps, use_tpu, compute_dtype, log_every_n_steps)
        if mode == tf.estimator.ModeKeys.PREDICT:
            return tpu_estimator.TPUEstimatorSpec(mode=mode, scaffold_fn=scaffold_fn,
                                                  predictions=predictions)
        raise ValueError("Only TRAIN and PREDICT modes are supported: %s" % mode)

    return estimator_model_fn


def train_spec(loss, scaffold_fn, learning_rate, num_train_steps, num_warmup_steps, use_tpu,
               compute_dtype, log_every_n_steps):
    """The TPUEstimatorSpec of a TRAIN call for the scalar ``loss`` of one replica's batch.

    Under a strategy the summed loss of every replica (the global batch's) is computed on
    every step and logged; on the TPU nothing is logged from the host (the TPUEstimator
    logs the loss itself).
    """
    loss_scale = optimization.DynamicLossScale() if compute_dtype == tf.float16 else None
    train_op = optimization.create_optimizer(loss, learning_rate, num_train_steps,
                                             num_warmup_steps, use_tpu, loss_scale=loss_scale)
    global_loss = optimization.replica_sum(loss)
    if optimization.replica_context() is not None:
        train_op = tf.group(train_op, global_loss)  # all-reduced every step
    hooks = []
    if not use_tpu:
        hooks.append(tf.train.LoggingTensorHook(
            {"step": tf.train.get_or_create_global_step(), "loss": global_loss},
            every_n_iter=log_every_n_steps))
    return tpu_estimator.TPUEstimatorSpec(mode=tf.estimator.ModeKeys.TRAIN, loss=loss,
                                          train_op=train_op, training_hooks=hooks,
                                          scaffold_fn=scaffold_fn)
