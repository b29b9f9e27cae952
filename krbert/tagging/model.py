"""The token tagger on BERT: its graph, and a session that serves it (no flags).

``create_model``: BERT's sequence output, dropout, then a dense layer to the label logits
of every token (variables ``tagger/output_weights`` [L, H] and ``tagger/output_bias`` [L],
the layout of transformers' BertForTokenClassification ``classifier``). run_ner.py calls it
in its Estimator; ``build_inference_graph`` calls it on placeholders for the SavedModel
(krbert/tagging/serving.py), so a checkpoint gives the same tags in both.

Shapes: B batch size, S sequence length, H hidden size, L labels.
"""

import modeling
import optimization
from krbert.tf_compat import tf

SCOPE = "tagger"
WEIGHTS = SCOPE + "/output_weights"
BIAS = SCOPE + "/output_bias"
INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")


def create_model(bert_config, is_training, features, num_labels, use_one_hot_embeddings,
                 compute_dtype=tf.float32):
    """BERT, then dropout and a dense layer on every token's output.

    The loss of an example is the mean cross-entropy over its tokens of weight 1
    (label_weights: 0 at [CLS], [SEP] and padding); the batch loss is the mean over the
    examples (under a tf.distribute strategy this replica's share,
    optimization.mean_share).

    Args:
      features: dict of int32 input_ids, input_mask, segment_ids, label_ids,
        label_weights [B, S].
      compute_dtype: the encoder's compute dtype (float32, bfloat16 or float16).

    Returns:
      (loss scalar, logits float32 [B, S, L], predicted label ids int32 [B, S]).
    """
    model = modeling.BertModel(config=bert_config, is_training=is_training,
                               input_ids=features["input_ids"],
                               input_mask=features["input_mask"],
                               token_type_ids=features["segment_ids"],
                               use_one_hot_embeddings=use_one_hot_embeddings,
                               compute_dtype=compute_dtype)
    output = tf.cast(model.get_sequence_output(), tf.float32)
    hidden = bert_config.hidden_size
    with tf.variable_scope(SCOPE):
        weights = tf.get_variable("output_weights", [num_labels, hidden],
                                  initializer=tf.truncated_normal_initializer(stddev=0.02))
        bias = tf.get_variable("output_bias", [num_labels], initializer=tf.zeros_initializer())
    with tf.variable_scope("loss"):
        if is_training and bert_config.hidden_dropout_prob > 0:
            output = tf.nn.dropout(output, rate=bert_config.hidden_dropout_prob)
        shape = tf.shape(output)
        flat = tf.reshape(output, [-1, hidden])
        logits = tf.nn.bias_add(tf.matmul(flat, weights, transpose_b=True), bias)
        logits = tf.reshape(logits, [shape[0], shape[1], num_labels])
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        one_hot = tf.one_hot(features["label_ids"], depth=num_labels, dtype=tf.float32)
        token_loss = -tf.reduce_sum(one_hot * log_probs, axis=-1)  # [B, S]
        token_weights = tf.cast(features["label_weights"], tf.float32)
        per_example = (tf.reduce_sum(token_loss * token_weights, axis=-1) /
                       tf.maximum(tf.reduce_sum(token_weights, axis=-1), 1.0))
        loss = optimization.mean_share(per_example)
    return loss, logits, tf.argmax(logits, axis=-1, output_type=tf.int32)


def build_inference_graph(bert_config, num_labels):
    """The tagger on int32 placeholders [B, S] (any B and S), in the default graph.

    Returns:
      (inputs, outputs): inputs maps INPUT_NAMES to the placeholders; outputs holds
      logits float32 [B, S, L] and tag_ids int32 [B, S].
    """
    inputs = {name: tf.placeholder(tf.int32, [None, None], name=name) for name in INPUT_NAMES}
    features = dict(inputs, label_ids=tf.zeros_like(inputs["input_ids"]),
                    label_weights=inputs["input_mask"])
    _, logits, tag_ids = create_model(bert_config, False, features, num_labels,
                                      use_one_hot_embeddings=False)
    return inputs, {"logits": tf.identity(logits, name="tag_logits"),
                    "tag_ids": tf.identity(tag_ids, name="tag_ids")}
