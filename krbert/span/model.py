"""The span model on BERT: its graph, its input pipeline and its SavedModel (no flags).

``create_model`` is the original run_squad.py's head: one dense layer from each final
hidden state to a start and an end logit, variables ``cls/squad/output_weights`` [2, H]
and ``cls/squad/output_bias`` [2] (so the original's checkpoints load unchanged); the
training loss is the mean of the start and end cross-entropies over the positions.

The SavedModel follows the classifier's layout (krbert/classifier/model.py: numbered
versions written whole, tag ``serve``), with one ``serving_default`` signature

    inputs:  input_ids, input_mask, segment_ids   int32 [B, S]
    outputs: start_logits, end_logits             float32 [B, S]

and ``assets.extra/vocab.txt`` and ``assets.extra/span.json`` (tokenizer and window
settings, answer settings), which is what krbert/span/serving.py needs to turn a question
and a context into windows and the logits back into the best span.

Shapes: B batch size, S sequence length, H hidden size.
"""


import modeling
import optimization
from krbert import cli
from krbert.classifier import model as classifier_model
from krbert.estimator import tf_example
from krbert.tf_compat import tf

INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")
OUTPUT_NAMES = ("start_logits", "end_logits")
METADATA_FILE = "span.json"
HEAD_WEIGHTS = "cls/squad/output_weights"
HEAD_BIAS = "cls/squad/output_bias"


def create_model(bert_config, is_training, features, use_one_hot_embeddings,
                 compute_dtype=tf.float32):
    """BERT, then the span head.

    Args:
      features: dict with int32 input_ids, input_mask, segment_ids [B, S].

    Returns:
      (start_logits, end_logits), float32 [B, S] each.
    """
    model = modeling.BertModel(config=bert_config, is_training=is_training,
                               input_ids=features["input_ids"],
                               input_mask=features["input_mask"],
                               token_type_ids=features["segment_ids"],
                               use_one_hot_embeddings=use_one_hot_embeddings,
                               compute_dtype=compute_dtype)
    hidden = tf.cast(model.get_sequence_output(), tf.float32)
    batch_size, seq_length, width = modeling.get_shape_list(hidden, expected_rank=3)
    weights = tf.get_variable(HEAD_WEIGHTS, [2, width],
                              initializer=tf.truncated_normal_initializer(stddev=0.02))
    bias = tf.get_variable(HEAD_BIAS, [2], initializer=tf.zeros_initializer())
    logits = tf.nn.bias_add(tf.matmul(tf.reshape(hidden, [-1, width]), weights,
                                      transpose_b=True), bias)
    logits = tf.transpose(tf.reshape(logits, [batch_size, seq_length, 2]), [2, 0, 1])
    return logits[0], logits[1]


def span_loss(start_logits, end_logits, start_positions, end_positions):
    """(start cross-entropy + end cross-entropy) / 2, averaged over the batch (this
    replica's share of the global batch's mean under a tf.distribute strategy)."""
    seq_length = modeling.get_shape_list(start_logits)[1]

    def cross_entropy(logits, positions):
        one_hot = tf.one_hot(positions, depth=seq_length, dtype=tf.float32)
        return -tf.reduce_sum(one_hot * tf.nn.log_softmax(logits, axis=-1), axis=-1)

    per_example = (cross_entropy(start_logits, start_positions) +
                   cross_entropy(end_logits, end_positions)) / 2.0
    return optimization.mean_share(per_example)


# ---------------------------------------------------------------------------------------
# Input pipeline


def make_input_fn(record_path, seq_length, is_training, drop_remainder, seed=None):
    """An Estimator input_fn over the records of features.write_features.

    Batches: dict of int32 unique_ids [B]; input_ids, input_mask, segment_ids [B, S]; with
    ``is_training`` also start_positions, end_positions [B], repeated and shuffled.
    """
    name_to_features = {
        "unique_ids": tf.io.FixedLenFeature([], tf.int64),
        "input_ids": tf.io.FixedLenFeature([seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([seq_length], tf.int64),
    }
    if is_training:
        name_to_features["start_positions"] = tf.io.FixedLenFeature([], tf.int64)
        name_to_features["end_positions"] = tf.io.FixedLenFeature([], tf.int64)

    def input_fn(params):
        dataset = tf.data.TFRecordDataset(record_path)
        if is_training:
            dataset = dataset.repeat().shuffle(buffer_size=100, seed=seed)
        dataset = dataset.map(lambda record: tf_example.decode_record(record, name_to_features),
                              num_parallel_calls=2)
        return dataset.batch(params["batch_size"], drop_remainder=drop_remainder).prefetch(2)

    return input_fn


# ---------------------------------------------------------------------------------------
# Inference graph and SavedModel


def build_inference_graph(bert_config):
    """The span model on int32 placeholders [B, S] in the default graph: (inputs, outputs)
    keyed by INPUT_NAMES and OUTPUT_NAMES."""
    inputs = {name: tf.placeholder(tf.int32, [None, None], name=name) for name in INPUT_NAMES}
    start_logits, end_logits = create_model(bert_config, False, inputs,
                                            use_one_hot_embeddings=False)
    return inputs, {"start_logits": tf.identity(start_logits, name="start_logits"),
                    "end_logits": tf.identity(end_logits, name="end_logits")}


def restore_span_model(bert_config, checkpoint, config_file):
    """A session holding build_inference_graph's graph with the checkpoint's values;
    InputError when the checkpoint has no span head or another shape."""
    graph = tf.Graph()
    with graph.as_default():
        inputs, outputs = build_inference_graph(bert_config)
        variables = tf.global_variables()
        shapes = dict(tf.train.list_variables(checkpoint))
        if HEAD_WEIGHTS not in shapes:
            raise cli.InputError(
                "%s holds no span head (no %s variable; a pretraining checkpoint?); "
                "fine-tune it with run_squad.py --do_train first" % (checkpoint, HEAD_WEIGHTS))
        for var in variables:
            name = var.op.name
            if name not in shapes or list(shapes[name]) != var.shape.as_list():
                raise cli.InputError(
                    "%s: variable %s is missing or has another shape; pass the config the "
                    "model was trained with (%s)" % (checkpoint, name, config_file))
        saver = tf.train.Saver(variables)
    session = tf.Session(graph=graph)
    saver.restore(session, checkpoint)
    return session, inputs, outputs


def export_saved_model(export_dir, bert_config, checkpoint, config_file, vocab_file,
                       settings):
    """Writes the span model of ``checkpoint`` as the next SavedModel version in
    ``export_dir``; ``settings`` (tokenizer, window and answer settings) go to
    assets.extra/span.json with the BERT config. Returns the version folder."""
    classifier_model.prepare_export_dir(export_dir)
    session, inputs, outputs = restore_span_model(bert_config, checkpoint, config_file)
    metadata = dict(settings, checkpoint=checkpoint, bert_config=bert_config.to_dict())
    return classifier_model.write_saved_model(export_dir, session, inputs, outputs,
                                              vocab_file, METADATA_FILE, metadata)
