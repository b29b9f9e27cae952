"""Fine-tunes (KR-)BERT on a sentence or sentence-pair task: classes or a score.

Tasks (--task_name, the registry krbert/classifier/tasks.py): NSMC and HATE (one text),
KORNLI and KLUE_NLI (pairs, 3 classes), KORSTS and KLUE_STS (pairs, a 0-5 score), and
CUSTOM: your own train/dev/test .tsv/.csv/.jsonl files with --text_column,
--text_b_column (pairs), --label_column and --label_type=class|score (docs/pairs.md). A
pair is fed as ``[CLS] a [SEP] b [SEP]``, segment ids 0 then 1, cut longest first to
--max_seq_length as the original BERT's run_classifier.py does; a score task has one
output and a mean-squared-error loss.

The original BERT ``run_classifier.py`` flags, on a Cloud TPU (``--use_tpu=true``) or the
CPU. KR-BERT-MEDIUM's model card settings:

    python3 run_classifier.py --task_name=NSMC --do_train=true --do_eval=true \
        --do_predict=true --do_lower_case=False --max_seq_length=128 \
        --train_batch_size=128 --learning_rate=5e-05 --num_train_epochs=5.0 \
        --data_dir=data/nsmc --vocab_file=... --bert_config_file=... \
        --init_checkpoint=... --output_dir=runs/nsmc

Splits: training reads ``train``, --do_eval reads --eval_split (dev by default),
--do_predict reads --predict_split (test by default). Outputs in --output_dir:

- ``eval_results.txt``: accuracy, loss, macro-F1, per-class precision/recall/F1 and the
  confusion matrix of --eval_split (macro-F1 is HATE's headline, accuracy NSMC's); for a
  score task eval_loss (mean squared error), pearson and spearman;
- ``test_results.tsv``: class probabilities (or the score), one line per predicted example;
- ``predictions.tsv``: id (or row number), text (and text_b), predicted label or score
  (and gold label);
- ``task.json`` (CUSTOM): the task's columns and classes, read back by evaluation,
  prediction, export and convert_checkpoint.py;
- ``<split>_eval_results.txt``: as eval_results.txt when the predicted split has labels
  (NSMC test: the model card's test accuracy);
- ``submission.csv`` (HATE, --hate_label=hate): the Kaggle korean-hate-speech-detection
  file, header ``comments,label`` and one row per comment, label 0 none, 1 offensive,
  2 hate.
- ``training_settings.json``: what the model was trained with; a rerun with the same
  flags resumes the run, one with other data or flags is refused (give a new
  --output_dir).

Result files are written under a temporary name and renamed when complete.

Token ids are cached as TFRecords in --cache_dir (default --output_dir), keyed by the
vocabulary, tokenizer settings, max_seq_length, task and data file, so a second run skips
tokenization. On the CPU, --bucket_by_length (default) pads each batch only to its
longest example instead of max_seq_length; predictions come out in the input order.

Shapes in docstrings: B batch size, S sequence length, H hidden size, C classes.
"""

import json
import os

import numpy as np
from absl import flags
from tqdm import tqdm

import tokenization
from krbert import cli, precision
from krbert.checkpoints import restore
from krbert.classifier import custom_task, metrics, tasks
from krbert.classifier import features as classifier_features
from krbert.classifier import model as classifier_model
from krbert.estimator import fine_tuning, run_folder
from krbert.files import atomic, paths, reading
from krbert.tf_compat import tf


fine_tuning.define_fine_tuning_flags(
    flags, 128, "Maximum tokens per example after WordPiece; longer ones are cut.")
flags.DEFINE_string("data_dir", None,
                    "Folder with the task's .tsv files (or a folder holding nsmc/, hate/).")
flags.DEFINE_string("task_name", None,
                    "The task to train (any case): NSMC, HATE, KORNLI, KORSTS, KLUE_NLI, "
                    "KLUE_STS, or CUSTOM (with --text_column, --label_column, ...).")
flags.DEFINE_bool("do_eval", False, "Whether to evaluate on --eval_split.")
flags.DEFINE_bool("do_predict", False, "Whether to predict --predict_split.")
flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
flags.DEFINE_string("eval_split", "dev",
                    "Split scored by --do_eval: dev, or test for the model card's figure.")
flags.DEFINE_string("predict_split", "test", "Split predicted by --do_predict.")
flags.DEFINE_string("cache_dir", None,
                    "Where the tokenized features are cached (default --output_dir).")
flags.DEFINE_bool("bucket_by_length", True,
                  "CPU only: batch examples of similar length, padded to the batch's longest "
                  "example instead of --max_seq_length. Ignored with --use_tpu.")
tasks.define_hate_label_flag(flags)
custom_task.define_custom_task_flags(flags)
precision.define_bfloat16_flag(flags, "the encoder (training, --do_eval, --do_predict and the "
                               "--do_export SavedModel)")


# ---------------------------------------------------------------------------------------
# Model


def model_fn_builder(bert_config, num_labels, init_checkpoint, learning_rate,
                     num_train_steps, num_warmup_steps, use_tpu, log_every_n_steps=100,
                     compute_dtype=tf.float32, regression=False):
    """The TPUEstimator model_fn: training, or prediction of class probabilities (of
    scores [B, 1] with ``regression``, under the key "scores").

    float16 compute trains with a DynamicLossScale. Under a tf.distribute strategy the
    function runs once per replica; the logged loss is the global batch's.
    """

    def forward(features, is_training):
        loss, _, _, probabilities = classifier_model.create_model(
            bert_config, is_training, features, num_labels, use_one_hot_embeddings=use_tpu,
            compute_dtype=precision.mode_dtype(compute_dtype, is_training),
            regression=regression)
        return loss, {output_key(regression): probabilities,
                      "example_index": features["example_index"],
                      "is_real_example": features["is_real_example"]}

    return fine_tuning.model_fn(forward, init_checkpoint, use_tpu, learning_rate,
                                num_train_steps, num_warmup_steps, compute_dtype,
                                log_every_n_steps)


def output_key(regression):
    """The prediction key of the model's output: class probabilities or scores."""
    return "scores" if regression else "probabilities"


# ---------------------------------------------------------------------------------------
# Data


def tokenizer_signature(vocab_file, do_lower_case, tokenizer_mode, subchar):
    """Everything the token ids depend on besides the text (part of the cache key)."""
    return {"vocab_sha256": reading.file_sha256(vocab_file),
            "tokenizer": tokenizer_mode, "subchar": bool(subchar),
            "do_lower_case": bool(do_lower_case)}


class FeatureSource(object):
    """Reads splits and caches their features with one tokenizer and settings."""

    def __init__(self, processor, data_dir, tokenizer, signature, max_seq_length, cache_dir):
        self.processor = processor
        self.data_dir = data_dir
        self.tokenizer = tokenizer
        self.signature = signature
        self.max_seq_length = max_seq_length
        self.cache_dir = cache_dir

    def load(self, split_name, need_labels, for_training=False):
        """(Split, record_path, meta); eval and predict records are sorted by length."""
        split = self.processor.read_split(self.data_dir, split_name, need_labels=False)
        if not split.examples:
            raise cli.InputError("%s holds no examples; check the file" % split.path)
        if need_labels and not split.has_labels:
            raise cli.InputError(
                "%s has no '%s' column, so split '%s' cannot be trained on or scored; choose "
                "a labelled split (e.g. --eval_split=dev), or predict it with --do_predict"
                % (split.path, self.processor.label_column, split_name))
        tasks.log_split(self.processor, split)
        record_path, meta = classifier_features.build_feature_cache(
            self.processor, split, self.tokenizer, self.signature, self.max_seq_length,
            self.cache_dir, sort_by_length=not for_training)
        return split, record_path, meta


def predict_probabilities(estimator, record_path, num_examples, max_seq_length,
                          bucket_by_length, use_tpu, desc="predicting", key="probabilities"):
    """float [N, C] class probabilities (scores [N, 1] for key "scores") of the cached
    examples, in their input order."""
    input_fn = classifier_features.make_input_fn(
        record_path, max_seq_length, is_training=False, bucket_by_length=bucket_by_length,
        drop_remainder=use_tpu, num_examples=num_examples, pad_to_batch=use_tpu)
    results = estimator.predict(input_fn=input_fn, yield_single_examples=True)
    return classifier_features.collect_predictions(
        tqdm(results, total=num_examples, desc=desc, unit=" ex", mininterval=2.0),
        num_examples, key)


# ---------------------------------------------------------------------------------------
# Outputs


def write_eval_results(path, report, label_names, split_name, global_step):
    """``key = value`` lines (original names eval_accuracy, eval_loss, global_step),
    then the confusion matrix (rows gold, columns predicted)."""
    values = [("eval_accuracy", report["accuracy"]), ("eval_loss", report["loss"]),
              ("eval_macro_f1", report["macro_f1"]), ("global_step", global_step),
              ("num_examples", report["num_examples"]), ("split", split_name)]
    for name in label_names:
        for metric in ("precision", "recall", "f1"):
            values.append(("%s_%s" % (metric, name), report[metric][name]))
        values.append(("support_%s" % name, report["support"][name]))
    with atomic.atomic_write(path) as writer:
        for key, value in values:
            text = "%.6f" % value if isinstance(value, float) else str(value)
            writer.write("%s = %s\n" % (key, text))
            tf.logging.info("  %s = %s", key, text)
        writer.write("confusion_matrix (rows: gold, columns: predicted)\n")
        for line in metrics.format_confusion_matrix(report["confusion_matrix"], label_names):
            writer.write("  %s\n" % line)
            tf.logging.info("  %s", line)


def write_regression_results(path, report, split_name, global_step):
    """``key = value`` lines of a score task: eval_loss (mean squared error), pearson,
    spearman, global_step, num_examples, split."""
    values = [("eval_loss", report["loss"]), ("pearson", report["pearson"]),
              ("spearman", report["spearman"]), ("global_step", global_step),
              ("num_examples", report["num_examples"]), ("split", split_name)]
    with atomic.atomic_write(path) as writer:
        for key, value in values:
            text = "%.6f" % value if isinstance(value, float) else str(value)
            writer.write("%s = %s\n" % (key, text))
            tf.logging.info("  %s = %s", key, text)


def evaluate(split, probabilities, processor, path, global_step):
    """Scores ``probabilities`` (scores [N, 1] for a score task) against the split's
    labels and writes ``path``."""
    tf.logging.info("***** Eval results (%s %s) *****", processor.tag, split.name)
    if processor.is_regression:
        report = metrics.regression_report([e.label for e in split.examples], probabilities)
        write_regression_results(path, report, split.name, global_step)
    else:
        label_ids = [processor.labels.index(e.label) for e in split.examples]
        report = metrics.classification_report(label_ids, probabilities, processor.labels)
        write_eval_results(path, report, processor.labels, split.name, global_step)
    tf.logging.info("%s %s %s = %.4f (written to %s)", processor.tag, split.name,
                    processor.headline_metric, report[processor.headline_metric], path)
    return report


def _clean(text):
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def predicted_values(probabilities, processor):
    """The prediction of each row: its class name, or its score for a score task."""
    if processor.is_regression:
        return ["%.6f" % row[0] for row in probabilities]
    return [processor.labels[i] for i in np.argmax(probabilities, axis=1)]


def write_predictions(output_dir, split, probabilities, processor):
    """test_results.tsv (class probabilities, or the score), predictions.tsv (id, text,
    text_b for a pair, prediction, label) and the task's own files (HATE: submission.csv)."""
    predicted = np.argmax(probabilities, axis=1)
    with atomic.atomic_write(os.path.join(output_dir, "test_results.tsv")) as writer:
        for row in probabilities:
            writer.write("\t".join(str(float(p)) for p in row) + "\n")
    with atomic.atomic_write(os.path.join(output_dir, "predictions.tsv")) as writer:
        writer.write("id\ttext\t%sprediction%s\n" % ("text_b\t" if processor.is_pair else "",
                                                    "\tlabel" if split.has_labels else ""))
        for example, value in zip(split.examples, predicted_values(probabilities, processor)):
            gold = "\t%s" % example.label if split.has_labels else ""
            text_b = "%s\t" % _clean(example.text_b) if processor.is_pair else ""
            writer.write("%s\t%s\t%s%s%s\n" % (example.guid, _clean(example.text), text_b,
                                               value, gold))
    written = ["test_results.tsv", "predictions.tsv"]
    written += processor.write_extra_predictions(output_dir, split, predicted)
    tf.logging.info("Wrote %d predictions of %s %s to %s: %s", len(predicted), processor.tag,
                    split.name, output_dir, ", ".join(written))


def latest_global_step(output_dir):
    checkpoint = tf.train.latest_checkpoint(output_dir)
    return int(tf.train.load_variable(checkpoint, "global_step")) if checkpoint else 0


# ---------------------------------------------------------------------------------------
# Resuming: a rerun into --output_dir continues the run only when it has the same settings
# (run_folder.check_same_run)


def training_settings(FLAGS, bert_config, train_meta, bucket_by_length):
    """Everything the trained model depends on, as plain JSON values: the training
    features' key (data file, vocabulary, tokenizer, max_seq_length), the config and
    the training flags."""
    settings = {"train_data": train_meta["key_fields"], "bert_config": bert_config.to_dict(),
                "bucket_by_length": bool(bucket_by_length)}
    for name in ("init_checkpoint", "learning_rate", "num_train_epochs", "warmup_proportion",
                 "train_batch_size", "seed"):
        settings[name] = FLAGS[name].value
    return json.loads(json.dumps(settings))


# ---------------------------------------------------------------------------------------


def check_flags(FLAGS):
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict or FLAGS.do_export):
        raise cli.InputError("nothing to do: pass --do_train, --do_eval, --do_predict "
                             "and/or --do_export")
    reads_data = FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict
    for name in ("task_name", "data_dir", "vocab_file", "bert_config_file", "output_dir"):
        if not getattr(FLAGS, name) and (reads_data or name != "data_dir"):
            raise cli.InputError("--%s is required" % name)
    paths.check_file_flag("vocab_file", FLAGS.vocab_file, "the model's vocabulary")
    cli.check_positive_number("learning_rate", FLAGS.learning_rate)
    cli.check_positive_number("num_train_epochs", FLAGS.num_train_epochs)
    for name in ("train_batch_size", "eval_batch_size", "predict_batch_size", "max_seq_length"):
        if getattr(FLAGS, name) <= 0:
            raise cli.InputError("--%s must be positive" % name)
    if FLAGS.max_seq_length < 3:
        raise cli.InputError("--max_seq_length must hold [CLS], a token and [SEP] (>= 3)")


def task_kind(processor):
    """What classifier.json and the HF config say about the task beyond its labels."""
    return {"text_b": processor.is_pair,
            "problem_type": "regression" if processor.is_regression else None}


def output_names(processor):
    """The names of the classifier's outputs: the class names, or ("score",)."""
    return ("score",) if processor.is_regression else tuple(processor.labels)


def export(FLAGS, bert_config, processor):
    """Writes the latest checkpoint of --output_dir (else --init_checkpoint) as a
    SavedModel version in --export_dir."""
    checkpoint = fine_tuning.export_checkpoint(FLAGS)
    settings = {"do_lower_case": FLAGS.do_lower_case, "tokenizer": FLAGS.tokenizer,
                "subchar": FLAGS.subchar, "max_seq_length": FLAGS.max_seq_length}
    path = classifier_model.export_saved_model(
        fine_tuning.export_base(FLAGS), bert_config,
        restore.resolve_checkpoint(checkpoint), (processor.flag_text, output_names(processor)),
        FLAGS.bert_config_file, FLAGS.vocab_file, settings, task_kind(processor),
        precision.inference_dtype(FLAGS.use_bfloat16, FLAGS.use_tpu))
    tf.logging.info("Exported %s as a SavedModel to %s", checkpoint, path)


# ---------------------------------------------------------------------------------------
# The steps of main()


def task_from_flags(FLAGS):
    """The task: the registry's, or --task_name=custom from its flags (its classes from
    the model folder's task.json when not training)."""
    spec = None
    if (FLAGS.task_name or "").strip().lower() == tasks.CUSTOM:
        if FLAGS.do_train:
            spec = custom_task.spec_from_values(FLAGS.text_column, FLAGS.text_b_column,
                                                FLAGS.label_column, FLAGS.label_type)
        else:
            spec = custom_task.load_spec(FLAGS.output_dir)
    return tasks.get_processor(FLAGS.task_name, FLAGS.hate_label, spec)


def feature_source(FLAGS, processor, bert_config):
    """The FeatureSource of the run's tokenizer, data and cache."""
    tokenizer = tokenization.tokenizer_from_flags(FLAGS, bert_config.vocab_size)
    return FeatureSource(
        processor, FLAGS.data_dir, tokenizer,
        tokenizer_signature(FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.tokenizer,
                            FLAGS.subchar),
        FLAGS.max_seq_length, FLAGS.cache_dir or FLAGS.output_dir)


def load_splits(FLAGS, source, processor, bert_config, bucket):
    """(train, evaluation, prediction), each (Split, record_path, meta) or None, with the
    step counts (num_train_steps, num_warmup_steps). Every split is read before training,
    so a split without labels stops the run first. A custom task learns its classes from
    the training file and writes them to --output_dir first."""
    num_train_steps, num_warmup_steps, train = 0, 0, None
    if FLAGS.do_train:
        if processor.name == tasks.CUSTOM:
            processor.learn_labels(processor.read_split(FLAGS.data_dir, "train"))
        train = source.load("train", need_labels=True, for_training=True)
        num_train_steps, num_warmup_steps = fine_tuning.train_steps(FLAGS,
                                                                    len(train[0].examples))
        run_folder.check_same_run(FLAGS.output_dir,
                                  training_settings(FLAGS, bert_config, train[2], bucket))
        if processor.name == tasks.CUSTOM:
            processor.save(FLAGS.output_dir)
    evaluation = source.load(FLAGS.eval_split, need_labels=True) if FLAGS.do_eval else None
    prediction = (source.load(FLAGS.predict_split, need_labels=False) if FLAGS.do_predict
                  else None)
    return (train, evaluation, prediction), (num_train_steps, num_warmup_steps)


def train_model(FLAGS, estimator_for, train, num_train_steps, num_warmup_steps, bucket):
    tf.logging.info("***** Running training: %d examples, batch size %d, %d steps "
                    "(%d warmup) *****", len(train[0].examples), FLAGS.train_batch_size,
                    num_train_steps, num_warmup_steps)
    estimator_for(FLAGS.predict_batch_size).train(
        input_fn=classifier_features.make_input_fn(
            train[1], FLAGS.max_seq_length, is_training=True, bucket_by_length=bucket,
            drop_remainder=True, seed=FLAGS.seed),
        max_steps=num_train_steps)


def score_splits(FLAGS, estimator_for, processor, evaluation, prediction, bucket):
    """Writes eval_results.txt for --eval_split and the predictions of --predict_split
    (with <split>_eval_results.txt when it has labels); a split is predicted once."""
    computed = {}

    def outputs_of(split, record_path, batch_size):
        if split.name not in computed:
            computed[split.name] = predict_probabilities(
                estimator_for(batch_size), record_path, len(split.examples),
                FLAGS.max_seq_length, bucket, FLAGS.use_tpu,
                desc="predicting %s" % split.name, key=output_key(processor.is_regression))
        return computed[split.name]

    if evaluation is not None:
        split, record_path, _ = evaluation
        evaluate(split, outputs_of(split, record_path, FLAGS.eval_batch_size),
                 processor, os.path.join(FLAGS.output_dir, "eval_results.txt"),
                 latest_global_step(FLAGS.output_dir))
    if prediction is not None:
        split, record_path, _ = prediction
        outputs = outputs_of(split, record_path, FLAGS.predict_batch_size)
        write_predictions(FLAGS.output_dir, split, outputs, processor)
        if split.has_labels:
            evaluate(split, outputs, processor,
                     os.path.join(FLAGS.output_dir, "%s_eval_results.txt" % split.name),
                     latest_global_step(FLAGS.output_dir))


def main(_):
    FLAGS = flags.FLAGS
    check_flags(FLAGS)
    processor = task_from_flags(FLAGS)
    distribution, compute_dtype, bert_config = fine_tuning.start_run(
        FLAGS, [FLAGS.data_dir, FLAGS.cache_dir], ("--do_eval", "--do_predict"))
    source = feature_source(FLAGS, processor, bert_config)
    bucket = FLAGS.bucket_by_length and not FLAGS.use_tpu
    tf.logging.info("Batches padded to %s", "their longest example (CPU, --bucket_by_length)"
                    if bucket else "--max_seq_length=%d" % FLAGS.max_seq_length)
    (train, evaluation, prediction), steps = load_splits(FLAGS, source, processor,
                                                         bert_config, bucket)
    model_fn = model_fn_builder(bert_config, processor.num_outputs, FLAGS.init_checkpoint,
                                FLAGS.learning_rate, steps[0], steps[1], FLAGS.use_tpu,
                                FLAGS.log_every_n_steps, compute_dtype,
                                regression=processor.is_regression)
    estimator_for = fine_tuning.estimator_factory(FLAGS, model_fn, distribution)
    if distribution is not None:
        tf.logging.info("Distribution: %s; global batch %d", distribution.describe(),
                        FLAGS.train_batch_size)
    if train is not None:
        train_model(FLAGS, estimator_for, train, steps[0], steps[1], bucket)
    if distribution is not None and not distribution.is_chief:
        tf.logging.info("Evaluation, prediction and export run on the chief; this worker is "
                        "done")
        return
    score_splits(FLAGS, estimator_for, processor, evaluation, prediction, bucket)
    if FLAGS.do_export:
        export(FLAGS, bert_config, processor)


if __name__ == "__main__":
    cli.run(main)
