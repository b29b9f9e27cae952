"""Fine-tunes (KR-)BERT on SQuAD-format span extraction: KorQuAD 1.0, SQuAD 1.1 and 2.0.

The original BERT ``run_squad.py`` flags and outputs, on a Cloud TPU (``--use_tpu=true``),
GPUs through tf.distribute (--distribution) or the CPU:

    python3 run_squad.py --do_train=true --do_predict=true --do_lower_case=False \
        --train_file=data/korquad/KorQuAD_v1.0_train.json \
        --predict_file=data/korquad/KorQuAD_v1.0_dev.json \
        --max_seq_length=384 --doc_stride=128 --train_batch_size=32 \
        --learning_rate=3e-5 --num_train_epochs=2.0 \
        --vocab_file=... --bert_config_file=... --init_checkpoint=... --output_dir=runs/korquad

Outputs in --output_dir, as the original writes them:

- ``train.tf_record`` (--do_train): the training features, the original's records in the
  original's order (examples shuffled with random.Random(12345), then windowed);
- ``eval.tf_record``, ``predictions.json`` {question id: answer}, ``nbest_predictions.json``
  and, with --version_2_with_negative, ``null_odds.json`` (--do_predict);
- ``eval_results.txt`` (--do_predict on a file whose every question has answers):
  ``exact_match = ...`` and ``f1 = ...`` as KorQuAD 1.0's official evaluation computes
  them (character F1), then the number of questions and the global step;
- ``training_settings.json``: a rerun with the same flags resumes the run, one with other
  data or flags is refused (give a new --output_dir).

Beyond the original: --train_articles / --predict_articles read a range of the file's
articles (how docs/korquad.md carves KorQuAD's dev set into a training and a held-out
part), --num_workers builds features in parallel (same records), --do_export writes a
SavedModel (question and context in, best span out; predict.py serves it).

Shapes in docstrings: B batch size, S sequence length.
"""

import os
import random

from absl import flags

import tokenization
from krbert import cli
from krbert.checkpoints import restore
from krbert.estimator import fine_tuning, run_folder
from krbert.files import atomic, paths, reading as file_reading
from krbert.span import features as span_features
from krbert.span import metrics, postprocess, reading
from krbert.span import model as span_model
from krbert.tf_compat import tf

fine_tuning.define_fine_tuning_flags(
    flags, 384, "Maximum tokens of a window (question and context) after WordPiece.")
flags.DEFINE_string("train_file", None, "SQuAD-format json for training (KorQuAD, SQuAD).")
flags.DEFINE_string("predict_file", None,
                    "SQuAD-format json for predictions (scored when it has answers).")
flags.DEFINE_integer("doc_stride", 128,
                     "When a context is split into windows, how far apart they start.")
flags.DEFINE_integer("max_query_length", 64,
                     "Maximum question tokens; longer questions are cut to this length.")
flags.DEFINE_bool("do_predict", False, "Whether to predict (and score) --predict_file.")
flags.DEFINE_integer("n_best_size", 20,
                     "The n-best answers to keep per question in nbest_predictions.json.")
flags.DEFINE_integer("max_answer_length", 30,
                     "The maximum length of an answer, in tokens.")
flags.DEFINE_bool("verbose_logging", False,
                  "Log each answer whose characters could not be aligned with the context's "
                  "(it is then kept as the whole words it covers).")
flags.DEFINE_bool("version_2_with_negative", False,
                  "SQuAD 2.0: some questions have no answer (is_impossible).")
flags.DEFINE_float("null_score_diff_threshold", 0.0,
                   "SQuAD 2.0: predict no answer when null score - best score exceeds this.")
flags.DEFINE_string("train_articles", "",
                    "START:END: read only these articles of --train_file (Python slice "
                    "syntax, e.g. :100); all by default.")
flags.DEFINE_string("predict_articles", "",
                    "START:END: read only these articles of --predict_file (e.g. 100:).")
flags.DEFINE_integer("num_workers", 1,
                     "Processes building the features (the records do not depend on it).")

TRAIN_SHUFFLE_SEED = 12345
"""The original shuffles the training examples with random.Random(12345) before
windowing them; kept, so that train.tf_record holds the original's records in order."""


def model_fn_builder(bert_config, init_checkpoint, learning_rate, num_train_steps,
                     num_warmup_steps, use_tpu, log_every_n_steps=100,
                     compute_dtype=tf.float32):
    """The TPUEstimator model_fn: training, or prediction of start and end logits."""

    def forward(features, is_training):
        start_logits, end_logits = span_model.create_model(
            bert_config, is_training, features, use_one_hot_embeddings=use_tpu,
            compute_dtype=compute_dtype if is_training else tf.float32)
        loss = span_model.span_loss(start_logits, end_logits, features["start_positions"],
                                    features["end_positions"]) if is_training else None
        return loss, {"unique_ids": features["unique_ids"], "start_logits": start_logits,
                      "end_logits": end_logits}

    return fine_tuning.model_fn(forward, init_checkpoint, use_tpu, learning_rate,
                                num_train_steps, num_warmup_steps, compute_dtype,
                                log_every_n_steps)


# ---------------------------------------------------------------------------------------
# Checks


def check_flags(FLAGS):
    """One InputError per mistake, before any work."""
    if not (FLAGS.do_train or FLAGS.do_predict or FLAGS.do_export):
        raise cli.InputError("nothing to do: pass --do_train, --do_predict and/or --do_export")
    for name in ("vocab_file", "bert_config_file", "output_dir"):
        if not getattr(FLAGS, name):
            raise cli.InputError("--%s is required" % name)
    if FLAGS.do_train and not FLAGS.train_file:
        raise cli.InputError("--do_train needs --train_file (a SQuAD-format json)")
    if FLAGS.do_predict and not FLAGS.predict_file:
        raise cli.InputError("--do_predict needs --predict_file (a SQuAD-format json)")
    paths.check_file_flag("vocab_file", FLAGS.vocab_file, "the model's vocabulary")
    for name in ("train_file", "predict_file"):
        if getattr(FLAGS, name) and FLAGS["do_" + name.split("_")[0]].value:
            paths.check_file_flag(name, getattr(FLAGS, name), "a SQuAD-format json")
    cli.check_positive_number("learning_rate", FLAGS.learning_rate)
    cli.check_positive_number("num_train_epochs", FLAGS.num_train_epochs)
    for name in ("train_batch_size", "predict_batch_size", "max_seq_length", "doc_stride",
                 "max_query_length", "n_best_size", "max_answer_length", "num_workers"):
        if getattr(FLAGS, name) <= 0:
            raise cli.InputError("--%s=%d must be positive" % (name, getattr(FLAGS, name)))
    span_features.check_window(FLAGS.max_seq_length, FLAGS.doc_stride, FLAGS.max_query_length)


# ---------------------------------------------------------------------------------------
# Data


def read_split(FLAGS, flag, is_training):
    """The SquadFile of --train_file or --predict_file (with its article range)."""
    path = getattr(FLAGS, flag)
    articles = reading.parse_article_range(flag.replace("_file", "_articles"),
                                           getattr(FLAGS, flag.replace("_file", "_articles")))
    squad = reading.read_squad_examples(path, is_training, FLAGS.version_2_with_negative,
                                        articles)
    if not squad.examples:
        raise cli.InputError("%s holds no question%s; check the file and --%s"
                             % (path, " with a usable answer" if is_training else "",
                                flag.replace("_file", "_articles")))
    tf.logging.info("%s: %d articles, %d questions%s", path, squad.num_articles,
                    len(squad.examples), " (%d skipped)" % squad.num_skipped
                    if squad.num_skipped else "")
    return squad


def build_records(FLAGS, tokenizer, examples, is_training, path):
    """Writes the features of ``examples`` to ``path``: (count, features kept for
    prediction, else None)."""
    settings = span_features.SpanSettings(FLAGS.max_seq_length, FLAGS.doc_stride,
                                          FLAGS.max_query_length)
    atomic.check_writable([path], "--output_dir")
    records = span_features.convert_examples_to_features(
        examples, tokenizer, settings, is_training, num_workers=FLAGS.num_workers,
        keep=not is_training)
    count, kept = span_features.write_features(path, records, keep=not is_training)
    tf.logging.info("Wrote %d features of %d questions to %s", count, len(examples), path)
    return count, kept


def training_settings(FLAGS, bert_config):
    """Everything the trained model depends on, as plain JSON values."""
    settings = {"train_file_sha256": file_reading.file_sha256(FLAGS.train_file),
                "bert_config": bert_config.to_dict(),
                "vocab_sha256": file_reading.file_sha256(FLAGS.vocab_file)}
    for name in ("init_checkpoint", "learning_rate", "num_train_epochs", "warmup_proportion",
                 "train_batch_size", "seed", "train_articles", "max_seq_length", "doc_stride",
                 "max_query_length", "do_lower_case", "tokenizer", "subchar",
                 "version_2_with_negative"):
        settings[name] = FLAGS[name].value
    return settings


# ---------------------------------------------------------------------------------------
# Prediction and scoring


def collect_results(estimator, record_path, num_features, max_seq_length):
    """{unique_id: RawResult} of every feature of ``record_path``."""
    input_fn = span_model.make_input_fn(record_path, max_seq_length, is_training=False,
                                        drop_remainder=False)
    results = {}
    for result in estimator.predict(input_fn, yield_single_examples=True):
        unique_id = int(result["unique_ids"])
        results[unique_id] = postprocess.RawResult(
            unique_id, [float(x) for x in result["start_logits"].flat],
            [float(x) for x in result["end_logits"].flat])
        if len(results) % 1000 == 0:
            tf.logging.info("Processing example: %d of %d", len(results), num_features)
    if len(results) != num_features:
        raise RuntimeError("predictions came back for %d of %d features"
                           % (len(results), num_features))
    return results


def write_eval_results(path, scores, global_step):
    """``key = value`` lines: exact_match, f1 (full precision, as the official script
    prints them), total, unanswered, global_step."""
    with atomic.atomic_write(path) as writer:
        for key in ("exact_match", "f1", "total", "unanswered"):
            writer.write("%s = %r\n" % (key, scores[key]))
            tf.logging.info("  %s = %r", key, scores[key])
        writer.write("global_step = %d\n" % global_step)


def predict_and_score(FLAGS, estimator, squad, tokenizer):
    """Writes eval.tf_record, the prediction files and, when every question has answers,
    eval_results.txt."""
    count, features = build_records(FLAGS, tokenizer, squad.examples, False,
                                    os.path.join(FLAGS.output_dir, "eval.tf_record"))
    tf.logging.info("***** Running predictions: %d questions, %d features, batch size %d "
                    "*****", len(squad.examples), count, FLAGS.predict_batch_size)
    results = collect_results(estimator, os.path.join(FLAGS.output_dir, "eval.tf_record"),
                              count, FLAGS.max_seq_length)
    settings = postprocess.PostprocessSettings(
        FLAGS.n_best_size, FLAGS.max_answer_length, FLAGS.do_lower_case,
        FLAGS.version_2_with_negative, FLAGS.null_score_diff_threshold, FLAGS.verbose_logging)
    predictions, nbest, null_odds = postprocess.predict_answers(squad.examples, features,
                                                                results, settings)
    postprocess.write_json(os.path.join(FLAGS.output_dir, "predictions.json"), predictions)
    postprocess.write_json(os.path.join(FLAGS.output_dir, "nbest_predictions.json"), nbest)
    if FLAGS.version_2_with_negative:
        postprocess.write_json(os.path.join(FLAGS.output_dir, "null_odds.json"), null_odds)
    if FLAGS.version_2_with_negative or not all(golds for _, golds in squad.answers):
        tf.logging.info("%s: not every question has answers (or SQuAD 2.0), so no "
                        "eval_results.txt; score predictions.json with the official script",
                        squad.path)
        return
    scores = metrics.korquad_scores(squad.answers, predictions)
    step = tf.train.latest_checkpoint(FLAGS.output_dir)
    global_step = int(tf.train.load_variable(step, "global_step")) if step else 0
    tf.logging.info("***** KorQuAD 1.0 evaluation of %s *****", squad.path)
    write_eval_results(os.path.join(FLAGS.output_dir, "eval_results.txt"), scores,
                       global_step)


def export(FLAGS, bert_config):
    """Writes the latest checkpoint of --output_dir (else --init_checkpoint) as a
    SavedModel version in --export_dir."""
    checkpoint = fine_tuning.export_checkpoint(FLAGS)
    settings = {name: FLAGS[name].value for name in (
        "do_lower_case", "tokenizer", "subchar", "max_seq_length", "doc_stride",
        "max_query_length", "n_best_size", "max_answer_length")}
    path = span_model.export_saved_model(
        fine_tuning.export_base(FLAGS), bert_config,
        restore.resolve_checkpoint(checkpoint), FLAGS.bert_config_file, FLAGS.vocab_file,
        settings)
    tf.logging.info("Exported %s as a SavedModel to %s", checkpoint, path)


def main(_):
    FLAGS = flags.FLAGS
    check_flags(FLAGS)
    distribution, compute_dtype, bert_config = fine_tuning.start_run(
        FLAGS, [FLAGS.train_file, FLAGS.predict_file], ("--do_predict",))
    tokenizer = tokenization.tokenizer_from_flags(FLAGS, bert_config.vocab_size)
    # Both files are read before training, so a bad predict file stops the run first.
    train = read_split(FLAGS, "train_file", True) if FLAGS.do_train else None
    evaluation = read_split(FLAGS, "predict_file", False) if FLAGS.do_predict else None

    num_train_steps = num_warmup_steps = 0
    if train is not None:
        num_train_steps, num_warmup_steps = fine_tuning.train_steps(FLAGS,
                                                                    len(train.examples))
        run_folder.check_same_run(FLAGS.output_dir, training_settings(FLAGS, bert_config))
    model_fn = model_fn_builder(bert_config, FLAGS.init_checkpoint, FLAGS.learning_rate,
                                num_train_steps, num_warmup_steps, FLAGS.use_tpu,
                                FLAGS.log_every_n_steps, compute_dtype)
    estimator = fine_tuning.estimator_factory(FLAGS, model_fn, distribution)(
        FLAGS.predict_batch_size)

    if train is not None:
        examples = list(train.examples)
        random.Random(TRAIN_SHUFFLE_SEED).shuffle(examples)
        record_path = os.path.join(FLAGS.output_dir, "train.tf_record")
        count, _ = build_records(FLAGS, tokenizer, examples, True, record_path)
        tf.logging.info("***** Running training: %d questions, %d features, batch size %d, "
                        "%d steps (%d warmup) *****", len(examples), count,
                        FLAGS.train_batch_size, num_train_steps, num_warmup_steps)
        estimator.train(input_fn=span_model.make_input_fn(
            record_path, FLAGS.max_seq_length, is_training=True, drop_remainder=True,
            seed=FLAGS.seed), max_steps=num_train_steps)

    if distribution is not None and not distribution.is_chief:
        tf.logging.info("Prediction and export run on the chief; this worker is done")
        return
    if evaluation is not None:
        predict_and_score(FLAGS, estimator, evaluation, tokenizer)
    if FLAGS.do_export:
        export(FLAGS, bert_config)


if __name__ == "__main__":
    cli.run(main)
