"""The matrix products of one BERT pretraining step, timed alone: a ceiling on step speed.

A training step does every forward product C = A B once more as dA = dC B^T and
dB = A^T dC (all weights and activations are trained), so its matrix-product work is
three products of each forward shape. Timing those products on their own, with the
same kernels and threads as training, gives the step time if nothing else (dropout,
softmax, layer norm, GELU, Adam, input) cost anything: the examples/s no change to
the non-matmul work can beat without faster matrix products.
"""

import time


def forward_products(config, batch, seq, preds):
    """(name, batch_count, m, k, n, times per step) of each forward product.

    Args:
      config: a modeling.BertConfig.
      batch, seq, preds: B, S and P (masked positions per sequence).
    """
    tokens, hidden, layers = batch * seq, config.hidden_size, config.num_hidden_layers
    heads = config.num_attention_heads
    head_size = hidden // heads
    return [
        ("token-type embeddings (one-hot)", 1, tokens, config.type_vocab_size, hidden, 1),
        ("query/key/value/attention output", 1, tokens, hidden, hidden, 4 * layers),
        ("feed-forward in", 1, tokens, hidden, config.intermediate_size, layers),
        ("feed-forward out", 1, tokens, config.intermediate_size, hidden, layers),
        ("attention scores Q K^T", batch * heads, seq, head_size, seq, layers),
        ("attention context P V", batch * heads, seq, seq, head_size, layers),
        ("masked-LM transform", 1, batch * preds, hidden, hidden, 1),
        ("masked-LM output (vocabulary)", 1, batch * preds, hidden, config.vocab_size, 1),
        ("pooler", 1, batch, hidden, hidden, 1),
        ("next-sentence output", 1, batch, hidden, 2, 1),
    ]


def _product_ops(tf, count, m, k, n, dtype):
    """The forward product of [count, m, k] and [count, k, n] and its two gradients, with
    operands in ``dtype``."""
    def variable(*shape):
        shape = ([count] if count > 1 else []) + list(shape)
        return tf.Variable(tf.cast(tf.random.uniform(shape, -1.0, 1.0), dtype), trainable=False)

    a, b, dc = variable(m, k), variable(k, n), variable(m, n)
    return [tf.matmul(a, b),                    # C = A B
            tf.matmul(dc, b, transpose_b=True),  # dA = dC B^T
            tf.matmul(a, dc, transpose_a=True)]  # dB = A^T dC


def step_matmul_seconds(config, batch, seq, preds, session_config, repeats=10,
                        bfloat16=False):
    """Seconds per step spent in matrix products alone, and FLOPs per step; with
    ``bfloat16`` the operands are bfloat16, as --use_bfloat16 computes the encoder (its
    embeddings and output layers stay float32, so this ceiling is an upper bound).

    Each product is run ``repeats`` times after one warm-up run; the median run counts.
    """
    from krbert.tf_compat import tf

    total_seconds, total_flops = 0.0, 0
    with tf.Graph().as_default():
        plans = []
        for _, count, m, k, n, times in forward_products(config, batch, seq, preds):
            # Running the op itself (a fetched op, so graph optimizations keep it) skips
            # copying its output to Python.
            dtype = tf.bfloat16 if bfloat16 else tf.float32
            ops = [product.op for product in _product_ops(tf, count, m, k, n, dtype)]
            plans.append((ops, times))
            total_flops += 3 * 2 * count * m * k * n * times
        with tf.Session(config=session_config) as session:
            session.run(tf.global_variables_initializer())
            for ops, times in plans:
                for op in ops:
                    session.run(op)
                    runs = []
                    for _ in range(repeats):
                        start = time.time()
                        session.run(op)
                        runs.append(time.time() - start)
                    total_seconds += sorted(runs)[len(runs) // 2] * times
    return total_seconds, total_flops
