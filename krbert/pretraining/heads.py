"""BERT pretraining heads: masked language model and next sentence prediction.

Variables (original checkpoint names):
    cls/predictions/transform/dense/{kernel, bias}   [H, H], [H]
    cls/predictions/transform/LayerNorm/{beta, gamma} [H]
    cls/predictions/output_bias                       [V]
    cls/seq_relationship/output_weights               [2, H]
    cls/seq_relationship/output_bias                  [2]

Under a tf.distribute strategy each replica's loss is its share of the global batch's
loss (optimization.replica_sum): normalised by the whole batch's count of predictions, so
the replicas' losses and gradients add up to those of one device reading the whole batch.

Shape letters: B batch size, S sequence length, H hidden size, V vocabulary size,
P masked positions per example.
"""

import modeling
import optimization
from krbert.tf_compat import tf


def gather_indexes(sequence_tensor, positions):
    """Gathers the vectors at the given positions of each sequence.

    Args:
      sequence_tensor: [B, S, W].
      positions: int32 [B, P] positions within each sequence.

    Returns:
      [B*P, W].
    """
    batch_size, seq_length, width = modeling.get_shape_list(sequence_tensor, expected_rank=3)
    offsets = tf.reshape(tf.range(0, batch_size, dtype=tf.int32) * seq_length, [-1, 1])
    flat_positions = tf.reshape(positions + offsets, [-1])
    flat_sequence = tf.reshape(sequence_tensor, [-1, width])
    return tf.gather(flat_sequence, flat_positions)


def _loss_and_log_probs(logits, labels):
    """Per-row negative log-likelihood and log-probabilities.

    The loss comes from the fused softmax cross-entropy kernel (its gradient is
    computed in the forward pass); log_probs, the same log_softmax, is only evaluated
    when fetched.

    Args:
      logits: float32 [M, C].
      labels: int32 [M] class ids in [0, C).

    Returns:
      (per_example_loss [M], log_probs [M, C]).
    """
    per_example_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits)
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    return per_example_loss, log_probs


def get_masked_lm_output(bert_config, input_tensor, output_weights, positions,
                         label_ids, label_weights, compute_dtype=tf.float32,
                         weight_total=None):
    """Masked LM head and loss; variables under cls/predictions/.

    Args:
      bert_config: the BertConfig.
      input_tensor: float32 [B, S, H] sequence output.
      output_weights: [V, H] word embedding table (tied output weights).
      positions: int32 [B, P] masked positions.
      label_ids: int32 [B, P] original token ids at those positions (in [0, V)).
      label_weights: float32 [B, P], 1.0 for real predictions and 0.0 for padding.
      compute_dtype: dtype of the [B*P, V] output matmul (float32 or bfloat16).
      weight_total: float32 scalar, the label weight of the whole update (every replica's
        and every micro-batch's of gradient accumulation) that normalises the loss; None:
        the global batch's, summed over the replicas.

    Returns:
      (loss scalar, per_example_loss [B*P], log_probs [B*P, V]).
    """
    input_tensor = gather_indexes(input_tensor, positions)  # [B*P, H]
    with tf.variable_scope("cls/predictions"):
        with tf.variable_scope("transform"):
            input_tensor = modeling.dense_layer(
                input_tensor, bert_config.hidden_size, name="dense",
                activation=modeling.get_activation(bert_config.hidden_act),
                initializer_range=bert_config.initializer_range)
            input_tensor = modeling.layer_norm(input_tensor)
        output_bias = tf.get_variable("output_bias", shape=[bert_config.vocab_size],
                                      initializer=tf.zeros_initializer())
        logits = tf.matmul(modeling.cast(input_tensor, compute_dtype),
                           modeling.cast(output_weights, compute_dtype), transpose_b=True)
        logits = tf.nn.bias_add(modeling.cast(logits, tf.float32), output_bias)  # [B*P, V]
        per_example_loss, log_probs = _loss_and_log_probs(logits, tf.reshape(label_ids, [-1]))
        label_weights = tf.reshape(label_weights, [-1])
        numerator = tf.reduce_sum(label_weights * per_example_loss)
        if weight_total is None:
            # The weights of the whole global batch: every replica's, summed.
            weight_total = optimization.replica_sum(tf.reduce_sum(label_weights))
        denominator = weight_total + 1e-5
        loss = numerator / denominator
    return (loss, per_example_loss, log_probs)


def get_next_sentence_output(bert_config, input_tensor, labels, example_total=None):
    """Next sentence prediction head and loss; variables under cls/seq_relationship/.

    Args:
      bert_config: the BertConfig.
      input_tensor: float32 [B, H] pooled output.
      labels: int32 [B] (or [B, 1]): 0 when sentence B follows A, 1 when it is random.
      example_total: the examples of the whole update (gradient accumulation), which
        normalise the loss; None: the global batch's.

    Returns:
      (loss scalar, per_example_loss [B], log_probs [B, 2]).
    """
    with tf.variable_scope("cls/seq_relationship"):
        output_weights = tf.get_variable(
            "output_weights", shape=[2, bert_config.hidden_size],
            initializer=modeling.create_initializer(bert_config.initializer_range))
        output_bias = tf.get_variable("output_bias", shape=[2],
                                      initializer=tf.zeros_initializer())
        logits = tf.matmul(input_tensor, output_weights, transpose_b=True)
        logits = tf.nn.bias_add(logits, output_bias)
        per_example_loss, log_probs = _loss_and_log_probs(logits, tf.reshape(labels, [-1]))
        loss = optimization.mean_share(per_example_loss, example_total)
    return (loss, per_example_loss, log_probs)
