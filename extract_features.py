"""Token and sentence embeddings from a BERT checkpoint.

The original BERT release's extract_features.py, same flags and output, plus pooled
sentence vectors:

    python extract_features.py --input_file=texts.txt --output_file=features.jsonl \
        --vocab_file=... --bert_config_file=... --init_checkpoint=... \
        --do_lower_case=False --layers=-1,-2,-3,-4 --max_seq_length=128 --batch_size=32

Input: UTF-8 text, one example per line, stripped of surrounding whitespace. A line
``text_a ||| text_b`` is a pair (split at the last " ||| "): ``[CLS] a [SEP] b [SEP]`` with
segment ids 0 up to the first [SEP], 1 after it; the longer side is cut first when the pair
exceeds --max_seq_length. Line i of the input is record i of the output: an empty line
(or one with no tokens) is kept and embedded as ``[CLS] [SEP]``; such lines and truncated
ones are counted in the closing summary. A line that is not UTF-8 stops the run with
``file:line`` before the model runs.

Outputs (--output_file, local or gs://, written under a temporary name and renamed when
complete; never over an input; what a killed run left is removed by the next run):

- ``--pooling=none`` (default): JSON lines in the original's format, one per input line,
  ``{"linex_index": i, "features": [{"token": t, "layers": [{"index": l, "values": [...]},
  ...]}, ...]}`` for every token, [CLS] and [SEP] included, in the order of --layers;
  values rounded to 6 decimals as the original rounds them.
- ``--pooling=cls`` or ``--pooling=mean``: one vector per input line in a float32 .npy
  array [N, L * H] (--output_file must end in .npy): the chosen --layers concatenated in
  the order given, so ``--layers=-1`` gives the last layer alone. ``cls`` takes the [CLS]
  position (not the pooler's tanh layer), ``mean`` averages over the real tokens (input_mask
  1: [CLS] and [SEP] included, padding excluded). Values are not rounded.

Memory stays flat in the number of lines: a first pass tokenizes the input into a
temporary TFRecord next to the output (its line count sizes the .npy header), the model
streams over it, and the JSON writer tokenizes the lines again in step with the results.
On the CPU a batch is padded only to its longest line, on a TPU to --max_seq_length (there
--output_file must be on gs://, where the TPU reads the temporary TFRecord).

Shapes in docstrings: B batch size, S sequence length, H hidden size, L len(--layers).
"""

import collections
import json
import shutil
import tempfile

import numpy as np
from absl import flags
from tqdm import tqdm

import modeling
import tokenization
from krbert import cli, precision
from krbert.bert_config import load_bert_config
from krbert.checkpoints import restore
from krbert.estimator import runtime, tf_example
from krbert.files import atomic, paths, reading
from krbert.tf_compat import tf, tpu_estimator


flags.DEFINE_string("input_file", None,
                    "Text to embed, one example per line; 'text_a ||| text_b' for a pair.")
flags.DEFINE_string("output_file", None,
                    "JSON lines (--pooling=none) or a .npy file (--pooling=cls or mean).")
flags.DEFINE_string("layers", "-1,-2,-3,-4",
                    "Encoder layers to output, comma-separated; -1 is the last.")
flags.DEFINE_string("bert_config_file", None,
                    "The config json file of the pre-trained BERT model.")
flags.DEFINE_integer("max_seq_length", 128,
                     "Maximum tokens per line after WordPiece, [CLS] and [SEP] included; "
                     "longer lines are cut.")
flags.DEFINE_string("init_checkpoint", None,
                    "The BERT checkpoint (prefix such as .../bert_model.ckpt, or a folder "
                    "holding checkpoints: its latest).")
flags.DEFINE_string("vocab_file", None, "The vocabulary file the BERT model was trained on.")
flags.DEFINE_bool("do_lower_case", True,
                  "Lower-case the input; False for KR-BERT (cased, Hangul syllables).")
flags.DEFINE_integer("batch_size", 32, "Batch size for predictions.")
flags.DEFINE_bool("use_one_hot_embeddings", False,
                  "Look up word embeddings with a one-hot matmul (faster on TPUs) instead of "
                  "a gather.")
flags.DEFINE_enum("pooling", "none", ["none", "cls", "mean"],
                  "none: every token's values as JSON lines; cls or mean: one vector per "
                  "line ([CLS] position, or mean over real tokens) of the --layers "
                  "concatenated, written to a .npy file.")
precision.define_bfloat16_flag(flags, "the encoder (the output values are float32)")
runtime.define_tpu_flags(flags)
tokenization.define_tokenizer_flags(flags)
flags.adopt_module_key_flags(runtime)  # list the TPU and tokenizer flags in --help
flags.adopt_module_key_flags(tokenization)

SPECIAL_TOKENS = ("[CLS]", "[SEP]")
SHOWN_LINES = 10
"""Line numbers listed in the summary for each kind of line (empty, truncated)."""

Example = collections.namedtuple("Example", ["index", "text_a", "text_b"])
"""One input line: index (0-based line number), text_a, text_b (None unless a pair)."""

Feature = collections.namedtuple(
    "Feature", ["index", "tokens", "input_ids", "segment_ids", "truncated"])
"""One line's model input: index, tokens with [CLS]/[SEP], their ids, segment ids, and
whether tokens were cut to fit --max_seq_length."""


# ---------------------------------------------------------------------------------------
# Input lines to features


def read_examples(path):
    """Yields an Example per line of ``path`` (gs:// too), in file order.

    Raises InputError naming ``path:line`` at the first line that is not valid UTF-8.
    """
    with tf.io.gfile.GFile(path, "rb") as handle:
        for index, raw in enumerate(handle):
            line = reading.decode_line(raw, path, index + 1).strip()
            text_a, separator, text_b = line.rpartition(" ||| ")
            yield Example(index, text_a, text_b) if separator else Example(index, line, None)


def truncate_pair(tokens_a, tokens_b, max_length):
    """Pops tokens off the end of the longer list (tokens_b on a tie) until the two hold
    at most ``max_length`` tokens together; in place."""
    while len(tokens_a) + len(tokens_b) > max_length:
        (tokens_a if len(tokens_a) > len(tokens_b) else tokens_b).pop()


def convert_example(example, tokenizer, max_seq_length):
    """The Feature of one Example: ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``.

    A pair whose second text has no tokens is a single text, as in the original.
    """
    tokens_a = tokenizer.tokenize(example.text_a)
    tokens_b = tokenizer.tokenize(example.text_b) if example.text_b else []
    budget = max_seq_length - (3 if tokens_b else 2)
    truncated = len(tokens_a) + len(tokens_b) > budget
    if tokens_b:
        truncate_pair(tokens_a, tokens_b, budget)
    else:
        tokens_a = tokens_a[:budget]
    tokens = ["[CLS]"] + tokens_a + ["[SEP]"]
    segment_ids = [0] * len(tokens)
    if tokens_b:
        tokens += tokens_b + ["[SEP]"]
        segment_ids += [1] * (len(tokens_b) + 1)
    return Feature(example.index, tokens, tokenizer.convert_tokens_to_ids(tokens),
                   segment_ids, truncated)


def read_features(path, tokenizer, max_seq_length):
    """Yields the Feature of every line of ``path``, in file order."""
    for example in read_examples(path):
        yield convert_example(example, tokenizer, max_seq_length)


class LineNumbers(object):
    """How many lines are of a kind, and the first SHOWN_LINES of their line numbers."""

    def __init__(self):
        self.count = 0
        self.first = []

    def add(self, number):
        self.count += 1
        if len(self.first) < SHOWN_LINES:
            self.first.append(number)

    def __str__(self):
        more = ", ..." if self.count > len(self.first) else ""
        return "line %s%s" % (", ".join(str(n) for n in self.first), more)


class LineStats(object):
    """Counts of the lines seen: all, pairs, lines with no tokens, truncated lines."""

    def __init__(self):
        self.lines = 0
        self.pairs = 0
        self.empty = LineNumbers()
        self.truncated = LineNumbers()

    def add(self, feature):
        self.lines += 1
        self.pairs += int(1 in feature.segment_ids)
        if len(feature.tokens) == 2:
            self.empty.add(feature.index + 1)
        if feature.truncated:
            self.truncated.add(feature.index + 1)

    def summary(self, max_seq_length):
        """One sentence on the pairs and on the lines embedded other than as written."""
        parts = ["%d line(s), %d pair(s)" % (self.lines, self.pairs)]
        if self.empty.count:
            parts.append("%d line(s) with no tokens embedded as [CLS] [SEP] (%s)"
                         % (self.empty.count, self.empty))
        if self.truncated.count:
            parts.append("%d line(s) cut to %d tokens (%s)"
                         % (self.truncated.count, max_seq_length, self.truncated))
        return "; ".join(parts)


def write_feature_records(features, path):
    """Writes the features as TFRecords (unique_id, input_ids, segment_ids); LineStats."""
    stats = LineStats()
    with tf.io.TFRecordWriter(path) as writer:
        for feature in tqdm(features, desc="tokenizing", unit=" lines", mininterval=2.0):
            stats.add(feature)
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "unique_id": tf_example.int64_feature([feature.index]),
                "input_ids": tf_example.int64_feature(feature.input_ids),
                "segment_ids": tf_example.int64_feature(feature.segment_ids),
            })).SerializeToString())
    return stats


RECORD_FEATURES = {
    "unique_id": tf.io.FixedLenFeature([], tf.int64),
    "input_ids": tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
    "segment_ids": tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
}


def input_fn_builder(record_path, max_seq_length, pad_to_max_length):
    """An Estimator input_fn over the feature records, in file order.

    Batches: int32 unique_id [B]; input_ids, input_mask, segment_ids [B, S], S the
    longest line of the batch, or --max_seq_length with ``pad_to_max_length`` (TPU).
    """

    def decode(record):
        features = tf_example.decode_record(record, RECORD_FEATURES)
        features["input_mask"] = tf.ones_like(features["input_ids"])
        return features

    def input_fn(params):
        length = max_seq_length if pad_to_max_length else None
        shapes = {"unique_id": [], "input_ids": [length], "input_mask": [length],
                  "segment_ids": [length]}
        dataset = tf.data.TFRecordDataset(record_path).map(decode, num_parallel_calls=2)
        return dataset.padded_batch(params["batch_size"], padded_shapes=shapes).prefetch(2)

    return input_fn


# ---------------------------------------------------------------------------------------
# Model


def parse_layers(text, num_hidden_layers):
    """The layer indexes of ``--layers`` ("-1,-2"); InputError when one does not exist."""
    try:
        indexes = [int(part) for part in text.split(",")]
    except ValueError:
        raise cli.InputError("--layers=%s: give comma-separated integers such as -1,-2,-3,-4"
                             % text)
    for index in indexes:
        if not -num_hidden_layers <= index < num_hidden_layers:
            raise cli.InputError(
                "--layers=%s: the model has %d layers, so an index is from %d to %d"
                % (text, num_hidden_layers, -num_hidden_layers, num_hidden_layers - 1))
    return indexes


def pool_layers(layers, input_mask, pooling):
    """One vector per example from the chosen layers.

    Args:
      layers: list of L float32 [B, S, H] encoder outputs.
      input_mask: int32 [B, S], 1 for real tokens.
      pooling: "cls" (position 0) or "mean" (mean over positions where input_mask is 1).

    Returns:
      float32 [B, L * H]: the L pooled vectors concatenated in the order of ``layers``.
    """
    stacked = tf.concat(layers, axis=-1)  # [B, S, L*H]
    if pooling == "cls":
        return stacked[:, 0, :]
    mask = tf.cast(input_mask, tf.float32)[:, :, None]  # [B, S, 1]
    # At least 1: the padding examples a TPU adds to the last batch have no real token.
    return tf.reduce_sum(stacked * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


def check_checkpoint_variables(tvars, checkpoint, bert_config_file):
    """InputError unless the checkpoint holds every model variable with its shape."""
    stored = dict(tf.train.list_variables(checkpoint))
    missing = [v.op.name for v in tvars if v.op.name not in stored]
    for var in tvars:
        shape = var.shape.as_list()
        if var.op.name in stored and list(stored[var.op.name]) != shape:
            raise cli.InputError(
                "--init_checkpoint=%s: %s is %s there but %s with --bert_config_file=%s; pass "
                "the config the checkpoint was trained with"
                % (checkpoint, var.op.name, list(stored[var.op.name]), shape, bert_config_file))
    if missing:
        raise cli.InputError(
            "--init_checkpoint=%s lacks %d of the model's %d variables (e.g. %s); pass a BERT "
            "checkpoint" % (checkpoint, len(missing), len(tvars), missing[0]))


def model_fn_builder(bert_config, bert_config_file, init_checkpoint, layer_indexes, pooling,
                     use_tpu, use_one_hot_embeddings, compute_dtype=tf.float32):
    """The TPUEstimator model_fn: BERT in inference mode (its encoder in ``compute_dtype``,
    float32 or bfloat16), float32 outputs of the chosen layers.

    Predictions: unique_id [B] and either layer_output_<j> [B, S, H] for the j-th of
    ``layer_indexes`` (pooling "none") or pooled [B, L * H].
    """

    def model_fn(features, labels, mode, params):  # pylint: disable=unused-argument
        if mode != tf.estimator.ModeKeys.PREDICT:
            raise ValueError("Only PREDICT mode is supported: %s" % mode)
        model = modeling.BertModel(config=bert_config, is_training=False,
                                   input_ids=features["input_ids"],
                                   input_mask=features["input_mask"],
                                   token_type_ids=features["segment_ids"],
                                   use_one_hot_embeddings=use_one_hot_embeddings,
                                   compute_dtype=compute_dtype)
        check_checkpoint_variables(tf.trainable_variables(), init_checkpoint,
                                   bert_config_file)
        scaffold_fn = restore.warm_start(init_checkpoint, use_tpu)
        all_layers = model.get_all_encoder_layers()
        layers = [all_layers[index] for index in layer_indexes]
        predictions = {"unique_id": features["unique_id"]}
        if pooling == "none":
            for j, layer in enumerate(layers):
                predictions["layer_output_%d" % j] = layer
        else:
            predictions["pooled"] = pool_layers(layers, features["input_mask"], pooling)
        return tpu_estimator.TPUEstimatorSpec(mode=mode, predictions=predictions,
                                              scaffold_fn=scaffold_fn)

    return model_fn


# ---------------------------------------------------------------------------------------
# Outputs


def json_line(feature, result, layer_indexes):
    """The original's JSON record of one line: every token with the values of each chosen
    layer, rounded to 6 decimals (``round(float(x), 6)``)."""
    tokens = []
    for position, token in enumerate(feature.tokens):
        layers = [{"index": index,
                   "values": [round(x, 6)
                              for x in result["layer_output_%d" % j][position].tolist()]}
                  for j, index in enumerate(layer_indexes)]
        tokens.append({"token": token, "layers": layers})
    return json.dumps({"linex_index": feature.index, "features": tokens})


def write_json_lines(writer, results, features, layer_indexes):
    """Writes one JSON line per result; ``features`` are the same lines, in step.
    Returns the number of lines written."""
    written = 0
    for result, feature in zip(results, features):
        check_in_step(result, feature.index)
        writer.write(json_line(feature, result, layer_indexes) + "\n")
        written += 1
    return written


def write_npy(writer, results, rows, width):
    """Writes the pooled vectors as a float32 [rows, width] .npy, row after row.
    Returns the number of rows written."""
    np.lib.format.write_array_header_1_0(
        writer, {"descr": "<f4", "fortran_order": False, "shape": (rows, width)})
    written = 0
    for result in results:
        check_in_step(result, written)
        writer.write(np.asarray(result["pooled"], dtype="<f4").tobytes())
        written += 1
    return written


def check_in_step(result, index):
    if int(result["unique_id"]) != index:
        raise RuntimeError("result for line %d arrived where line %d was expected"
                           % (int(result["unique_id"]) + 1, index + 1))


# ---------------------------------------------------------------------------------------


def check_flags(FLAGS):
    for name in ("input_file", "output_file", "vocab_file", "bert_config_file",
                 "init_checkpoint"):
        if not getattr(FLAGS, name):
            raise cli.InputError("--%s is required" % name)
    for name in ("input_file", "vocab_file"):
        if not tf.io.gfile.exists(getattr(FLAGS, name)):
            raise cli.InputError("--%s=%s not found" % (name, getattr(FLAGS, name)))
    if FLAGS.batch_size <= 0:
        raise cli.InputError("--batch_size must be positive")
    if FLAGS.max_seq_length < 3:
        raise cli.InputError("--max_seq_length must hold [CLS], a token and [SEP] (>= 3)")
    is_npy = FLAGS.output_file.endswith(".npy")
    if FLAGS.pooling != "none" and not is_npy:
        raise cli.InputError("--pooling=%s writes a .npy array: give an --output_file ending "
                             "in .npy" % FLAGS.pooling)
    if FLAGS.pooling == "none" and is_npy:
        raise cli.InputError("--output_file=%s: without --pooling=cls or mean the output is "
                             "JSON lines; pass --pooling or another file name"
                             % FLAGS.output_file)


def check_output_spares_inputs(FLAGS, checkpoint):
    """InputError when --output_file is (or links to) a file the run reads."""
    for flag, inputs in (("--input_file", [FLAGS.input_file]),
                         ("--vocab_file", [FLAGS.vocab_file]),
                         ("--bert_config_file", [FLAGS.bert_config_file]),
                         ("--init_checkpoint", restore.checkpoint_files(checkpoint))):
        paths.check_outputs_spare_inputs([FLAGS.output_file], inputs, "--output_file", flag)


def make_estimator(FLAGS, model_fn, model_dir):
    run_config = runtime.make_run_config(
        model_dir, FLAGS.use_tpu, tpu_name=FLAGS.tpu_name, tpu_zone=FLAGS.tpu_zone,
        gcp_project=FLAGS.gcp_project, master=FLAGS.master,
        num_tpu_cores=FLAGS.num_tpu_cores, iterations_per_loop=FLAGS.iterations_per_loop,
        config_proto=None if FLAGS.use_tpu else runtime.session_config())
    return runtime.make_estimator(model_fn, run_config, FLAGS.use_tpu,
                                  train_batch_size=FLAGS.batch_size,
                                  predict_batch_size=FLAGS.batch_size)


def extract(FLAGS, bert_config, tokenizer, checkpoint, layer_indexes, temp_output,
            record_path, model_dir):
    """Tokenizes into ``record_path``, runs the model and writes ``temp_output`` (the output
    under its temporary name); LineStats."""
    stats = write_feature_records(
        read_features(FLAGS.input_file, tokenizer, FLAGS.max_seq_length), record_path)
    if not stats.lines:
        raise cli.InputError("%s holds no lines; give one text per line" % FLAGS.input_file)
    model_fn = model_fn_builder(bert_config, FLAGS.bert_config_file, checkpoint,
                                layer_indexes, FLAGS.pooling, FLAGS.use_tpu,
                                FLAGS.use_one_hot_embeddings,
                                precision.inference_dtype(FLAGS.use_bfloat16, FLAGS.use_tpu))
    estimator = make_estimator(FLAGS, model_fn, model_dir)
    predictions = estimator.predict(
        input_fn=input_fn_builder(record_path, FLAGS.max_seq_length, FLAGS.use_tpu),
        yield_single_examples=True)
    results = tqdm(predictions, total=stats.lines, desc="embedding", unit=" lines",
                   mininterval=2.0)
    try:
        if FLAGS.pooling == "none":
            with tf.io.gfile.GFile(temp_output, "w") as writer:
                written = write_json_lines(writer, results, read_features(
                    FLAGS.input_file, tokenizer, FLAGS.max_seq_length), layer_indexes)
        else:
            with tf.io.gfile.GFile(temp_output, "wb") as writer:
                written = write_npy(writer, results, stats.lines,
                                    len(layer_indexes) * bert_config.hidden_size)
    finally:
        results.close()
        predictions.close()  # ends the session now, not after an error line is printed
    if written != stats.lines:
        raise RuntimeError("%d results for the %d lines of %s"
                           % (written, stats.lines, FLAGS.input_file))
    return stats


def main(_):
    FLAGS = flags.FLAGS
    tf.logging.set_verbosity(tf.logging.INFO)
    check_flags(FLAGS)
    runtime.check_tpu_flags(FLAGS)
    bert_config = load_bert_config(FLAGS.bert_config_file, FLAGS.max_seq_length)
    layer_indexes = parse_layers(FLAGS.layers, bert_config.num_hidden_layers)
    checkpoint = restore.resolve_checkpoint(FLAGS.init_checkpoint)
    check_output_spares_inputs(FLAGS, checkpoint)
    tokenizer = tokenization.tokenizer_from_flags(
        FLAGS, bert_config.vocab_size, required_tokens=("[UNK]",) + SPECIAL_TOKENS)

    # The token ids go to a temporary TFRecord beside the output (a TPU reads it there).
    records = FLAGS.output_file + ".tf_record"
    atomic.check_writable([FLAGS.output_file], "--output_file")
    for removed in atomic.remove_stale_temporaries_of([FLAGS.output_file, records]):
        tf.logging.info("Removed %s, left by a run that died", removed)
    record_path = atomic.temporary_name(records)
    # On a TPU the estimator picks its model_dir as in the original; on the CPU it is a
    # local scratch folder removed at the end (no checkpoint is written to it).
    model_dir = None if FLAGS.use_tpu else tempfile.mkdtemp(prefix="extract_features-")
    try:
        with atomic.staged(FLAGS.output_file) as temp_output:
            stats = extract(FLAGS, bert_config, tokenizer, checkpoint, layer_indexes,
                            temp_output, record_path, model_dir)
    finally:
        atomic.discard(record_path)
        if model_dir:
            shutil.rmtree(model_dir, ignore_errors=True)
    shape = (" [%d, %d] float32" % (stats.lines, len(layer_indexes) * bert_config.hidden_size)
             if FLAGS.pooling != "none" else "")
    tf.logging.info("Wrote %s%s: %s", FLAGS.output_file, shape, stats.summary(FLAGS.max_seq_length))


if __name__ == "__main__":
    cli.run(main)
