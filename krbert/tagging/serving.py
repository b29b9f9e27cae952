"""The tagger as a SavedModel, and serving it: a sentence in, its entities out (no flags).

``export_saved_model`` writes a fine-tuned run_ner.py checkpoint in TensorFlow Serving's
layout, as the classifier's export does (krbert/classifier/model.py: numbered versions
written whole, tag ``serve``): one ``serving_default`` signature

    inputs:  input_ids, input_mask, segment_ids   int32 [B, S]
    outputs: tag_ids                              int32 [B, S] (index into the labels)
             logits                               float32 [B, S, L]

and, in ``assets.extra/``, the vocabulary and ``tagger.json`` (labels, tokenizer
settings, max_seq_length, the BERT config). The signature's output ``tag_ids`` is what
tells a tagger from a classifier (``is_tagger``): predict.py --saved_model hands taggers
to ``serve``.

``Tagger`` turns raw sentences into entities with the same alignment as run_ner.py
(krbert/tagging/features.py): ``tag("서울에서 만나")`` gives
``[{"text": "서울", "type": "LC", "start": 0, "end": 2}]`` (character offsets, end
exclusive).

Shapes: B batch size, S sequence length, L labels.
"""

import json
import os

from google.protobuf.message import DecodeError

import tokenization
from krbert import cli
from krbert.bert_config import BertConfig
from krbert.classifier import model as classifier_model
from krbert.tagging import features, klue, metrics
from krbert.tagging import model as tagging_model
from krbert.tf_compat import tf

SIGNATURE_NAME = "serving_default"
METADATA_FILE = "tagger.json"
VOCAB_FILE = "vocab.txt"
TAG_OUTPUT = "tag_ids"
EXPORT_AGAIN = "export it again (run_ner.py --do_export)"


def restore_tagger(bert_config, checkpoint, config_file):
    """(session, inputs, outputs) of build_inference_graph with the checkpoint's values;
    InputError when the checkpoint holds no tagger of this shape."""
    graph = tf.Graph()
    with graph.as_default():
        inputs, outputs = tagging_model.build_inference_graph(bert_config, len(klue.LABELS))
        variables = tf.global_variables()
        shapes = dict(tf.train.list_variables(checkpoint))
        if tagging_model.WEIGHTS not in shapes:
            raise cli.InputError("%s holds no tagger (no %s variable); fine-tune it with "
                                 "run_ner.py --do_train first" % (checkpoint,
                                                                  tagging_model.WEIGHTS))
        for var in variables:
            name = var.op.name
            if list(shapes.get(name, [])) != var.shape.as_list():
                raise cli.InputError("%s: %s is %s there but %s for %s; pass the config the "
                                     "model was trained with" % (
                                         checkpoint, name, shapes.get(name, "missing"),
                                         var.shape.as_list(), config_file))
        saver = tf.train.Saver(variables)
    session = tf.Session(graph=graph)
    saver.restore(session, checkpoint)
    return session, inputs, outputs


def export_saved_model(export_dir, bert_config, checkpoint, config_file, vocab_file,
                       tokenizer_settings):
    """Writes the tagger of ``checkpoint`` as the next SavedModel version in
    ``export_dir``; ``tokenizer_settings`` (do_lower_case, tokenizer, subchar,
    max_seq_length) go to assets.extra/tagger.json. Returns the version folder."""
    classifier_model.prepare_export_dir(export_dir)
    session, inputs, outputs = restore_tagger(bert_config, checkpoint, config_file)
    metadata = dict(tokenizer_settings, labels=list(klue.LABELS), checkpoint=checkpoint,
                    bert_config=bert_config.to_dict())
    return classifier_model.write_saved_model(
        export_dir, session, inputs,
        {TAG_OUTPUT: outputs["tag_ids"], "logits": outputs["logits"]}, vocab_file,
        METADATA_FILE, metadata)


def is_tagger(path):
    """True when the SavedModel ``path`` (a version folder, or the base folder of versions)
    is a tagger: its serving_default signature outputs ``tag_ids``. False when its
    saved_model.pb cannot be parsed (predict.py's classifier path then names the damage)."""
    return TAG_OUTPUT in classifier_model.signature_outputs(
        classifier_model.find_saved_model(path))


class Tagger(object):
    """A loaded tagger SavedModel with its tokenizer: sentences -> entities."""

    def __init__(self, path):
        folder = classifier_model.find_saved_model(path)
        extra = os.path.join(folder, "assets.extra")
        try:
            with tf.io.gfile.GFile(os.path.join(extra, METADATA_FILE), "r") as reader:
                self.metadata = json.loads(reader.read())
        except (tf.errors.OpError, ValueError) as e:
            raise cli.InputError("%s: %s unreadable (%s); %s" % (
                folder, METADATA_FILE, cli.error_reason(e), EXPORT_AGAIN))
        self.labels = self.metadata["labels"]
        self.max_seq_length = int(self.metadata["max_seq_length"])
        self.tokenizer = tokenization.FullTokenizer(
            os.path.join(extra, VOCAB_FILE), do_lower_case=self.metadata["do_lower_case"],
            tokenizer=self.metadata["tokenizer"], subchar=self.metadata["subchar"],
            check_case=False)
        self.bert_config = BertConfig.from_dict(self.metadata["bert_config"])
        graph = tf.Graph()
        self.session = tf.Session(graph=graph)
        try:
            with graph.as_default():
                meta_graph = tf.saved_model.loader.load(
                    self.session, [tf.saved_model.tag_constants.SERVING], folder)
        except (tf.errors.OpError, OSError, ValueError, RuntimeError, DecodeError) as e:
            self.session.close()
            raise cli.InputError("--saved_model=%s cannot be loaded (%s); %s" % (
                folder, cli.error_reason(e), EXPORT_AGAIN))
        signature = meta_graph.signature_def[SIGNATURE_NAME]
        self.inputs = {name: graph.get_tensor_by_name(signature.inputs[name].name)
                       for name in tagging_model.INPUT_NAMES}
        self.tag_ids = graph.get_tensor_by_name(signature.outputs[TAG_OUTPUT].name)
        graph.finalize()

    def tag_batch(self, texts):
        """The character tags of each text (spaces included)."""
        keep = self.max_seq_length - 2
        char_lists = [list(text) for text in texts]
        alignments = [features.align(self.tokenizer, chars) for chars in char_lists]
        id_lists = [self.tokenizer.convert_tokens_to_ids(
            ["[CLS]"] + a.tokens[:keep] + ["[SEP]"]) for a in alignments]
        input_ids, input_mask, segment_ids = classifier_model.pad_batch(
            id_lists, max(len(ids) for ids in id_lists))
        tag_ids = self.session.run(self.tag_ids, {
            self.inputs["input_ids"]: input_ids, self.inputs["input_mask"]: input_mask,
            self.inputs["segment_ids"]: segment_ids})
        out = []
        for chars, alignment, row, ids in zip(char_lists, alignments, tag_ids, id_lists):
            token_tags = [self.labels[int(i)] for i in row[1:len(ids) - 1]]
            out.append(features.project(alignment, chars, token_tags))
        return out

    def tag(self, texts, batch_size=32):
        """The entities of each text: lists of dicts text, type, start, end (character
        offsets, end exclusive)."""
        results = []
        texts = list(texts)
        for first in range(0, len(texts), batch_size):
            batch = texts[first:first + batch_size]
            for text, tags in zip(batch, self.tag_batch(batch)):
                results.append([{"text": text[start:last + 1], "type": kind,
                                 "start": start, "end": last + 1}
                                for kind, start, last in metrics.entities(tags)])
        return results

    def close(self):
        self.session.close()


def serve(saved_model, lines, write, batch_size=32):
    """predict.py's tagger path: ``lines`` (str, one sentence each) -> ``write`` of a
    header ``text<TAB>entities`` and one row per line, the entities as JSON."""
    texts = [line.rstrip("\r\n") for line in lines]
    tagger = Tagger(saved_model)
    try:
        write("text\tentities\n")
        for text, found in zip(texts, tagger.tag(texts, batch_size)):
            write("%s\t%s\n" % (text.replace("\t", " "),
                                json.dumps(found, ensure_ascii=False)))
    finally:
        tagger.close()
    return len(texts)
