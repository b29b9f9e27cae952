"""The sentence classifier on BERT: its graph, its checkpoints and its SavedModel (no flags).

One function builds the model: ``create_model`` (BERT, then a dense softmax layer on the
pooled [CLS] output). run_classifier.py calls it inside its Estimator; ``Predictor`` and
``export_saved_model`` call it on placeholders (``build_inference_graph``), so a checkpoint
gives the same probabilities in all three.

The SavedModel follows TensorFlow Serving's layout: ``export_dir/<version>/`` (versions
1, 2, ... in the order of export; written under a temporary name and renamed when complete,
so a server watching ``export_dir`` never sees half a model), tag ``serve``, one
``serving_default`` predict signature

    inputs:  input_ids, input_mask, segment_ids   int32 [B, S]
    outputs: probabilities                        float32 [B, C]
             label_ids                            int32 [B] (argmax of probabilities)
             (a score task instead: scores        float32 [B, 1])

The inputs are the same for one text and for a pair (segment_ids 0 for [CLS] a [SEP],
1 for b [SEP]); classifier.json says which one the model reads: ``text_b: true`` for a
pair model (absent for one text, so a single-sentence model's files stay as they were)
and ``problem_type: regression`` for a score.

and, in ``assets.extra/`` (files a server does not load), the vocabulary and
``classifier.json``: labels, tokenizer settings and max_seq_length, which is what
``predict.py --saved_model`` needs to turn text into input_ids.

Shapes: B batch size, S sequence length, H hidden size, C classes.
"""

import json
import os
import re

import numpy as np
from google.protobuf.message import DecodeError

import modeling
import optimization
from krbert import cli, precision
from krbert.files import atomic
from krbert.tf_compat import tf

INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")
SIGNATURE_NAME = "serving_default"
METADATA_FILE = "classifier.json"
VOCAB_FILE = "vocab.txt"
CLASSIFIER_WEIGHTS = "output_weights"
METADATA_KEYS = ("labels", "task", "max_seq_length", "do_lower_case", "tokenizer", "subchar",
                 "bert_config")
"""What classifier.json holds (export_saved_model writes it; predict.py reads it)."""
EXPORT_AGAIN = "export it again (run_classifier.py --do_export)"


# ---------------------------------------------------------------------------------------
# The model


def create_model(bert_config, is_training, features, num_labels, use_one_hot_embeddings,
                 compute_dtype=tf.float32, regression=False):
    """BERT, then dropout and a dense softmax layer on the pooled [CLS] output.

    With ``regression`` the layer has one output, the predicted score, and the loss is the
    mean squared error against ``label_values``; the last output is then the scores
    [B, 1] instead of probabilities (num_labels must be 1).

    Outside training the encoder's last layer computes the [CLS] position alone (the
    pooler reads nothing else; modeling.BertModel's first_token_last_layer).

    The dropout rate is the config's hidden_dropout_prob (0.1, the original's rate, in
    the published configs). Under a tf.distribute strategy the loss is this replica's
    share of the global batch's mean (optimization.mean_share).

    Args:
      features: dict with int32 input_ids, input_mask, segment_ids [B, S] and
        label_ids [B] (float32 label_values [B] with ``regression``).
      compute_dtype: the encoder's compute dtype (float32, bfloat16 or float16).

    Returns:
      (loss scalar, per_example_loss [B], logits [B, C], probabilities [B, C]).
    """
    model = modeling.BertModel(config=bert_config, is_training=is_training,
                               input_ids=features["input_ids"],
                               input_mask=features["input_mask"],
                               token_type_ids=features["segment_ids"],
                               use_one_hot_embeddings=use_one_hot_embeddings,
                               compute_dtype=compute_dtype,
                               first_token_last_layer=not is_training)
    pooled = model.get_pooled_output()
    output_weights = tf.get_variable(
        CLASSIFIER_WEIGHTS, [num_labels, bert_config.hidden_size],
        initializer=modeling.create_initializer(0.02))
    output_bias = tf.get_variable("output_bias", [num_labels],
                                  initializer=tf.zeros_initializer())
    with tf.variable_scope("loss"):
        if is_training and bert_config.hidden_dropout_prob > 0:
            pooled = tf.nn.dropout(pooled, rate=bert_config.hidden_dropout_prob)
        logits = tf.nn.bias_add(tf.matmul(pooled, output_weights, transpose_b=True),
                                output_bias)
        if regression:
            per_example_loss = tf.square(logits[:, 0] - features["label_values"])
            return optimization.mean_share(per_example_loss), per_example_loss, logits, logits
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        one_hot = tf.one_hot(features["label_ids"], depth=num_labels, dtype=tf.float32)
        per_example_loss = -tf.reduce_sum(one_hot * log_probs, axis=-1)
        loss = optimization.mean_share(per_example_loss)
    return loss, per_example_loss, logits, tf.nn.softmax(logits, axis=-1)


def build_inference_graph(bert_config, num_labels, regression=False, compute_dtype=tf.float32):
    """The classifier on int32 placeholders [B, S] (any B and S), in the default graph;
    the encoder computes in ``compute_dtype`` (float32 or bfloat16), the outputs float32.

    Returns:
      (inputs, outputs): inputs maps INPUT_NAMES to the placeholders; outputs holds
      probabilities float32 [B, C] and label_ids int32 [B], or for ``regression`` scores
      float32 [B, 1].
    """
    inputs = {name: tf.placeholder(tf.int32, [None, None], name=name) for name in INPUT_NAMES}
    features = dict(inputs, label_ids=tf.zeros_like(inputs["input_ids"][:, 0]),
                    label_values=tf.zeros_like(inputs["input_ids"][:, 0], dtype=tf.float32))
    _, _, _, probabilities = create_model(bert_config, False, features, num_labels,
                                          use_one_hot_embeddings=False,
                                          compute_dtype=compute_dtype, regression=regression)
    if regression:
        return inputs, {"scores": tf.identity(probabilities, name="scores")}
    label_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return inputs, {"probabilities": tf.identity(probabilities, name="probabilities"),
                    "label_ids": tf.identity(label_ids, name="label_ids")}


# ---------------------------------------------------------------------------------------
# Checkpoints


def check_checkpoint_fits(checkpoint, variables, task_labels, config_file):
    """InputError unless ``checkpoint`` holds every variable with the graph's shape.

    Args:
      checkpoint: a checkpoint prefix.
      variables: the graph's variables.
      task_labels: (the flags naming the task, its label names), e.g.
        ("--task_name=NSMC", ("0", "1")).
      config_file: the BERT config's path, for the message about other variables.
    """
    shapes = dict(tf.train.list_variables(checkpoint))
    task, labels = task_labels
    if CLASSIFIER_WEIGHTS not in shapes:
        raise cli.InputError(
            "%s holds no classifier (no %s variable; a pretraining checkpoint?); fine-tune "
            "it with run_classifier.py --do_train and pass that checkpoint or its "
            "--output_dir" % (checkpoint, CLASSIFIER_WEIGHTS))
    classes = shapes[CLASSIFIER_WEIGHTS][0]
    if classes != len(labels):
        raise cli.InputError(
            "%s: its classifier has %d classes but %s has %d (%s); pass the task it was "
            "fine-tuned on" % (checkpoint, classes, task, len(labels), ", ".join(labels)))
    for var in variables:
        name = re.sub(r":\d+$", "", var.name)
        want = var.shape.as_list()
        if name not in shapes:
            raise cli.InputError("%s has no variable %s; pass a checkpoint of this model "
                                 "(%s)" % (checkpoint, name, config_file))
        if list(shapes[name]) != want:
            raise cli.InputError(
                "%s: %s has shape %s there but %s in %s; pass the config the model was "
                "trained with (--bert_config_file)"
                % (checkpoint, name, list(shapes[name]), want, config_file))


def restore_classifier(bert_config, checkpoint, task_labels, config_file, config_proto=None,
                       regression=False, compute_dtype=tf.float32, kernel_copies=False):
    """A session holding build_inference_graph's graph (in ``compute_dtype``) with the
    checkpoint's values (``regression``: task_labels' labels are ("score",), one output).
    ``kernel_copies`` (bfloat16 only): the dense kernels are read from bfloat16 copies made
    once after the restore (precision.bfloat16_kernel_copies), local variables that
    write_saved_model has a SavedModel's loader make again after its restore.

    Returns:
      (session, inputs, outputs) as build_inference_graph's.
    """
    graph = tf.Graph()
    getter = precision.bfloat16_kernel_copies if (
        kernel_copies and tf.as_dtype(compute_dtype) == tf.bfloat16) else None
    with graph.as_default():
        with tf.variable_scope(tf.get_variable_scope(), custom_getter=getter):
            inputs, outputs = build_inference_graph(bert_config, len(task_labels[1]),
                                                    regression, compute_dtype)
        variables = tf.global_variables()
        check_checkpoint_fits(checkpoint, variables, task_labels, config_file)
        saver = tf.train.Saver(variables)
        copy_kernels = tf.local_variables_initializer()
    session = tf.Session(graph=graph, config=config_proto)
    saver.restore(session, checkpoint)
    session.run(copy_kernels)
    return session, inputs, outputs


class Predictor(object):
    """One graph and one session, reused for every batch: ids -> class probabilities."""

    def __init__(self, session, inputs, probabilities):
        self.session = session
        self.inputs = inputs
        self.probabilities = probabilities

    @classmethod
    def from_checkpoint(cls, bert_config, checkpoint, task_labels, config_file,
                        config_proto=None, regression=False, compute_dtype=tf.float32):
        """The classifier of a fine-tuned checkpoint (see check_checkpoint_fits), its
        encoder in ``compute_dtype``; for ``regression`` predict() gives the scores [B, 1]."""
        session, inputs, outputs = restore_classifier(bert_config, checkpoint, task_labels,
                                                      config_file, config_proto, regression,
                                                      compute_dtype, kernel_copies=True)
        session.graph.finalize()
        return cls(session, inputs, outputs["scores" if regression else "probabilities"])

    @classmethod
    def from_saved_model(cls, path, config_proto=None):
        """The serving_default signature of the SavedModel in ``path``."""
        graph = tf.Graph()
        session = tf.Session(graph=graph, config=config_proto)
        try:
            with graph.as_default():
                meta_graph = tf.saved_model.loader.load(
                    session, [tf.saved_model.tag_constants.SERVING], path)
        except (tf.errors.OpError, OSError, ValueError, RuntimeError, DecodeError) as e:
            session.close()
            raise cli.InputError("--saved_model=%s cannot be loaded (%s); the SavedModel is "
                                 "damaged or incomplete: %s" % (
                                     path, cli.error_reason(e).strip().split("\n")[0],
                                     EXPORT_AGAIN))
        signature = meta_graph.signature_def[SIGNATURE_NAME]
        inputs = {name: graph.get_tensor_by_name(signature.inputs[name].name)
                  for name in INPUT_NAMES}
        output = "scores" if "scores" in signature.outputs else "probabilities"
        probabilities = graph.get_tensor_by_name(signature.outputs[output].name)
        graph.finalize()
        return cls(session, inputs, probabilities)

    def predict(self, input_ids, input_mask, segment_ids):
        """int32 [B, S] arrays -> float32 [B, C] class probabilities."""
        feed = {self.inputs["input_ids"]: input_ids, self.inputs["input_mask"]: input_mask,
                self.inputs["segment_ids"]: segment_ids}
        return self.session.run(self.probabilities, feed)

    def close(self):
        self.session.close()


# ---------------------------------------------------------------------------------------
# SavedModel


def versions(export_dir):
    """The numbered version folders in ``export_dir``, as ints, highest first."""
    if not tf.io.gfile.isdir(export_dir):
        return []
    names = [name.strip("/") for name in tf.io.gfile.listdir(export_dir)]
    return sorted((int(name) for name in names if name.isdigit()), reverse=True)


def next_version_dir(export_dir):
    """``export_dir/<n>``, n one more than the highest numbered folder there (from 1)."""
    return os.path.join(export_dir, str((versions(export_dir) or [0])[0] + 1))


def export_saved_model(export_dir, bert_config, checkpoint, task_labels, config_file,
                       vocab_file, tokenizer_settings, task_kind=None,
                       compute_dtype=tf.float32):
    """Writes the classifier of ``checkpoint`` as a SavedModel version in ``export_dir``.

    Args:
      export_dir: the model's base folder (gs:// too); the version is written under a
        temporary name, then renamed to the next number.
      bert_config, checkpoint, task_labels, config_file: as Predictor.from_checkpoint.
      vocab_file: copied to assets.extra/vocab.txt.
      tokenizer_settings: dict (do_lower_case, tokenizer, subchar, max_seq_length)
        written to assets.extra/classifier.json with the task flags and labels, the
        checkpoint and the BERT config.
      task_kind: dict with text_b (a pair model) and problem_type
        ("single_label_classification" or "regression"), also written there; None for a
        single-sentence classifier.
      compute_dtype: the SavedModel's encoder computes in it (float32 or bfloat16; its
        outputs are float32), named in classifier.json (krbert.precision).

    Returns:
      The version folder written.
    """
    prepare_export_dir(export_dir)
    task_kind = task_kind or {}
    regression = task_kind.get("problem_type") == "regression"
    session, inputs, outputs = restore_classifier(bert_config, checkpoint, task_labels,
                                                  config_file, regression=regression,
                                                  compute_dtype=compute_dtype,
                                                  kernel_copies=True)
    metadata = dict(tokenizer_settings, task=task_labels[0], labels=list(task_labels[1]),
                    checkpoint=checkpoint, bert_config=bert_config.to_dict())
    metadata.update({key: value for key, value in task_kind.items() if value})
    metadata[precision.COMPUTE_DTYPE_KEY] = precision.dtype_name(compute_dtype)
    return write_saved_model(export_dir, session, inputs, outputs, vocab_file, METADATA_FILE,
                             metadata)


def write_saved_model(export_dir, session, inputs, outputs, vocab_file, metadata_file,
                      metadata):
    """Writes the graph and variables of ``session``, served through the predict signature
    ``inputs`` -> ``outputs`` (dicts of tensors), as the next version folder of
    ``export_dir``, whole or not at all; assets.extra holds a copy of ``vocab_file`` and
    ``metadata`` as JSON in ``metadata_file``. The graph's local variables (bfloat16 kernel
    copies) are not saved: the loader initializes them after restoring the variables (the
    SavedModel's main op). Closes the session; returns the folder."""
    signature = tf.saved_model.signature_def_utils.predict_signature_def(
        inputs=inputs, outputs=outputs)
    final = next_version_dir(export_dir)
    try:
        with atomic.staged_folder(final, "--export_dir") as temporary:
            with session.graph.as_default():
                main_op = tf.local_variables_initializer() if tf.local_variables() else None
                builder = tf.saved_model.builder.SavedModelBuilder(temporary)
                builder.add_meta_graph_and_variables(
                    session, [tf.saved_model.tag_constants.SERVING],
                    signature_def_map={SIGNATURE_NAME: signature}, strip_default_attrs=True,
                    main_op=main_op)
                builder.save()
            extra = os.path.join(temporary, "assets.extra")
            tf.io.gfile.makedirs(extra)
            tf.io.gfile.copy(vocab_file, os.path.join(extra, VOCAB_FILE), overwrite=True)
            with tf.io.gfile.GFile(os.path.join(extra, metadata_file), "w") as writer:
                writer.write(json.dumps(metadata, indent=1, sort_keys=True) + "\n")
    finally:
        session.close()
    return final


def prepare_export_dir(export_dir):
    """Creates ``export_dir`` and removes the version folders exports that died left there;
    InputError when it is a file or cannot be written."""
    try:
        if tf.io.gfile.exists(export_dir) and not tf.io.gfile.isdir(export_dir):
            raise cli.InputError("--export_dir=%s is a file; give a folder (the SavedModel "
                                 "versions go in it)" % export_dir)
        tf.io.gfile.makedirs(export_dir)
    except (tf.errors.OpError, OSError) as e:
        raise atomic.write_error(export_dir, e)
    for removed in atomic.remove_stale_temporaries(export_dir):
        tf.logging.info("Removed %s, left by a run that died", removed)


def signature_outputs(path):
    """The output names of the serving_default signature of the SavedModel version folder
    ``path`` (none when saved_model.pb cannot be read: loading it then says what is wrong);
    predict.py tells classifiers, taggers and span models apart by them."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as reader:
            saved.ParseFromString(reader.read())
    except (DecodeError, tf.errors.OpError, OSError):
        return set()
    names = set()
    for meta_graph in saved.meta_graphs:
        signature = meta_graph.signature_def.get(SIGNATURE_NAME)
        if signature is not None:
            names.update(signature.outputs.keys())
    return names


def find_saved_model(path):
    """The SavedModel folder ``path`` names: a version folder, or a base folder (its
    highest version). InputError when there is none."""
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    for version in versions(path):
        folder = os.path.join(path, str(version))
        if tf.io.gfile.exists(os.path.join(folder, "saved_model.pb")):
            return folder
    raise cli.InputError("--saved_model=%s holds no saved_model.pb (nor a numbered version "
                         "folder with one); pass a run_classifier.py --export_dir" % path)


def read_saved_model_metadata(path):
    """(classifier.json as a dict, vocabulary path) of a SavedModel version folder."""
    extra = os.path.join(path, "assets.extra")
    metadata_path = os.path.join(extra, METADATA_FILE)
    if not tf.io.gfile.exists(metadata_path):
        raise cli.InputError("%s not found: the SavedModel was not written by "
                             "run_classifier.py --do_export; export it again" % metadata_path)
    try:
        with tf.io.gfile.GFile(metadata_path, "r") as reader:
            metadata = json.loads(reader.read())
    except (tf.errors.OpError, ValueError) as e:
        raise cli.InputError("%s: not readable JSON (%s); %s" % (
            metadata_path, cli.error_reason(e), EXPORT_AGAIN))
    missing = [key for key in METADATA_KEYS if key not in metadata] if isinstance(
        metadata, dict) else list(METADATA_KEYS)
    if missing:
        raise cli.InputError("%s lacks %s; %s" % (metadata_path, ", ".join(missing),
                                                  EXPORT_AGAIN))
    return metadata, os.path.join(extra, VOCAB_FILE)


def pad_batch(id_lists, length, segment_lists=None):
    """Token id lists -> (input_ids, input_mask, segment_ids), int32 [B, length] each,
    zero-padded (single sentences, ``segment_lists`` None: segment 0 throughout)."""
    input_ids = np.zeros((len(id_lists), length), dtype=np.int32)
    input_mask = np.zeros((len(id_lists), length), dtype=np.int32)
    segment_ids = np.zeros((len(id_lists), length), dtype=np.int32)
    for row, ids in enumerate(id_lists):
        input_ids[row, :len(ids)] = ids
        input_mask[row, :len(ids)] = 1
        if segment_lists is not None:
            segment_ids[row, :len(ids)] = segment_lists[row]
    return input_ids, input_mask, segment_ids
