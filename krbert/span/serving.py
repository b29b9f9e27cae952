"""Serving a run_squad.py SavedModel: a question and its context in, the best span out
(no flags; predict.py dispatches here when the SavedModel's signature gives start_logits).

Input: one ``question<TAB>context`` a line (UTF-8). Output: a header
``question  answer  probability``, then one row per input line in the input order: the
answer is chosen as run_squad.py chooses it (windows, max context, n-best, the text of the
context's own characters), with the settings exported with the model (span.json); the
probability is the best answer's share of the n-best list. A line without a tab stops the
run with one line naming it.
"""

import io
import json
import os
import sys

import numpy as np

import tokenization
from krbert import cli
from krbert.classifier import model as classifier_model
from krbert.files import atomic
from krbert.span import features as span_features
from krbert.span import model as span_model
from krbert.span import postprocess
from krbert.span.reading import SquadExample, split_context
from krbert.tf_compat import tf

HEADER = "question\tanswer\tprobability\n"


def is_span_saved_model(path):
    """Whether the SavedModel version folder ``path`` is a span model (its signature
    gives start and end logits)."""
    return set(span_model.OUTPUT_NAMES) <= classifier_model.signature_outputs(path)


class SpanServer(object):
    """One SavedModel, its tokenizer and settings: (question, context) -> answers."""

    def __init__(self, path, config_proto=None):
        extra = os.path.join(path, "assets.extra")
        metadata_path = os.path.join(extra, span_model.METADATA_FILE)
        if not tf.io.gfile.exists(metadata_path):
            raise cli.InputError("%s not found: export the model again (run_squad.py "
                                 "--do_export)" % metadata_path)
        with tf.io.gfile.GFile(metadata_path, "r") as reader:
            self.settings = json.loads(reader.read())
        self.tokenizer = tokenization.FullTokenizer(
            os.path.join(extra, classifier_model.VOCAB_FILE), self.settings["do_lower_case"],
            tokenizer=self.settings["tokenizer"], subchar=self.settings["subchar"])
        self.graph = tf.Graph()
        self.session = tf.Session(graph=self.graph, config=config_proto)
        with self.graph.as_default():
            meta_graph = tf.saved_model.loader.load(
                self.session, [tf.saved_model.tag_constants.SERVING], path)
        signature = meta_graph.signature_def[classifier_model.SIGNATURE_NAME]
        self.inputs = {name: self.graph.get_tensor_by_name(signature.inputs[name].name)
                       for name in span_model.INPUT_NAMES}
        self.outputs = [self.graph.get_tensor_by_name(signature.outputs[name].name)
                        for name in span_model.OUTPUT_NAMES]

    def answers(self, pairs, batch_size=32):
        """[(best answer text, its n-best probability)] of (question, context) pairs."""
        examples = [SquadExample(str(i), question, split_context(context)[0], None, None,
                                 None, False) for i, (question, context) in enumerate(pairs)]
        window = span_features.SpanSettings(self.settings["max_seq_length"],
                                            self.settings["doc_stride"],
                                            self.settings["max_query_length"])
        features = [f for _, f in span_features.convert_examples_to_features(
            examples, self.tokenizer, window, False)]
        results = {}
        for lo in range(0, len(features), batch_size):
            batch = features[lo:lo + batch_size]
            feed = {self.inputs[name]: np.array([getattr(f, name) for f in batch], np.int32)
                    for name in span_model.INPUT_NAMES}
            starts, ends = self.session.run(self.outputs, feed)
            for f, start, end in zip(batch, starts, ends):
                results[f.unique_id] = postprocess.RawResult(
                    f.unique_id, [float(x) for x in start], [float(x) for x in end])
        settings = postprocess.PostprocessSettings(
            self.settings["n_best_size"], self.settings["max_answer_length"],
            self.settings["do_lower_case"], False, 0.0)
        predictions, nbest, _ = postprocess.predict_answers(examples, features, results,
                                                            settings)
        return [(predictions[e.qas_id], nbest[e.qas_id][0]["probability"]) for e in examples]

    def close(self):
        self.session.close()


def read_pairs(handle, source):
    """(question, context) of every line; InputError naming a line without a tab."""
    pairs = []
    for number, raw in enumerate(handle, 1):
        line = raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r")
        if number == 1:
            line = line.lstrip("\ufeff")
        if "\t" not in line:
            raise cli.InputError("%s:%d: no tab; give one question<TAB>context a line"
                                 % (source, number))
        question, context = line.split("\t", 1)
        pairs.append((question, context))
    return pairs


def predict_file(saved_model, handle, source, output_file, batch_size, config_proto=None):
    """Answers every line of ``handle``; writes the TSV to ``output_file`` (whole) or
    stdout."""
    pairs = read_pairs(handle, source)
    server = SpanServer(saved_model, config_proto)
    try:
        answers = server.answers(pairs, batch_size)
    finally:
        server.close()
    rows = [HEADER] + ["%s\t%s\t%.6f\n" % (question.replace("\t", " "), text.replace("\t", " "),
                                          probability)
                       for (question, _), (text, probability) in zip(pairs, answers)]
    if output_file:
        atomic.write_text_atomic(output_file, "".join(rows))
    else:
        stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
        stdout.writelines(rows)
        stdout.flush()
    tf.logging.info("Answered %d questions of %s", len(pairs), source)
