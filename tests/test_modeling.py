"""Tests of modeling.py and heads.py: checkpoint layout, parameter counts and numerics."""

import json
import os

import numpy as np
import pytest

import modeling
from conftest import ROOT, shipped_or_published
from krbert.pretraining import heads
from krbert.tf_compat import tf

SHIPPED_MEDIUM_CONFIG = os.path.join(ROOT, "vocab", "bert_config_medium.json")

# vocab 30, hidden 8, 2 layers, 2 heads, intermediate 12, 20 positions, 3 token types.
TINY = dict(vocab_size=30, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=12, max_position_embeddings=20, type_vocab_size=3)

# The original BERT checkpoint layout for TINY, in creation order.
EXPECTED_TINY_VARIABLES = [
    ("bert/embeddings/word_embeddings", [30, 8]),
    ("bert/embeddings/token_type_embeddings", [3, 8]),
    ("bert/embeddings/position_embeddings", [20, 8]),
    ("bert/embeddings/LayerNorm/beta", [8]),
    ("bert/embeddings/LayerNorm/gamma", [8]),
    ("bert/encoder/layer_0/attention/self/query/kernel", [8, 8]),
    ("bert/encoder/layer_0/attention/self/query/bias", [8]),
    ("bert/encoder/layer_0/attention/self/key/kernel", [8, 8]),
    ("bert/encoder/layer_0/attention/self/key/bias", [8]),
    ("bert/encoder/layer_0/attention/self/value/kernel", [8, 8]),
    ("bert/encoder/layer_0/attention/self/value/bias", [8]),
    ("bert/encoder/layer_0/attention/output/dense/kernel", [8, 8]),
    ("bert/encoder/layer_0/attention/output/dense/bias", [8]),
    ("bert/encoder/layer_0/attention/output/LayerNorm/beta", [8]),
    ("bert/encoder/layer_0/attention/output/LayerNorm/gamma", [8]),
    ("bert/encoder/layer_0/intermediate/dense/kernel", [8, 12]),
    ("bert/encoder/layer_0/intermediate/dense/bias", [12]),
    ("bert/encoder/layer_0/output/dense/kernel", [12, 8]),
    ("bert/encoder/layer_0/output/dense/bias", [8]),
    ("bert/encoder/layer_0/output/LayerNorm/beta", [8]),
    ("bert/encoder/layer_0/output/LayerNorm/gamma", [8]),
    ("bert/encoder/layer_1/attention/self/query/kernel", [8, 8]),
    ("bert/encoder/layer_1/attention/self/query/bias", [8]),
    ("bert/encoder/layer_1/attention/self/key/kernel", [8, 8]),
    ("bert/encoder/layer_1/attention/self/key/bias", [8]),
    ("bert/encoder/layer_1/attention/self/value/kernel", [8, 8]),
    ("bert/encoder/layer_1/attention/self/value/bias", [8]),
    ("bert/encoder/layer_1/attention/output/dense/kernel", [8, 8]),
    ("bert/encoder/layer_1/attention/output/dense/bias", [8]),
    ("bert/encoder/layer_1/attention/output/LayerNorm/beta", [8]),
    ("bert/encoder/layer_1/attention/output/LayerNorm/gamma", [8]),
    ("bert/encoder/layer_1/intermediate/dense/kernel", [8, 12]),
    ("bert/encoder/layer_1/intermediate/dense/bias", [12]),
    ("bert/encoder/layer_1/output/dense/kernel", [12, 8]),
    ("bert/encoder/layer_1/output/dense/bias", [8]),
    ("bert/encoder/layer_1/output/LayerNorm/beta", [8]),
    ("bert/encoder/layer_1/output/LayerNorm/gamma", [8]),
    ("bert/pooler/dense/kernel", [8, 8]),
    ("bert/pooler/dense/bias", [8]),
    ("cls/predictions/transform/dense/kernel", [8, 8]),
    ("cls/predictions/transform/dense/bias", [8]),
    ("cls/predictions/transform/LayerNorm/beta", [8]),
    ("cls/predictions/transform/LayerNorm/gamma", [8]),
    ("cls/predictions/output_bias", [30]),
    ("cls/seq_relationship/output_weights", [2, 8]),
    ("cls/seq_relationship/output_bias", [2]),
]


def tiny_config():
    return modeling.BertConfig(**TINY)


def build_pretraining_graph(config, batch_size=2, seq_length=7, num_predictions=3,
                            compute_dtype=tf.float32):
    """BertModel (inference mode) + both heads on constant random inputs.

    Returns:
      (model, mlm, nsp, labels): the heads' (loss, per_example_loss, log_probs) and the
      masked LM labels [B, P] as numpy.
    """
    rng = np.random.RandomState(1)
    ids = tf.constant(rng.randint(0, config.vocab_size, [batch_size, seq_length]), tf.int32)
    types = tf.constant(rng.randint(0, 2, [batch_size, seq_length]), tf.int32)
    mask = tf.ones([batch_size, seq_length], tf.int32)
    model = modeling.BertModel(config, False, ids, mask, types, compute_dtype=compute_dtype)
    positions = rng.randint(0, seq_length, [batch_size, num_predictions])
    labels = rng.randint(0, config.vocab_size, [batch_size, num_predictions])
    weights = [[1.0] * (num_predictions - 1) + [0.0]] * batch_size
    mlm = heads.get_masked_lm_output(
        config, model.get_sequence_output(), model.get_embedding_table(),
        tf.constant(positions, tf.int32), tf.constant(labels, tf.int32), tf.constant(weights))
    nsp = heads.get_next_sentence_output(config, model.get_pooled_output(),
                                         tf.constant([0, 1] * (batch_size // 2), tf.int32))
    return model, mlm, nsp, labels


def trainable_parameter_count():
    return sum(int(np.prod(v.shape.as_list())) for v in tf.trainable_variables())


@pytest.mark.parametrize("config_name, expected", [
    ("shipped", 102015010),  # vocab/bert_config_medium.json: KR-BERT-MEDIUM's shape
    ("bert_config_krmedium.json", 102015010),
    ("bert_config_char16424.json", 99265066),
])
def test_parameter_count_with_both_heads(request, config_name, expected):
    config = modeling.BertConfig.from_json_file(
        shipped_or_published(request, config_name, SHIPPED_MEDIUM_CONFIG))
    with tf.Graph().as_default():
        build_pretraining_graph(config, batch_size=2, seq_length=4, num_predictions=1)
        assert trainable_parameter_count() == expected


def test_variable_names_and_shapes_match_the_original_layout():
    with tf.Graph().as_default():
        build_pretraining_graph(tiny_config())
        actual = [(v.op.name, v.shape.as_list()) for v in tf.trainable_variables()]
        assert actual == EXPECTED_TINY_VARIABLES
        assert [v.op.name for v in tf.global_variables()] == [n for n, _ in actual]


def run_tiny_model(checkpoint=None, save_to=None, compute_dtype=tf.float32):
    """Sequence and pooled outputs of a tiny model, from a fresh init or a checkpoint."""
    with tf.Graph().as_default():
        model, mlm, nsp, _ = build_pretraining_graph(tiny_config(), compute_dtype=compute_dtype)
        fetches = [model.get_sequence_output(), model.get_pooled_output(), mlm[2], nsp[2]]
        saver = tf.train.Saver()
        with tf.Session() as sess:
            if checkpoint:
                saver.restore(sess, checkpoint)
            else:
                sess.run(tf.global_variables_initializer())
            values = sess.run(fetches)
            if save_to:
                saver.save(sess, save_to)
    return values


def test_save_and_restore_reproduce_the_outputs(tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    before = run_tiny_model(save_to=prefix)
    after = run_tiny_model(checkpoint=prefix)
    other_init = run_tiny_model()
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(before[0], other_init[0])


def test_attention_mask_hides_padded_tokens():
    config = tiny_config()
    config.initializer_range = 0.5  # sharp attention, so every token visibly matters
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        ids = tf.placeholder(tf.int32, [2, 6])
        mask = tf.placeholder(tf.int32, [2, 6])
        model = modeling.BertModel(config, False, ids, mask)
        output = model.get_sequence_output()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())

            def run(i, m):
                return sess.run(output, {ids: i, mask: m})

            base = np.array([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]])
            changed = base.copy()
            changed[:, 4:] = [[20, 21], [22, 23]]
            padding = np.array([[1, 1, 1, 1, 0, 0]] * 2)
            masked_a, masked_b = run(base, padding), run(changed, padding)
            open_a, open_b = run(base, np.ones_like(padding)), run(changed, np.ones_like(padding))
    np.testing.assert_allclose(masked_a[:, :4], masked_b[:, :4], rtol=0, atol=1e-6)
    assert np.abs(open_a[:, :4] - open_b[:, :4]).max() > 1e-2
    assert np.abs(masked_a[:, 4:] - masked_b[:, 4:]).max() > 1e-2


def test_dynamic_batch_and_dropout_only_in_training():
    config = tiny_config()
    with tf.Graph().as_default():
        ids = tf.placeholder(tf.int32, [None, 5])
        training = modeling.BertModel(config, True, ids).get_sequence_output()
        with tf.variable_scope(tf.get_variable_scope(), reuse=True):
            inference = modeling.BertModel(config, False, ids, scope="bert")
        inference = inference.get_sequence_output()
        assert len(tf.trainable_variables()) == 5 + 16 * 2 + 2
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            feed = {ids: np.arange(15).reshape(3, 5) % 30}
            first, second = sess.run(training, feed), sess.run(training, feed)
            third, fourth = sess.run(inference, feed), sess.run(inference, feed)
    assert first.shape == (3, 5, 8)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(third, fourth)


def unreachable_ops(graph, outputs):
    """Ops of `graph` from which no path of data or control edges leads to `outputs`.

    `outputs`: tensors and ops. The message constants of a tf.assert_* that TensorFlow
    checked while building the graph (and so never made into an op) are left out.
    """
    reachable, stack = set(), [getattr(output, "op", output) for output in outputs]
    while stack:
        op = stack.pop()
        if op.name not in reachable:
            reachable.add(op.name)
            stack.extend(tensor.op for tensor in op.inputs)
            stack.extend(op.control_inputs)
    return sorted(op.name for op in graph.get_operations()
                  if op.name not in reachable and "/assert_less_equal/" not in op.name)


@pytest.mark.parametrize("is_training", [True, False])
def test_every_op_of_the_model_leads_to_an_output_or_an_initializer(is_training):
    """No op is left dangling: each one feeds the model's outputs or the variables' init."""
    with tf.Graph().as_default() as graph:
        ids = tf.constant([[1, 2, 3, 4, 5]] * 3)
        mask = tf.constant([[1, 1, 1, 0, 0]] * 3)
        model = modeling.BertModel(tiny_config(), is_training, ids, mask, mask)
        outputs = model.get_all_encoder_layers() + [
            model.get_pooled_output(), model.get_embedding_output(),
            model.get_embedding_table(), tf.global_variables_initializer()]
        assert unreachable_ops(graph, outputs) == []
        # The check itself: an op nothing reads is caught.
        tf.identity(model.get_pooled_output(), name="unused")
        assert unreachable_ops(graph, outputs) == ["unused"]


def test_create_attention_mask_from_input_mask():
    with tf.Graph().as_default(), tf.Session() as sess:
        from_tensor = tf.zeros([2, 3, 5])
        mask = modeling.create_attention_mask_from_input_mask(
            from_tensor, tf.constant([[1, 1, 0, 0], [1, 0, 0, 0]]))
        value = sess.run(mask)
    np.testing.assert_array_equal(value, [[[1, 1, 0, 0]] * 3, [[1, 0, 0, 0]] * 3])


def test_assignment_map_holds_exactly_the_shared_variables(tmp_path):
    prefix = str(tmp_path / "bert.ckpt")
    with tf.Graph().as_default():
        modeling.BertModel(tiny_config(), False, tf.zeros([1, 4], tf.int32))
        tf.get_variable("only_in_checkpoint", [3])
        saver = tf.train.Saver()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            saver.save(sess, prefix)
            embedding = sess.run("bert/embeddings/word_embeddings:0")

    with tf.Graph().as_default():
        build_pretraining_graph(tiny_config())
        tvars = tf.trainable_variables()
        assignment_map, initialized = modeling.get_assignment_map_from_checkpoint(tvars, prefix)
        bert_names = [v.op.name for v in tvars if v.op.name.startswith("bert/")]
        assert sorted(assignment_map) == sorted(bert_names)
        assert all(assignment_map[name] == name for name in assignment_map)
        assert set(initialized) == set(bert_names) | {n + ":0" for n in bert_names}
        tf.train.init_from_checkpoint(prefix, assignment_map)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            restored = sess.run("bert/embeddings/word_embeddings:0")
    np.testing.assert_array_equal(restored, embedding)


def test_gelu_values_and_gradient():
    points = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0], np.float32)
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), evaluated in float64.
    expected = [-0.0036373921, -0.1588080094, -0.1542859902, 0.0, 0.3457140098,
                0.8411919906, 1.9545976941, 2.9963626079]
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.constant(points)
        y = modeling.gelu(x)
        grad = tf.gradients(y, x)[0]
        eps = 1e-3
        numeric = (modeling.gelu(x + eps) - modeling.gelu(x - eps)) / (2 * eps)
        y_value, grad_value, numeric_value = sess.run([y, grad, numeric])
    np.testing.assert_allclose(y_value, expected, rtol=1e-6, atol=5e-7)
    np.testing.assert_allclose(grad_value, numeric_value, atol=2e-3)
    assert grad_value[3] == pytest.approx(0.5)


def test_get_activation():
    assert modeling.get_activation("gelu") is modeling.gelu
    assert modeling.get_activation("relu") is tf.nn.relu
    assert modeling.get_activation("tanh") is tf.tanh
    assert modeling.get_activation("linear") is None
    assert modeling.get_activation("") is None
    assert modeling.get_activation(tf.sigmoid) is tf.sigmoid
    with pytest.raises(ValueError):
        modeling.get_activation("swishy")


def test_layer_norm_matches_numpy():
    x = np.random.RandomState(0).randn(4, 6).astype(np.float32) * 3 + 1
    with tf.Graph().as_default(), tf.Session() as sess:
        with tf.variable_scope("block"):
            output = modeling.layer_norm(tf.constant(x))
        sess.run(tf.global_variables_initializer())
        value = sess.run(output)
        names = sorted(v.op.name for v in tf.global_variables())
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-5)
    assert names == ["block/LayerNorm/beta", "block/LayerNorm/gamma"]


def test_layer_norm_gradient_matches_the_generic_gradient():
    rng = np.random.RandomState(0)
    x_value = rng.randn(2, 5, 6).astype(np.float32) * 2 + 0.5
    dy_value = rng.randn(2, 5, 6).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.constant(x_value)
        output = modeling.layer_norm(x)
        beta, gamma = tf.trainable_variables()
        sess.run([gamma.assign(rng.rand(6) + 0.5), beta.assign(rng.randn(6))])
        mean, variance = tf.nn.moments(x, [-1], keep_dims=True)
        reference = tf.nn.batch_normalization(x, mean, variance, beta, gamma, 1e-12)
        grads = tf.gradients(output, [x, gamma, beta], grad_ys=dy_value)
        reference_grads = tf.gradients(reference, [x, gamma, beta], grad_ys=dy_value)
        values, reference_values = sess.run([[output] + grads, [reference] + reference_grads])
    np.testing.assert_array_equal(values[0], reference_values[0])
    for value, expected in zip(values[1:], reference_values[1:]):
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-5)


def test_shape_helpers():
    with tf.Graph().as_default():
        static = tf.zeros([2, 3, 4])
        assert modeling.get_shape_list(static, expected_rank=3) == [2, 3, 4]
        dynamic = tf.placeholder(tf.float32, [None, 3, 4])
        shape = modeling.get_shape_list(dynamic)
        assert isinstance(shape[0], tf.Tensor) and shape[1:] == [3, 4]
        with pytest.raises(ValueError):
            modeling.get_shape_list(static, expected_rank=2)
        with pytest.raises(ValueError):
            modeling.assert_rank(static, [1, 2])
        modeling.assert_rank(static, [2, 3])

        matrix = modeling.reshape_to_matrix(static)
        assert matrix.shape.as_list() == [6, 4]
        assert modeling.reshape_to_matrix(matrix) is matrix
        back = modeling.reshape_from_matrix(tf.zeros([6, 5]), [2, 3, 4])
        assert back.shape.as_list() == [2, 3, 5]
        with pytest.raises(ValueError):
            modeling.reshape_to_matrix(tf.zeros([3]))
        with tf.Session() as sess:
            value = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
            round_trip = modeling.reshape_from_matrix(
                modeling.reshape_to_matrix(tf.constant(value)), [2, 3, 4])
            np.testing.assert_array_equal(sess.run(round_trip), value)
            assert sess.run(shape[0], {dynamic: np.zeros([5, 3, 4])}) == 5


def test_gather_indexes_and_masked_lm_loss():
    with tf.Graph().as_default(), tf.Session() as sess:
        sequence = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
        gathered = heads.gather_indexes(tf.constant(sequence), tf.constant([[3, 0], [1, 1]]))
        np.testing.assert_array_equal(
            sess.run(gathered), [sequence[0, 3], sequence[0, 0], sequence[1, 1], sequence[1, 1]])

        _, mlm, nsp, labels = build_pretraining_graph(tiny_config(), num_predictions=3)
        sess.run(tf.global_variables_initializer())
        (loss, per_example, log_probs), (nsp_loss, nsp_per_example, nsp_log_probs) = \
            sess.run([mlm, nsp])
    assert log_probs.shape == (6, 30) and per_example.shape == (6,)
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(per_example, -log_probs[np.arange(6), labels.reshape(-1)],
                               rtol=1e-5)
    weights = np.array([1.0, 1.0, 0.0] * 2)
    np.testing.assert_allclose(loss, (weights * per_example).sum() / (weights.sum() + 1e-5),
                               rtol=1e-5)
    np.testing.assert_allclose(nsp_per_example, -nsp_log_probs[[0, 1], [0, 1]], rtol=1e-5)
    np.testing.assert_allclose(nsp_loss, nsp_per_example.mean(), rtol=1e-5)


def test_bfloat16_compute_keeps_float32_variables_and_names(tmp_path):
    with tf.Graph().as_default():
        model, mlm, nsp, _ = build_pretraining_graph(tiny_config(), compute_dtype=tf.bfloat16)
        actual = [(v.op.name, v.shape.as_list(), v.dtype.base_dtype)
                  for v in tf.trainable_variables()]
        assert actual == [(n, s, tf.float32) for n, s in EXPECTED_TINY_VARIABLES]
        assert model.get_sequence_output().dtype == tf.float32
        assert model.get_pooled_output().dtype == tf.float32
        grads = tf.gradients(mlm[0] + nsp[0], tf.trainable_variables())
        assert all(g is not None and g.dtype == tf.float32 for g in grads)

    prefix = str(tmp_path / "model.ckpt")
    float32_outputs = run_tiny_model(save_to=prefix)
    bfloat16_outputs = run_tiny_model(checkpoint=prefix, compute_dtype=tf.bfloat16)
    for a, b in zip(float32_outputs, bfloat16_outputs):
        np.testing.assert_allclose(a, b, atol=0.1)
        assert not np.array_equal(a, b)


def test_config_round_trip(tmp_path):
    config = modeling.BertConfig.from_json_file(SHIPPED_MEDIUM_CONFIG)
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (20000, 768, 12)
    assert config.hidden_act == "gelu" and config.type_vocab_size == 2
    path = tmp_path / "config.json"
    path.write_text(config.to_json_string())
    again = modeling.BertConfig.from_json_file(str(path))
    assert again.to_dict() == config.to_dict()
    assert json.loads(config.to_json_string()) == config.to_dict()

    defaults = modeling.BertConfig(vocab_size=100).to_dict()
    assert defaults == dict(
        vocab_size=100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=16,
        initializer_range=0.02)


def test_dropout_only_when_training():
    with tf.Graph().as_default():
        x = tf.ones([1000])
        assert modeling.dropout(x, 0.0) is x
        assert modeling.dropout(x, None) is x
        dropped = modeling.dropout(x, 0.25)
        with tf.Session() as sess:
            value = sess.run(dropped)
    np.testing.assert_allclose(np.unique(value), [0.0, 1 / 0.75], rtol=1e-6)
    assert 0.15 < (value == 0).mean() < 0.35


@pytest.mark.parametrize("compute_dtype", ["float32", "bfloat16"])
def test_first_token_last_layer_keeps_the_pooled_output_and_the_variables(compute_dtype):
    config = tiny_config()
    config.initializer_range = 0.5
    rng = np.random.RandomState(5)
    ids = rng.randint(1, config.vocab_size, size=(3, 6))
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])
    segments = np.array([[0, 0, 0, 1, 1, 1]] * 3)
    outputs = {}
    for first_only in (False, True):
        with tf.Graph().as_default():
            tf.set_random_seed(11)
            inputs = [tf.placeholder(tf.int32, [None, None]) for _ in range(3)]
            model = modeling.BertModel(config, False, *inputs, compute_dtype=compute_dtype,
                                       first_token_last_layer=first_only)
            names = [v.name for v in tf.global_variables()]
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                feed = dict(zip(inputs, (ids, mask, segments)))
                outputs[first_only] = names, sess.run(
                    [model.get_pooled_output(), model.get_sequence_output(),
                     model.get_all_encoder_layers()[0]], feed)
    (names, (pooled, sequence, first_layer)) = outputs[False]
    (first_names, (first_pooled, first_sequence, first_first_layer)) = outputs[True]
    assert first_names == names and sequence.shape == (3, 6, 8)
    assert first_sequence.shape == (3, 1, 8)
    np.testing.assert_array_equal(first_first_layer, first_layer)
    atol = 1e-6 if compute_dtype == "float32" else 2e-2
    np.testing.assert_allclose(first_sequence[:, 0], sequence[:, 0], rtol=0, atol=atol)
    np.testing.assert_allclose(first_pooled, pooled, rtol=0, atol=atol)
    assert np.abs(pooled[0] - pooled[1]).max() > 1e-2  # the masks make the rows differ
