"""Fine-tunes (KR-)BERT on KLUE-NER: a BIO tag for every character.

run_classifier.py's flags and devices (a Cloud TPU with --use_tpu=true, the CPU, or a
tf.distribute strategy), on KLUE's files in --data_dir:

    python3 run_ner.py --do_train=true --do_eval=true --do_predict=true \
        --data_dir=data/klue --vocab_file=... --bert_config_file=... \
        --init_checkpoint=... --do_lower_case=False --max_seq_length=128 \
        --train_batch_size=32 --learning_rate=5e-5 --num_train_epochs=3 \
        --output_dir=runs/klue_ner

--data_dir holds ``klue-ner-v1.1_train.tsv`` and ``klue-ner-v1.1_dev.tsv``. When the train
file is missing, the dev file is carved: its first 80% of sentences train, the rest is the
dev split (one log line says so; docs/ner.md). Each WordPiece token is trained on the tag
of its first character; predictions go back to characters (krbert/tagging/features.py).

Outputs in --output_dir:
- ``eval_results.txt`` (--do_eval, the dev split): entity-level precision, recall and F1
  (exact span and type), KLUE's entity macro F1 and character-level macro F1, per-type F1
  (krbert/tagging/metrics.py), as ``key = value`` lines;
- ``predictions.tsv`` (--do_predict: --predict_file, else the dev split): the predicted
  tags in the input's format (``##`` lines with the tagged sentence, a character and its
  tag per line);
- ``train.tf_record``, ``eval.tf_record``, ``predict.tf_record``: the token features;
- ``training_settings.json``: a rerun with the same settings resumes, other settings are
  refused;
- with --do_export, a SavedModel in --export_dir (a sentence in, its entities out; served
  by predict.py --saved_model).

Shapes: B batch size, S sequence length, L labels (13).
"""

import os

import numpy as np
from absl import flags
from tqdm import tqdm

import tokenization
from krbert import cli
from krbert.checkpoints import restore
from krbert.estimator import fine_tuning, run_folder
from krbert.files import atomic, paths
from krbert.tagging import features as tagging_features
from krbert.tagging import klue, metrics, serving
from krbert.tagging import model as tagging_model
from krbert.tf_compat import tf

fine_tuning.define_fine_tuning_flags(
    flags, 128, "Maximum tokens per sentence after WordPiece; the characters of the tokens "
    "cut are predicted O.")
flags.DEFINE_string("data_dir", None,
                    "Folder with KLUE's klue-ner-v1.1_train.tsv and klue-ner-v1.1_dev.tsv.")
flags.DEFINE_bool("do_eval", False, "Whether to score the dev split.")
flags.DEFINE_bool("do_predict", False,
                  "Whether to tag --predict_file (else the dev split) into predictions.tsv.")
flags.DEFINE_string("predict_file", None,
                    "A file in KLUE-NER's format to tag with --do_predict (its tags are "
                    "replaced); default the dev split.")
flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
OUTPUT_FILES = ("eval_results.txt", "predictions.tsv", "train.tf_record", "eval.tf_record",
                "predict.tf_record")
"""What run_ner.py writes in --output_dir besides checkpoints."""


# ---------------------------------------------------------------------------------------
# Model


def model_fn_builder(bert_config, init_checkpoint, learning_rate, num_train_steps,
                     num_warmup_steps, use_tpu, log_every_n_steps=100,
                     compute_dtype=tf.float32):
    """The TPUEstimator model_fn: training, or prediction of tag ids [B, S]."""

    def forward(features, is_training):
        loss, _, tag_ids = tagging_model.create_model(
            bert_config, is_training, features, len(klue.LABELS),
            use_one_hot_embeddings=use_tpu,
            compute_dtype=compute_dtype if is_training else tf.float32)
        return loss, {"tag_ids": tag_ids, "example_index": features["example_index"],
                      "is_real_example": features["is_real_example"]}

    return fine_tuning.model_fn(forward, init_checkpoint, use_tpu, learning_rate,
                                num_train_steps, num_warmup_steps, compute_dtype,
                                log_every_n_steps)


# ---------------------------------------------------------------------------------------
# Data


class Split(object):
    """Sentences of one split, their token alignments and their record file."""

    def __init__(self, name, path, sentences, tokenizer, max_seq_length, record_path):
        self.name, self.path, self.sentences = name, path, sentences
        self.alignments, records, stats = tagging_features.build_features(
            tokenizer, sentences, max_seq_length)
        tagging_features.write_records(record_path, records)
        self.record_path = record_path
        tf.logging.info("%s: %d sentences from %s, %d tokens; %d cut to --max_seq_length=%d "
                        "(their tail is predicted O), %d words matched to characters only "
                        "approximately", name, len(sentences), path, stats["num_tokens"],
                        stats["num_truncated"], max_seq_length,
                        stats["num_approximate_words"])


def predict_tags(estimator, split, max_seq_length, use_tpu):
    """The predicted character tags of every sentence of ``split``, in order."""
    count = len(split.sentences)
    input_fn = tagging_features.make_input_fn(split.record_path, max_seq_length,
                                              is_training=False, pad_to_max=use_tpu,
                                              num_examples=count)
    token_ids = [None] * count
    results = estimator.predict(input_fn=input_fn, yield_single_examples=True)
    for result in tqdm(results, total=count, desc="tagging %s" % split.name, unit=" sent",
                       mininterval=2.0):
        if result["is_real_example"]:
            token_ids[int(result["example_index"])] = np.asarray(result["tag_ids"])
    missing = sum(1 for ids in token_ids if ids is None)
    if missing:
        raise RuntimeError("predictions missing for %d of %d sentences" % (missing, count))
    tag_lists = []
    for sentence, alignment, ids in zip(split.sentences, split.alignments, token_ids):
        kept = min(len(alignment.tokens), max_seq_length - 2)
        token_tags = [klue.LABELS[i] for i in ids[1:1 + kept]]
        tag_lists.append(tagging_features.project(alignment, sentence.chars, token_tags))
    return tag_lists


def write_eval_results(path, scores, global_step):
    """``key = value`` lines, headline first."""
    keys = ["entity_f1", "entity_precision", "entity_recall", "entity_macro_f1",
            "char_macro_f1"] + ["f1_%s" % t for t in klue.ENTITY_TYPES]
    values = [(key, scores[key]) for key in keys if key in scores]
    values += [("num_sentences", scores["num_sentences"]),
               ("num_gold_entities", scores["num_gold_entities"]),
               ("num_predicted_entities", scores["num_predicted_entities"]),
               ("global_step", global_step)]
    tf.logging.info("***** Eval results *****")
    with atomic.atomic_write(path) as writer:
        for key, value in values:
            text = "%.4f" % value if isinstance(value, float) else str(value)
            writer.write("%s = %s\n" % (key, text))
            tf.logging.info("  %s = %s", key, text)


def latest_global_step(output_dir):
    checkpoint = tf.train.latest_checkpoint(output_dir)
    return int(tf.train.load_variable(checkpoint, "global_step")) if checkpoint else 0


def training_settings(FLAGS, bert_config, train_path):
    settings = {"train_file": train_path, "bert_config": bert_config.to_dict(),
                "vocab_file": FLAGS.vocab_file, "max_seq_length": FLAGS.max_seq_length}
    for name in ("init_checkpoint", "learning_rate", "num_train_epochs", "warmup_proportion",
                 "train_batch_size", "seed", "do_lower_case", "tokenizer", "subchar"):
        settings[name] = FLAGS[name].value
    return settings


def check_flags(FLAGS):
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict or FLAGS.do_export):
        raise cli.InputError("nothing to do: pass --do_train, --do_eval, --do_predict "
                             "and/or --do_export")
    needs_data = FLAGS.do_train or FLAGS.do_eval or (FLAGS.do_predict and not FLAGS.predict_file)
    for name in ("data_dir", "vocab_file", "bert_config_file", "output_dir"):
        if not getattr(FLAGS, name) and (needs_data or name != "data_dir"):
            raise cli.InputError("--%s is required" % name)
    paths.check_file_flag("vocab_file", FLAGS.vocab_file, "the model's vocabulary")
    if FLAGS.predict_file:
        paths.check_file_flag("predict_file", FLAGS.predict_file, "a KLUE-NER file to tag")
    cli.check_positive_number("learning_rate", FLAGS.learning_rate)
    cli.check_positive_number("num_train_epochs", FLAGS.num_train_epochs)
    for name in ("train_batch_size", "eval_batch_size", "predict_batch_size"):
        if getattr(FLAGS, name) <= 0:
            raise cli.InputError("--%s must be positive" % name)
    if FLAGS.max_seq_length < 3:
        raise cli.InputError("--max_seq_length must hold [CLS], a token and [SEP] (>= 3)")


def export(FLAGS, bert_config):
    checkpoint = restore.resolve_checkpoint(fine_tuning.export_checkpoint(FLAGS))
    settings = {"do_lower_case": FLAGS.do_lower_case, "tokenizer": FLAGS.tokenizer,
                "subchar": FLAGS.subchar, "max_seq_length": FLAGS.max_seq_length}
    path = serving.export_saved_model(
        fine_tuning.export_base(FLAGS), bert_config,
        checkpoint, FLAGS.bert_config_file, FLAGS.vocab_file, settings)
    tf.logging.info("Exported %s as a SavedModel to %s", checkpoint, path)


def main(_):
    FLAGS = flags.FLAGS
    check_flags(FLAGS)
    distribution, compute_dtype, bert_config = fine_tuning.start_run(
        FLAGS, [FLAGS.data_dir, FLAGS.predict_file], ("--do_eval", "--do_predict"))
    tokenizer = tokenization.tokenizer_from_flags(FLAGS, bert_config.vocab_size)
    outputs = [os.path.join(FLAGS.output_dir, name) for name in OUTPUT_FILES]
    for flag, path in (("--predict_file", FLAGS.predict_file), ("--vocab_file",
                                                                FLAGS.vocab_file)):
        if path:
            paths.check_outputs_spare_inputs(outputs, [path], "--output_dir", flag)

    def load(name, sentences_and_path):
        sentences, path = sentences_and_path
        return Split(name, path, sentences, tokenizer, FLAGS.max_seq_length,
                     os.path.join(FLAGS.output_dir, "%s.tf_record" % name))

    # Every input is read before training, so a bad line stops the run first.
    wanted = (["train"] if FLAGS.do_train else []) + (
        ["dev"] if FLAGS.do_eval or (FLAGS.do_predict and not FLAGS.predict_file) else [])
    splits = klue.read_splits(FLAGS.data_dir, wanted) if wanted else {}
    train = load("train", splits["train"]) if FLAGS.do_train else None
    evaluation = load("eval", splits["dev"]) if FLAGS.do_eval else None
    prediction = None
    if FLAGS.do_predict:
        prediction = load("predict", (klue.read_file(FLAGS.predict_file).sentences,
                                      FLAGS.predict_file) if FLAGS.predict_file
                          else splits["dev"])

    num_train_steps = num_warmup_steps = 0
    if train is not None:
        num_train_steps, num_warmup_steps = fine_tuning.train_steps(FLAGS,
                                                                    len(train.sentences))
        run_folder.check_same_run(FLAGS.output_dir,
                                  training_settings(FLAGS, bert_config, train.path))
    model_fn = model_fn_builder(bert_config, FLAGS.init_checkpoint, FLAGS.learning_rate,
                                num_train_steps, num_warmup_steps, FLAGS.use_tpu,
                                FLAGS.log_every_n_steps, compute_dtype)
    estimator_for = fine_tuning.estimator_factory(FLAGS, model_fn, distribution)

    if train is not None:
        tf.logging.info("***** Running training: %d sentences, batch size %d, %d steps "
                        "(%d warmup) *****", len(train.sentences), FLAGS.train_batch_size,
                        num_train_steps, num_warmup_steps)
        estimator_for(FLAGS.predict_batch_size).train(
            input_fn=tagging_features.make_input_fn(
                train.record_path, FLAGS.max_seq_length, is_training=True,
                pad_to_max=FLAGS.use_tpu, seed=FLAGS.seed),
            max_steps=num_train_steps)
    if distribution is not None and not distribution.is_chief:
        tf.logging.info("Evaluation, prediction and export run on the chief; this worker is "
                        "done")
        return

    if evaluation is not None:
        tags = predict_tags(estimator_for(FLAGS.eval_batch_size), evaluation,
                            FLAGS.max_seq_length, FLAGS.use_tpu)
        write_eval_results(os.path.join(FLAGS.output_dir, "eval_results.txt"),
                           metrics.ner_scores(evaluation.sentences, tags),
                           latest_global_step(FLAGS.output_dir))
    if prediction is not None:
        tags = predict_tags(estimator_for(FLAGS.predict_batch_size), prediction,
                            FLAGS.max_seq_length, FLAGS.use_tpu)
        path = os.path.join(FLAGS.output_dir, "predictions.tsv")
        klue.write_file(path, prediction.sentences, tags)
        tf.logging.info("Wrote the tags of %d sentences of %s to %s",
                        len(prediction.sentences), prediction.path, path)
    if FLAGS.do_export:
        export(FLAGS, bert_config)


if __name__ == "__main__":
    cli.run(main)
