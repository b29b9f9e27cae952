"""Predicts the label of raw text with a fine-tuned classifier: one text per line in, TSV out.

From a run_classifier.py checkpoint (or its --output_dir, which means its latest one):

    python predict.py --task_name=NSMC --init_checkpoint=runs/nsmc \
        --bert_config_file=vocab/bert_config_medium.json \
        --vocab_file=data/krbert/vocab_krmedium_20000.txt --do_lower_case=False \
        --input_file=reviews.txt --output_file=labels.tsv

or from a SavedModel written by ``run_classifier.py --do_export`` (it carries the
vocabulary, the tokenizer settings and the labels):

    python predict.py --saved_model=runs/nsmc/export < reviews.txt > labels.tsv

A SavedModel of ``run_ner.py --do_export`` (its signature outputs ``tag_ids``) is served
too: a header ``text  entities``, then each line and its entities as JSON
(krbert/tagging/serving.py, docs/ner.md).

A SavedModel of ``run_squad.py --do_export`` answers questions instead: one
``question<TAB>context`` a line in, ``question  answer  probability`` out
(krbert/span/serving.py).

Input: --input_file, or stdin when it is not given (or is ``-``); one text per line, or
for a model of sentence pairs (KORNLI, KORSTS, a custom task with --text_b_column) two
texts per line, ``text<TAB>text_b`` (split at the first tab).
Output: --output_file (written under a temporary name and renamed when complete), or
stdout; a header ``text  label  p_<label>...``, then one row per input line in the input
order: the text (tabs turned to spaces), the predicted label and the class probabilities.
A pair model's rows have ``text  text_b`` first; a score model's rows end in its score
(header ``text  [text_b]  score``).

Every input line gets its row. An empty line is predicted as an empty text, as
run_classifier.py does; a line that is not valid UTF-8 is predicted with its undecodable
bytes replaced by U+FFFD (which the tokenizer drops); a text longer than --max_seq_length
tokens is cut. Each of these is counted, and the first line of each kind is named, on
stderr. A checkpoint of another task or model stops with a one-line error.

Speed: the graph is built once and one session runs every batch. The lines are read in
windows of SORT_WINDOW, sorted by length within a window and batched, each batch padded
only to its longest text (--bucket_by_length); rows are written back in the input order.
(Rounding the length up, to a multiple of 8 say, would only add work: the matrix products
see B * S rows, a multiple of 64 already at the default batch size.) A progress bar is
shown on stderr when it is a terminal and the input has more than PROGRESS_MIN_LINES lines.
"""

import io
import os
import sys
import time

import numpy as np
from absl import flags
from tqdm import tqdm

import tokenization
from krbert import cli, precision
from krbert.bert_config import load_bert_config
from krbert.checkpoints import restore
from krbert.classifier import features as classifier_features
from krbert.classifier import model as classifier_model
from krbert.classifier import custom_task, tasks
from krbert.estimator import runtime
from krbert.files import atomic, paths
from krbert.span import serving as span_serving
from krbert.tagging import serving as tagging_serving
from krbert.tf_compat import tf


REQUIRED_TOKENS = ("[UNK]", "[CLS]", "[SEP]")
"""What a classifier's vocabulary must hold."""

flags.DEFINE_string("input_file", None, "Text to classify, one per line (default: stdin).")
flags.DEFINE_string("output_file", None, "Where the TSV goes (default: stdout).")
flags.DEFINE_string("init_checkpoint", None,
                    "The fine-tuned checkpoint, or the run_classifier.py --output_dir "
                    "holding it (its latest checkpoint).")
flags.DEFINE_string("saved_model", None,
                    "Instead of --init_checkpoint: a run_classifier.py --export_dir (its "
                    "latest version) or one version folder of it.")
flags.DEFINE_string("bert_config_file", None,
                    "The config json file of the fine-tuned BERT model.")
flags.DEFINE_string("vocab_file", None, "The vocabulary file the BERT model was trained on.")
flags.DEFINE_bool("do_lower_case", True,
                  "Lower-case the input; False for KR-BERT (cased, Hangul syllables).")
flags.DEFINE_string("task_name", None,
                    "The task the checkpoint was fine-tuned on: NSMC, HATE, KORNLI, KORSTS, "
                    "KLUE_NLI, KLUE_STS, or CUSTOM (its classes from task.json in the "
                    "checkpoint's folder).")
flags.DEFINE_bool("text_b", None,
                  "Lines hold two tab-separated texts, text and text_b (a pair model). "
                  "Default: what the model reads; a model of the other kind is refused.")
flags.DEFINE_integer("max_seq_length", 128,
                     "Maximum tokens per text after WordPiece; longer ones are cut. With "
                     "--saved_model the exported value unless given.")
flags.DEFINE_integer("batch_size", 64, "Texts per batch.")
flags.DEFINE_bool("bucket_by_length", True,
                  "Batch texts of similar length, each batch padded to its longest text "
                  "instead of --max_seq_length.")
tasks.define_hate_label_flag(flags)
tokenization.define_tokenizer_flags(flags)
precision.define_bfloat16_flag(flags, "the encoder of --init_checkpoint (a SavedModel keeps "
                               "the precision of its export: run_classifier.py --do_export "
                               "--use_bfloat16)")

SORT_WINDOW = 1 << 14
"""Lines read, sorted by length and predicted together."""
PROGRESS_MIN_LINES = 2000
MODEL_FLAGS = ("init_checkpoint", "bert_config_file", "vocab_file", "do_lower_case",
               "task_name", "hate_label", "tokenizer", "subchar", "use_bfloat16")
"""Flags a SavedModel answers itself (see classifier_model's assets.extra)."""


# ---------------------------------------------------------------------------------------
# The model


class Model(object):
    """What turns text into probabilities: predictor, tokenizer, labels, max_seq_length."""

    def __init__(self, predictor, tokenizer, labels, max_seq_length, pair=False,
                 regression=False):
        self.predictor = predictor
        self.tokenizer = tokenizer
        self.labels = labels
        self.max_seq_length = max_seq_length
        self.pair = pair
        self.regression = regression


def checkpoint_processor(FLAGS, checkpoint):
    """The task of --task_name; a custom task's columns and classes from the task.json
    run_classifier.py wrote beside the checkpoint."""
    spec = None
    if FLAGS.task_name.strip().lower() == tasks.CUSTOM:
        spec = custom_task.load_spec(os.path.dirname(checkpoint) or ".")
    return tasks.get_processor(FLAGS.task_name, FLAGS.hate_label, spec)


def model_from_checkpoint(FLAGS, config_proto):
    for name in ("task_name", "bert_config_file", "vocab_file"):
        if not getattr(FLAGS, name):
            raise cli.InputError("--%s is required with --init_checkpoint (or pass "
                                 "--saved_model)" % name)
    if not tf.io.gfile.exists(FLAGS.vocab_file):
        raise cli.InputError("--vocab_file=%s not found; pass the model's vocabulary"
                             % FLAGS.vocab_file)
    checkpoint = restore.resolve_checkpoint(FLAGS.init_checkpoint)
    processor = checkpoint_processor(FLAGS, checkpoint)
    bert_config = load_bert_config(FLAGS.bert_config_file, FLAGS.max_seq_length)
    tokenizer = tokenization.tokenizer_from_flags(FLAGS, bert_config.vocab_size,
                                                  REQUIRED_TOKENS, checkpoint)
    tf.logging.info("Restoring %s (%s)", checkpoint, processor.flag_text)
    outputs = ("score",) if processor.is_regression else processor.labels
    predictor = classifier_model.Predictor.from_checkpoint(
        bert_config, checkpoint, (processor.flag_text, outputs), FLAGS.bert_config_file,
        config_proto, regression=processor.is_regression,
        compute_dtype=precision.inference_dtype(FLAGS.use_bfloat16))
    return Model(predictor, tokenizer, list(outputs), FLAGS.max_seq_length,
                 processor.is_pair, processor.is_regression)


def model_from_saved_model(FLAGS, config_proto):
    given = [name for name in MODEL_FLAGS if FLAGS[name].present]
    if given:
        raise cli.InputError("--saved_model carries the model, its vocabulary, tokenizer "
                             "settings and labels; drop --%s" % " --".join(given))
    path = classifier_model.find_saved_model(FLAGS.saved_model)
    metadata, vocab_file = classifier_model.read_saved_model_metadata(path)
    max_seq_length = metadata["max_seq_length"]
    if FLAGS["max_seq_length"].present:
        max_seq_length = FLAGS.max_seq_length
        limit = metadata["bert_config"]["max_position_embeddings"]
        if max_seq_length > limit:
            raise cli.InputError("--max_seq_length=%d exceeds the model's "
                                 "max_position_embeddings=%d" % (max_seq_length, limit))
    tokenizer = tokenization.FullTokenizer(vocab_file, metadata["do_lower_case"],
                                           tokenizer=metadata["tokenizer"],
                                           subchar=metadata["subchar"],
                                           required_tokens=REQUIRED_TOKENS)
    tf.logging.info("Loading the SavedModel %s (%s, computes in %s)", path, metadata["task"],
                    precision.saved_dtype(metadata).name)
    predictor = classifier_model.Predictor.from_saved_model(path, config_proto)
    return Model(predictor, tokenizer, metadata["labels"], max_seq_length,
                 bool(metadata.get("text_b")), metadata.get("problem_type") == "regression")


def check_text_b(given, model, source):
    """InputError when --text_b says the lines hold another kind of input than the model
    reads (a pair, or one text)."""
    if given is None or given == model.pair:
        return
    if given:
        raise cli.InputError("--text_b: %s is a single-sentence model, so its lines hold one "
                             "text; drop --text_b, or pass a pair model" % source)
    raise cli.InputError("--notext_b: %s is a model of sentence pairs, so every line holds "
                         "text<TAB>text_b; drop --notext_b, or pass a single-sentence model"
                         % source)


# ---------------------------------------------------------------------------------------
# Input


def open_input(path):
    """A binary line reader of ``path`` (gs:// too), or of stdin for None or "-"."""
    if path in (None, "-"):
        return sys.stdin.buffer
    if tf.io.gfile.isdir(path):
        raise cli.InputError("--input_file=%s is a folder; pass a text file, one text per "
                             "line, or give the text on stdin" % path)
    if not tf.io.gfile.exists(path):
        raise cli.InputError("--input_file=%s not found; pass a text file, one text per "
                             "line, or give the text on stdin" % path)
    if "://" in path:
        return tf.io.gfile.GFile(path, "rb")
    return io.open(path, "rb")


def count_lines(path):
    """Lines of a local file (for the progress bar), None for stdin or gs://."""
    if path in (None, "-") or "://" in path:
        return None
    lines, last = 0, b"\n"
    with io.open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


class InputReport(object):
    """Counts the lines of each kind that need a word on stderr, with the first of each."""

    KINDS = (("empty", "empty line(s), predicted as empty texts"),
             ("invalid_utf8", "line(s) not valid UTF-8, predicted with the undecodable "
                              "bytes replaced by U+FFFD"),
             ("truncated", "line(s) longer than --max_seq_length tokens, cut"))

    def __init__(self, source):
        self.source = source
        self.lines = 0
        self.counts = {kind: 0 for kind, _ in self.KINDS}
        self.first = {}

    def note(self, kind, line_number):
        self.counts[kind] += 1
        self.first.setdefault(kind, line_number)

    def log(self):
        for kind, what in self.KINDS:
            if self.counts[kind]:
                tf.logging.warning("%s: %d %s (first: %s:%d)", self.source, self.counts[kind], what,
                                   self.source, self.first[kind])


def decode_line(raw, line_number, report):
    """One input line (bytes, with its line break) -> text, noting what it had."""
    raw = raw.rstrip(b"\n").rstrip(b"\r")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
        report.note("invalid_utf8", line_number)
    if line_number == 1 and text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        report.note("empty", line_number)
    return text


def read_windows(handle, report, size=SORT_WINDOW):
    """Yields lists of at most ``size`` texts, every line of ``handle`` in order."""
    window = []
    for raw in handle:
        report.lines += 1
        window.append(decode_line(raw, report.lines, report))
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


# ---------------------------------------------------------------------------------------
# Prediction


class RunStats(object):
    """Seconds spent tokenizing and in the session; real vs padded token positions."""

    def __init__(self):
        self.tokenize_seconds = 0.0
        self.model_seconds = 0.0
        self.tokens = 0
        self.positions = 0

    def padding_share(self):
        return 1.0 - float(self.tokens) / max(1, self.positions)


def split_pair(text, number, report):
    """(text, text_b) of a pair model's line: split at its first tab; InputError naming
    the line when it has none."""
    if "\t" not in text:
        raise cli.InputError("%s:%d: one text, but the model reads sentence pairs: write "
                             "text<TAB>text_b on every line (or pass a single-sentence model)"
                             % (report.source, number))
    return tuple(text.split("\t", 1))


def tokenize_window(texts, first_line, model, report, stats):
    """(token id lists, segment id lists or None) of consecutive lines: [CLS] ... [SEP]
    (a pair: [CLS] a [SEP] b [SEP]), at most max_seq_length."""
    began = time.time()
    id_lists, segment_lists = [], []
    for number, text in enumerate(texts, start=first_line):
        if model.pair:
            text, text_b = split_pair(text, number, report)
            ids, segments, cut = classifier_features.pair_to_ids(
                tasks.InputExample(str(number), text, None, number, text_b), model.tokenizer,
                model.max_seq_length)
            segment_lists.append(segments)
        else:
            ids, cut = classifier_features.example_to_ids(
                tasks.InputExample(str(number), text, None, number), model.tokenizer,
                model.max_seq_length)
        if cut:
            report.note("truncated", number)
        id_lists.append(ids)
    stats.tokenize_seconds += time.time() - began
    return id_lists, segment_lists if model.pair else None


def predict_ids(predictor, id_lists, batch_size, max_seq_length, bucket, stats, bar,
                segment_lists=None):
    """float [N, C] probabilities (scores [N, 1]) of N token id lists, in their order.

    With ``bucket`` the lists are batched shortest first, each batch padded to its
    longest list; otherwise in their order, padded to max_seq_length.
    """
    order = (sorted(range(len(id_lists)), key=lambda i: len(id_lists[i])) if bucket
             else list(range(len(id_lists))))
    probabilities = None
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        batch = [id_lists[i] for i in rows]
        lengths = [len(ids) for ids in batch]
        length = max(lengths) if bucket else max_seq_length
        arrays = classifier_model.pad_batch(
            batch, length, None if segment_lists is None else [segment_lists[i] for i in rows])
        began = time.time()
        result = predictor.predict(*arrays)
        stats.model_seconds += time.time() - began
        stats.tokens += sum(lengths)
        stats.positions += length * len(batch)
        if probabilities is None:
            probabilities = np.zeros((len(id_lists), result.shape[1]), dtype=np.float32)
        probabilities[rows] = result
        bar.update(len(batch))
    return probabilities


def format_rows(texts, probabilities, model):
    """TSV lines: text (tabs and carriage returns as spaces; a pair: text, text_b), then
    label and probabilities, or the score."""
    if model.pair:
        texts = ["\t".join(t.replace("\t", " ").replace("\r", " ")
                           for t in text.split("\t", 1)) for text in texts]
    else:
        texts = [text.replace("\t", " ").replace("\r", " ") for text in texts]
    if model.regression:
        return ["%s\t%.6f\n" % (text, row[0]) for text, row in zip(texts, probabilities)]
    predicted = np.argmax(probabilities, axis=1)
    return ["%s\t%s\t%s\n" % (text, model.labels[label_id],
                              "\t".join("%.6f" % p for p in row))
            for text, label_id, row in zip(texts, predicted, probabilities)]


def header(model):
    texts = "text\ttext_b" if model.pair else "text"
    if model.regression:
        return texts + "\tscore\n"
    return "%s\tlabel\t%s\n" % (texts, "\t".join("p_%s" % label for label in model.labels))


# ---------------------------------------------------------------------------------------


def check_flags(FLAGS):
    if bool(FLAGS.init_checkpoint) == bool(FLAGS.saved_model):
        raise cli.InputError("pass --init_checkpoint (a fine-tuned checkpoint or its "
                             "folder) or --saved_model (an exported model), one of them")
    if FLAGS.batch_size <= 0:
        raise cli.InputError("--batch_size must be positive")
    if FLAGS.max_seq_length < 3:
        raise cli.InputError("--max_seq_length must hold [CLS], a token and [SEP] (>= 3)")
    if FLAGS.output_file and tf.io.gfile.isdir(FLAGS.output_file):
        raise cli.InputError("--output_file=%s is a folder; name a file" % FLAGS.output_file)


def check_output_spares_inputs(FLAGS):
    """InputError when --output_file is (or links to) a file the run reads."""
    if not FLAGS.output_file:
        return
    for name in ("input_file", "vocab_file", "bert_config_file", "init_checkpoint",
                 "saved_model"):
        path = getattr(FLAGS, name)
        if path and path != "-":
            model = name in ("init_checkpoint", "saved_model")
            inputs = restore.checkpoint_files(path) if model else [path]
            paths.check_outputs_spare_inputs([FLAGS.output_file], inputs, "--output_file",
                                             "--" + name)


def predicted_rows(handle, model, FLAGS, report, stats, bar):
    """Yields the TSV rows of each window of input lines, in the input order."""
    for texts in read_windows(handle, report):
        id_lists, segment_lists = tokenize_window(texts, report.lines - len(texts) + 1, model,
                                                  report, stats)
        probabilities = predict_ids(model.predictor, id_lists, FLAGS.batch_size,
                                    model.max_seq_length, FLAGS.bucket_by_length, stats, bar,
                                    segment_lists)
        yield format_rows(texts, probabilities, model)


def serve_tagger(FLAGS):
    """A run_ner.py SavedModel: each line's entities as JSON (krbert/tagging/serving.py)."""
    report = InputReport(FLAGS.input_file or "<stdin>")
    texts = [decode_line(raw, number, report)
             for number, raw in enumerate(open_input(FLAGS.input_file).readlines(), 1)]
    rows = []
    tagging_serving.serve(FLAGS.saved_model, texts, rows.append, FLAGS.batch_size)
    if FLAGS.output_file:
        atomic.write_text_atomic(FLAGS.output_file, "".join(rows))
    else:
        io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n").writelines(rows)
    report.log()


def main(_):
    FLAGS = flags.FLAGS
    tf.logging.set_verbosity(tf.logging.INFO)
    check_flags(FLAGS)
    check_output_spares_inputs(FLAGS)
    if FLAGS.saved_model and tagging_serving.is_tagger(FLAGS.saved_model):
        return serve_tagger(FLAGS)  # its signature outputs tag_ids: a run_ner.py tagger
    started = time.time()
    handle = open_input(FLAGS.input_file)
    config_proto = runtime.session_config()
    if FLAGS.saved_model and span_serving.is_span_saved_model(
            classifier_model.find_saved_model(FLAGS.saved_model)):
        span_serving.predict_file(classifier_model.find_saved_model(FLAGS.saved_model), handle,
                                  FLAGS.input_file or "<stdin>", FLAGS.output_file,
                                  FLAGS.batch_size, config_proto)
        return
    if FLAGS.saved_model:
        model = model_from_saved_model(FLAGS, config_proto)
    else:
        model = model_from_checkpoint(FLAGS, config_proto)
    setup_seconds = time.time() - started
    check_text_b(FLAGS.text_b, model, FLAGS.saved_model or FLAGS.init_checkpoint)

    source = FLAGS.input_file if FLAGS.input_file not in (None, "-") else "<stdin>"
    report = InputReport(source)
    stats = RunStats()
    total = count_lines(FLAGS.input_file)
    show_bar = sys.stderr.isatty() and (total is None or total > PROGRESS_MIN_LINES)
    rows = [header(model)]
    stdout = None if FLAGS.output_file else io.TextIOWrapper(
        sys.stdout.buffer, encoding="utf-8", newline="\n")
    with tqdm(total=total, unit=" lines", disable=not show_bar, file=sys.stderr,
              mininterval=1.0) as bar:
        for window in predicted_rows(handle, model, FLAGS, report, stats, bar):
            rows.extend(window)
            if stdout is not None:  # stream: each window as soon as it is predicted
                stdout.writelines(rows)
                stdout.flush()
                rows = []
    model.predictor.close()
    if stdout is not None:
        stdout.writelines(rows)
        stdout.flush()
    else:
        atomic.write_text_atomic(FLAGS.output_file, "".join(rows))
    elapsed = time.time() - started
    report.log()
    tf.logging.info("Predicted %d lines of %s in %.1f s (%.0f lines/s) to %s; set-up %.1f s, "
                    "tokenizing %.1f s, model %.1f s; padding %.1f%% of %d positions",
                    report.lines, source, elapsed, report.lines / max(elapsed, 1e-9),
                    FLAGS.output_file or "<stdout>", setup_seconds, stats.tokenize_seconds,
                    stats.model_seconds, 100.0 * stats.padding_share(), stats.positions)


if __name__ == "__main__":
    cli.run(main)
